// The lock workload of a chaos run: the etcd lock recipe with fencing.
// Each client takes a lease (kept alive), puts lock/<lease> with it, and
// holds the lock once no key under lock/ has a smaller create revision
// (read from the member the client is bound to, as etcd's Mutex does on
// the member it talks to). Holding it, the client writes the guarded
// resource with txns that succeed only while its lock key still exists at
// its create revision (the fencing token), then deletes the key and
// revokes the lease. Pauses and partitions expire leases, so two clients
// can both believe they hold the lock; check::CheckLockFencing judges that
// the resource never took a write from an older holder after a newer one.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "bulwark/client.h"
#include "chaos/chaos_client.h"
#include "check/lock_fencing.h"
#include "env/env.h"

namespace bw::chaos {

struct LockOptions {
  int clients = 4;
  int64_t lease_ttl_s = 2;
  int64_t op_timeout_us = 1'000'000;
  // Give up waiting for the lock after this long (and start over).
  int64_t acquire_timeout_us = 5'000'000;
  int writes_per_hold = 3;
  int hold_ms = 30;  // between guarded writes
  // A holder that stalls right after it acquired (a GC pause, a swapped-out
  // process): no keep-alives for longer than the lease, then it writes as if
  // it still held the lock. The fence must refuse those writes.
  double stall_chance = 0.1;
  int stall_ms = 3500;
  // Planted bug (debug): write the resource with a plain put, trusting the
  // lease, instead of the fenced txn. The checker must catch two holders.
  bool unfenced = false;
  uint64_t seed = 1;
};

class LockWorkload final : public Workload {
 public:
  LockWorkload(std::vector<std::string> endpoints, LockOptions o, env::Clock& clock,
               int64_t epoch_us);
  ~LockWorkload() override { Stop(); }

  const char* name() const override { return "lock"; }
  const char* checker() const override {
    return "lock (etcd lock recipe with fencing: no write from an older holder)";
  }
  [[nodiscard]] absl::Status Start() override;
  void Stop() override;
  [[nodiscard]] absl::Status Check(std::string* summary) override;
  uint64_t ops() const override { return ops_.load(); }
  const OpLog* log() const override { return &log_; }

 private:
  void Run(int worker);
  int64_t Now() { return log_.Now(); }
  // Logs one call that ended with `outcome` (started at `invoke`).
  void Log(int w, absl::string_view op, std::string detail, int64_t invoke,
           bulwark::Outcome outcome);

  std::vector<std::string> endpoints_;
  LockOptions o_;
  OpLog log_;
  Workers workers_;
  // One more client per worker, bound to a single member: the reads that
  // decide whether the lock is held.
  std::vector<std::unique_ptr<bulwark::Client>> readers_;
  std::atomic<uint64_t> ops_{0};
  std::mutex mu_;
  std::vector<check::FencedWrite> writes_;
  uint64_t acquired_ = 0, gave_up_ = 0, fenced_out_ = 0, unknown_ = 0, stalls_ = 0;
};

}  // namespace bw::chaos
