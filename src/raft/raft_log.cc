#include "raft/raft_log.h"

#include <algorithm>

#include "core/assert.h"

namespace bw::raft {

RaftLog::RaftLog(LogIndex offset, Term offset_term)
    : offset_(offset),
      offset_term_(offset_term),
      committed_(offset),
      applied_(offset),
      stabled_(offset) {}

std::optional<Term> RaftLog::TermAt(LogIndex index) const {
  if (index == offset_) return offset_term_;
  if (index < offset_ || index > last_index()) return std::nullopt;
  return entries_[index - offset_ - 1].term;
}

bool RaftLog::MatchTerm(LogIndex index, Term term) const {
  auto t = TermAt(index);
  return t.has_value() && *t == term;
}

const Entry& RaftLog::At(LogIndex index) const {
  BW_ASSERT_GT(index, offset_);
  BW_ASSERT_LE(index, last_index());
  return entries_[index - offset_ - 1];
}

bool RaftLog::IsUpToDate(LogIndex last, Term term) const {
  return term > last_term() || (term == last_term() && last >= last_index());
}

void RaftLog::Append(Entry e) {
  BW_ASSERT_EQ(e.index, last_index() + 1);
  entries_.push_back(std::move(e));
}

LogIndex RaftLog::MaybeAppend(LogIndex prev_index, std::vector<Entry>& entries) {
  LogIndex last_new = prev_index + entries.size();
  // Find the first entry that is new or conflicts.
  size_t i = 0;
  for (; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    BW_ASSERT_EQ(e.index, prev_index + 1 + i);
    if (e.index <= offset_) continue;  // compacted: known committed, so it matches
    if (e.index > last_index()) break;
    if (entries_[e.index - offset_ - 1].term != e.term) {
      // Never truncate committed entries: that would lose acknowledged data.
      BW_ASSERT_GT(e.index, committed_);
      size_t keep = e.index - offset_ - 1;
      entries_.resize(keep);
      if (stabled_ >= e.index) stabled_ = e.index - 1;
      break;
    }
  }
  for (; i < entries.size(); ++i) {
    if (entries[i].index <= offset_) continue;
    entries_.push_back(std::move(entries[i]));
  }
  return last_new;
}

LogIndex RaftLog::FindConflictByTerm(LogIndex index, Term term) const {
  if (index > last_index()) index = last_index();
  while (index > offset_) {
    if (entries_[index - offset_ - 1].term <= term) return index;
    index = index - 1;
  }
  return index;
}

void RaftLog::CommitTo(LogIndex index) {
  if (index <= committed_) return;
  BW_ASSERT_LE(index, last_index());
  committed_ = index;
}

void RaftLog::AppliedTo(LogIndex index) {
  if (index <= applied_) return;
  BW_ASSERT_LE(index, committed_);
  applied_ = index;
}

void RaftLog::StableTo(LogIndex index, Term term) {
  if (index <= stabled_) return;
  if (MatchTerm(index, term)) stabled_ = index;
}

void RaftLog::Restore(const SnapshotMeta& meta) {
  entries_.clear();
  offset_ = meta.index;
  offset_term_ = meta.term;
  committed_ = meta.index;
  applied_ = meta.index;
  stabled_ = meta.index;
}

void RaftLog::CompactTo(LogIndex index) {
  if (index <= offset_) return;
  BW_ASSERT_LE(index, applied_);
  Term t = *TermAt(index);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(index - offset_));
  offset_ = index;
  offset_term_ = t;
}

void RaftLog::Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes, std::vector<Entry>* out) const {
  BW_ASSERT_GT(lo, offset_);
  uint64_t bytes = 0;
  for (LogIndex i = lo; i <= hi && i <= last_index(); ++i) {
    const Entry& e = entries_[i - offset_ - 1];
    if (!out->empty() && bytes + e.Bytes() > max_bytes) break;
    bytes += e.Bytes();
    out->push_back(e);
  }
}

void RaftLog::Unstable(std::vector<Entry>* out) const {
  for (LogIndex i = stabled_ + 1; i <= last_index(); ++i)
    out->push_back(entries_[i - offset_ - 1]);
}

void RaftLog::NextCommitted(uint64_t max_bytes, std::vector<Entry>* out) const {
  if (applied_ >= committed_) return;
  Slice(applied_ + 1, committed_, max_bytes, out);
}

}  // namespace bw::raft
