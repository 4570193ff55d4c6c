// What the chaos workloads share about talking to the cluster: the client
// settings they all use, and reading a whole key range back in pages.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/client.h"

namespace bw::chaos {

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
