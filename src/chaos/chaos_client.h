// What the chaos workloads share: the client settings they all use, reading
// a whole key range back in pages, the log of every operation, and the
// interface of a workload that is checked against the store afterwards.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/client.h"
#include "check/history.h"
#include "env/env.h"

namespace bw::chaos {

// `s` as a JSON string, quotes included.
std::string JsonString(absl::string_view s);
check::Outcome ToCheck(bulwark::Outcome o);

// The endpoints starting with member `w % n`: a worker's own member first.
std::vector<std::string> RotatedEndpoints(const std::vector<std::string>& endpoints, size_t w);

// Every operation a workload made, one JSON object per line: the client,
// the operation, what it carried and got back (`detail`, a JSON object's
// members), when it was invoked and answered (microseconds into the run;
// -1: never) and the outcome (ok; failed: not applied; unknown: maybe).
// Thread-safe.
class OpLog {
 public:
  OpLog(env::Clock& clock, int64_t epoch_us) : clock_(clock), epoch_us_(epoch_us) {}
  int64_t Now() const { return clock_.NowMicros() - epoch_us_; }
  void Add(int client, absl::string_view op, absl::string_view detail, int64_t invoke_us,
           int64_t complete_us, check::Outcome outcome);
  [[nodiscard]] absl::Status Write(const std::string& path) const;
  size_t size() const;

 private:
  env::Clock& clock_;
  int64_t epoch_us_;
  mutable std::mutex mu_;
  std::string lines_;
  size_t n_ = 0;
};

// A workload checked against what the store holds once it has stopped
// (everything but the register workload, whose history goes to the
// linearizability checker).
class Workload {
 public:
  virtual ~Workload() = default;
  // "txn": its operations go to <out>/txn.jsonl.
  virtual const char* name() const = 0;
  // The verdict's label.
  virtual const char* checker() const = 0;
  [[nodiscard]] virtual absl::Status Start() = 0;
  virtual void Stop() = 0;
  // Reads back what it needs and judges; `summary` gets the counts.
  [[nodiscard]] virtual absl::Status Check(std::string* summary) = 0;
  virtual uint64_t ops() const = 0;
  // Its operations (none for a workload that only watches).
  virtual const OpLog* log() const { return nullptr; }
};

// libbulwark settings for a chaos client: calls end by `op_timeout_us`
// (attempts by 500 ms), quick backoff, 10 s to connect.
bulwark::ClientOptions ChaosClientOptions(std::vector<std::string> endpoints,
                                          int64_t op_timeout_us);

// Every key in [key, range_end), read in pages of 5,000 at the revision of
// the first page (a long run writes more than one answer holds).
[[nodiscard]] absl::Status ReadAll(bulwark::Client& c, const std::string& key,
                                   const std::string& range_end,
                                   std::vector<mvccpb::KeyValue>* out);

// A workload's clients, one per worker, each driven by a thread of its own
// until Stop.
class Workers {
 public:
  ~Workers() { Stop(); }
  // Connects `n` clients (`options(w)` for worker w), then runs `run(w)` on
  // a thread per worker; `run` loops until stopping() is true.
  [[nodiscard]] absl::Status Start(int n, const std::function<bulwark::ClientOptions(int)>& options,
                                   std::function<void(int)> run);
  void Stop();
  bool stopping() const { return stop_.load(); }
  bulwark::Client& client(int w) { return *clients_[w]; }

 private:
  std::vector<std::unique_ptr<bulwark::Client>> clients_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
};

}  // namespace bw::chaos
