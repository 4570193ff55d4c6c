#include "check/watch_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace bw::check {

void WatchStreamChecker::Fail(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

int64_t WatchStreamChecker::next(uint64_t w) const {
  auto it = next_.find(w);
  return it == next_.end() ? 0 : it->second;
}

void WatchStreamChecker::OnStart(uint64_t w, int64_t start) {
  // A resume goes on from what the watcher had: where it starts is the
  // watcher's own business, what it then gets is the server's.
  if (!next_.emplace(w, start).second) ++resumes_;
}

void WatchStreamChecker::OnEvents(uint64_t w, const std::vector<Event>& events) {
  int64_t& next = next_[w];
  size_t i = 0;
  while (i < events.size()) {
    const int64_t rev = events[i].revision;
    std::vector<std::string> group;
    for (; i < events.size() && events[i].revision == rev; ++i)
      group.push_back(events[i].what);
    events_ += group.size();
    if (rev < next) {
      Fail(absl::StrCat("watch: watcher ", w, " got revision ", rev,
                        " again (or out of order): ", "it had every revision up to ", next - 1));
      return;
    }
    if (rev > next) {
      Fail(absl::StrCat("watch: watcher ", w, " got revision ", rev, " after ", next - 1,
                        ": a gap (revisions ", next, " to ", rev - 1, " never came)"));
      return;
    }
    auto [it, first] = truth_.emplace(rev, group);
    if (!first && it->second != group) {
      Fail(absl::StrCat("watch: watcher ", w, " got other events for revision ", rev, " (",
                        group.size(), " events, first '", group.front(), "') than another ",
                        "watcher did (", it->second.size(), ", first '", it->second.front(), "')"));
      return;
    }
    next = rev + 1;
  }
}

void WatchStreamChecker::OnCompacted(uint64_t w, int64_t compact_revision) {
  ++compactions_;
  const int64_t needed = next(w);
  if (compact_revision <= needed) {
    Fail(absl::StrCat("watch: watcher ", w, " was cancelled as compacted at ", compact_revision,
                      " but it needed revision ", needed, " on, which is not compacted"));
    return;
  }
  next_[w] = compact_revision;  // what it may resume from
}

}  // namespace bw::check
