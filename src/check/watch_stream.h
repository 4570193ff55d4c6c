// The watch checker: what a watcher of every key must see, across failover
// (it resumes on another member from the revision after its last event) and
// compaction, as etcd promises it.
//
// Every revision changes at least one key, so a watcher of every key sees
// every revision from its start on, each once, whole (all of a revision's
// events in one response) and in order: the next revision it sees must be
// exactly the one after the last. It may skip revisions only when it is
// cancelled because they were compacted (the cancel's compact revision is
// above the revision it needed), and then resumes at the compact revision,
// whose events must all still be there.
// And every watcher sees the same events for a revision (the first report
// of a revision is held against every later one). Pure; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bw::check {

class WatchStreamChecker {
 public:
  struct Event {
    int64_t revision = 0;
    std::string what;  // type, key and value: whatever must agree
  };

  // Watcher `w` starts from revision `start`; on a resume (a known watcher)
  // `start` is ignored: it goes on from the revision it needs next.
  void OnStart(uint64_t w, int64_t start);
  // One response's events, in the order they came.
  void OnEvents(uint64_t w, const std::vector<Event>& events);
  // The watcher was cancelled: its start is below the compaction point
  // `compact_revision`. It goes on from there.
  void OnCompacted(uint64_t w, int64_t compact_revision);

  // The revision watcher `w` needs next.
  int64_t next(uint64_t w) const;
  const std::string& violation() const { return violation_; }
  bool ok() const { return violation_.empty(); }
  uint64_t events() const { return events_; }
  uint64_t resumes() const { return resumes_; }
  uint64_t compactions() const { return compactions_; }

 private:
  void Fail(std::string what);
  std::map<uint64_t, int64_t> next_;
  std::map<int64_t, std::vector<std::string>> truth_;  // revision -> its events
  std::string violation_;
  uint64_t events_ = 0;
  uint64_t resumes_ = 0;
  uint64_t compactions_ = 0;
};

}  // namespace bw::check
