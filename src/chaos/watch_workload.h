// The watch workload of a chaos run: watchers (libbulwark Watches, which
// resume on another member after a broken stream) follow the exactly-once
// workload's keys (eo/). Afterwards each watcher's events are held against
// the store's committed history of those keys: in revision order, no
// duplicate, no gap from the watcher's start revision to the end, nothing
// that was never committed, and prev_kv empty for keys written once.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bulwark/client.h"
#include "chaos/chaos_client.h"

namespace bw::chaos {

class WatchWorkload final : public Workload {
 public:
  WatchWorkload(std::vector<std::string> endpoints, int watchers);
  ~WatchWorkload() override;

  const char* name() const override { return "watch"; }
  const char* checker() const override { return "watch (events against the committed history)"; }
  [[nodiscard]] absl::Status Start() override;
  // The watchers run until Check.
  void Stop() override {}
  // Waits (bounded) until every watcher has seen the store's last revision
  // of the keys, then cancels them and checks. `summary` gets the counts.
  [[nodiscard]] absl::Status Check(std::string* summary) override;
  // It only watches: the writes are the exactly-once workload's.
  uint64_t ops() const override { return 0; }

 private:
  struct Seen {
    int64_t start_revision = 0;
    std::vector<std::pair<int64_t, std::string>> events;  // revision, key
    std::vector<uint64_t> served_by;                      // the member that sent each event
    bool prev_kv_wrong = false;
    bool canceled = false;
  };

  std::vector<std::string> endpoints_;
  int watchers_;
  std::vector<std::unique_ptr<bulwark::Client>> clients_;
  std::vector<std::unique_ptr<bulwark::Watcher>> watches_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

}  // namespace bw::chaos
