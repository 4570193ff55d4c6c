// The register workload of a chaos run: clients read, write and
// compare-and-set a few keys through libbulwark, each client bound to one
// member (as Jepsen binds a client to a node, so a partitioned member's
// clients see what it serves). Every operation goes into a check::History
// with its invocation and completion time and an outcome of ok, failed or
// unknown; the linearizability checker judges it afterwards.
//
// Keys are replaced every `key_lifetime_s` (r/<generation>/<k>), which keeps
// each key's history short enough for the checker (Jepsen's "independent"
// keys).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/client.h"
#include "chaos/chaos_client.h"
#include "check/history.h"
#include "env/real/real_env.h"

namespace bw::chaos {

struct RegisterOptions {
  int clients = 10;
  int keys = 3;
  double key_lifetime_s = 5;
  int think_ms = 10;
  int64_t op_timeout_us = 1'000'000;
  uint64_t seed = 1;
};

// One completed operation, for the report's plots.
struct Sample {
  int64_t invoke_us = 0;
  int64_t latency_us = 0;
  check::OpKind kind = check::OpKind::kRead;
  check::Outcome outcome = check::Outcome::kOk;
};

class RegisterWorkload {
 public:
  RegisterWorkload(std::vector<std::string> endpoints, RegisterOptions o, env::Clock& clock,
                   int64_t epoch_us);
  ~RegisterWorkload() { Stop(); }

  [[nodiscard]] absl::Status Start();
  void Stop();

  // Thread-safe snapshots.
  check::History history() const;
  std::vector<Sample> samples() const;
  uint64_t ops() const { return ops_.load(); }

 private:
  void Run(int worker);
  int64_t Now() { return clock_.NowMicros() - epoch_us_; }

  std::vector<std::string> endpoints_;
  RegisterOptions o_;
  env::Clock& clock_;
  int64_t epoch_us_;
  Workers workers_;
  std::atomic<uint64_t> ops_{0};
  mutable std::mutex mu_;
  check::History history_;
  std::vector<Sample> samples_;
};

}  // namespace bw::chaos
