#include "raft/forwarded.h"

#include "core/crc32c.h"
#include "raft/raft_log.h"

namespace bw::raft {

ForwardedWindow::Key ForwardedWindow::KeyOf(NodeId from, const Entry& e) {
  return Key{from.value(), e.data.size(), core::Crc32c(e.data), static_cast<uint8_t>(e.type)};
}

bool ForwardedWindow::IsCopy(const Key& key, const RaftLog& log) const {
  auto it = placed_.find(key);
  if (it == placed_.end()) return false;
  const LogIndex at = it->second.index;
  if (at > log.last_index()) return false;  // cut from the log since
  if (at < log.first_index()) return true;  // committed and compacted
  // Only this leader wrote at `at` in its term: the same term there is the
  // same entry (whether or not it is still in memory).
  return log.TermAt(at) == std::optional<Term>(it->second.term);
}

void ForwardedWindow::Remember(const Key& key, LogIndex index, Term term) {
  if (capacity_ == 0) return;
  const bool fresh = placed_.insert_or_assign(key, Placed{index, term}).second;
  if (!fresh) return;  // already in the order; the newer index stands
  order_.push_back(key);
  while (order_.size() > capacity_) {
    placed_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace bw::raft
