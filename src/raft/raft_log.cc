#include "raft/raft_log.h"

#include <algorithm>

#include "core/assert.h"

namespace bw::raft {

RaftLog::RaftLog(LogIndex offset, Term offset_term)
    : offset_(offset),
      offset_term_(offset_term),
      last_index_(offset),
      cached_after_(offset),
      committed_(offset),
      applied_(offset),
      stabled_(offset) {}

void RaftLog::SetReader(EntryReader reader, uint64_t cache_bytes) {
  reader_ = std::move(reader);
  cache_budget_ = cache_bytes;
  MaybeEvict();
}

std::optional<Term> RaftLog::TermAt(LogIndex index) const {
  if (index == offset_) return offset_term_;
  if (index < offset_ || index > last_index_) return std::nullopt;
  // The last run that starts at or before `index`.
  auto it = std::upper_bound(runs_.begin(), runs_.end(), index,
                             [](LogIndex i, const Run& r) { return i < r.first; });
  BW_ASSERT(it != runs_.begin());
  return std::prev(it)->term;
}

bool RaftLog::MatchTerm(LogIndex index, Term term) const {
  auto t = TermAt(index);
  return t.has_value() && *t == term;
}

const Entry& RaftLog::At(LogIndex index) const {
  BW_ASSERT_GT(index, cached_after_);
  BW_ASSERT_LE(index, last_index_);
  return entries_[index - cached_after_ - 1];
}

int64_t RaftLog::LatestStamp() const {
  // Stamps never decrease along a log: the last stamped entry holds the latest.
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->time_us != 0) return it->time_us;
  }
  return evicted_stamp_index_ > offset_ ? evicted_stamp_us_ : 0;
}

bool RaftLog::IsUpToDate(LogIndex last, Term term) const {
  return term > last_term() || (term == last_term() && last >= last_index());
}

void RaftLog::Append(Entry e) {
  BW_ASSERT_EQ(e.index, last_index_ + 1);
  BW_ASSERT_GE(e.term, last_term());
  if (runs_.empty() || runs_.back().term != e.term) runs_.push_back(Run{e.index, e.term});
  last_index_ = e.index;
  cached_bytes_ += e.Bytes();
  entries_.push_back(std::move(e));
}

void RaftLog::TruncateFrom(LogIndex index) {
  // Never truncate committed entries: that would lose acknowledged data.
  BW_ASSERT_GT(index, committed_);
  BW_ASSERT_GT(index, cached_after_);
  while (entries_.size() > index - cached_after_ - 1) {
    cached_bytes_ -= entries_.back().Bytes();
    entries_.pop_back();
  }
  while (!runs_.empty() && runs_.back().first >= index)
    runs_.pop_back();
  last_index_ = index - 1;
  if (stabled_ > last_index_) stabled_ = last_index_;
}

LogIndex RaftLog::MaybeAppend(LogIndex prev_index, std::vector<Entry>& entries) {
  LogIndex last_new = prev_index + entries.size();
  // Find the first entry that is new or conflicts.
  size_t i = 0;
  for (; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    BW_ASSERT_EQ(e.index, prev_index + 1 + i);
    if (e.index <= offset_) continue;  // compacted: known committed, so it matches
    if (e.index > last_index_) break;
    if (!MatchTerm(e.index, e.term)) {
      TruncateFrom(e.index);
      break;
    }
  }
  for (; i < entries.size(); ++i) {
    if (entries[i].index <= offset_) continue;
    Append(std::move(entries[i]));
  }
  return last_new;
}

LogIndex RaftLog::FindConflictByTerm(LogIndex index, Term term) const {
  if (index > last_index_) index = last_index_;
  // Walk the runs back from the one holding `index`.
  auto it = std::upper_bound(runs_.begin(), runs_.end(), index,
                             [](LogIndex i, const Run& r) { return i < r.first; });
  while (index > offset_ && it != runs_.begin()) {
    --it;
    if (it->term <= term) return index;
    index = it->first - 1;
  }
  return index;
}

void RaftLog::CommitTo(LogIndex index) {
  if (index <= committed_) return;
  BW_ASSERT_LE(index, last_index_);
  committed_ = index;
}

void RaftLog::AppliedTo(LogIndex index) {
  if (index <= applied_) return;
  BW_ASSERT_LE(index, committed_);
  applied_ = index;
  MaybeEvict();
}

void RaftLog::StableTo(LogIndex index, Term term) {
  if (index <= stabled_) return;
  if (MatchTerm(index, term)) stabled_ = index;
  MaybeEvict();
}

void RaftLog::MaybeEvict() {
  if (!reader_) return;
  const LogIndex floor = std::min(applied_, stabled_);
  while (cached_bytes_ > cache_budget_ && !entries_.empty() && entries_.front().index <= floor) {
    Entry& e = entries_.front();
    if (e.time_us != 0) {
      evicted_stamp_us_ = e.time_us;
      evicted_stamp_index_ = e.index;
    }
    cached_bytes_ -= e.Bytes();
    entries_.pop_front();
    cached_after_ = cached_after_ + 1;
  }
}

void RaftLog::Restore(const SnapshotMeta& meta) {
  entries_.clear();
  runs_.clear();
  cached_bytes_ = 0;
  offset_ = meta.index;
  offset_term_ = meta.term;
  last_index_ = meta.index;
  cached_after_ = meta.index;
  committed_ = meta.index;
  applied_ = meta.index;
  stabled_ = meta.index;
  evicted_stamp_us_ = 0;
  evicted_stamp_index_ = LogIndex(0);
}

void RaftLog::CompactTo(LogIndex index) {
  if (index <= offset_) return;
  BW_ASSERT_LE(index, applied_);
  Term t = *TermAt(index);
  while (!runs_.empty() && (runs_.size() == 1 ? index >= last_index_ : runs_[1].first <= index + 1))
    runs_.pop_front();
  if (!runs_.empty() && runs_.front().first <= index) runs_.front().first = index + 1;
  while (cached_after_ < index) {
    cached_bytes_ -= entries_.front().Bytes();
    entries_.pop_front();
    cached_after_ = cached_after_ + 1;
  }
  offset_ = index;
  offset_term_ = t;
}

absl::Status RaftLog::Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                            std::vector<Entry>* out) const {
  BW_ASSERT_GT(lo, offset_);
  hi = std::min(hi, last_index_);
  if (lo > hi) return absl::OkStatus();
  const size_t before = out->size();
  uint64_t bytes = 0;
  auto take = [&](Entry e) {
    if (out->size() > before && bytes + e.Bytes() > max_bytes) return false;
    bytes += e.Bytes();
    out->push_back(std::move(e));
    return true;
  };
  if (lo <= cached_after_) {
    BW_ASSERT(reader_ != nullptr);
    const LogIndex to = std::min(hi, cached_after_);
    std::vector<Entry> read;
    BW_RETURN_IF_ERROR(reader_(lo, to, max_bytes, &read));
    for (Entry& e : read) {
      BW_ASSERT_EQ(e.index, lo + (out->size() - before));
      if (!take(std::move(e))) return absl::OkStatus();
    }
    // The reader stopped at its byte budget: so does the slice.
    if (out->size() - before < to - lo + 1) return absl::OkStatus();
    lo = to + 1;
  }
  for (LogIndex i = lo; i <= hi; i = i + 1) {
    if (!take(entries_[i - cached_after_ - 1])) break;
  }
  return absl::OkStatus();
}

void RaftLog::Unstable(std::vector<Entry>* out) const {
  for (LogIndex i = stabled_ + 1; i <= last_index_; i = i + 1)
    out->push_back(At(i));
}

void RaftLog::NextCommitted(uint64_t max_bytes, std::vector<Entry>* out) const {
  if (applied_ >= committed_) return;
  // Unapplied entries are never out of memory: no read, no error.
  BW_ASSERT_GT(applied_ + 1, cached_after_);
  absl::Status s = Slice(applied_ + 1, committed_, max_bytes, out);
  BW_ASSERT(s.ok());
}

}  // namespace bw::raft
