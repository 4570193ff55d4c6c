// The Raft log as the core sees it: entries after the last compaction point,
// with the commit, applied and stable (persisted) marks. In memory only; the
// driver persists what each Ready hands it.
#pragma once

#include <deque>
#include <optional>
#include <vector>

#include "core/types.h"
#include "raft/types.h"

namespace bw::raft {

class RaftLog {
 public:
  // An empty log whose history up to `offset` (inclusive) is compacted.
  RaftLog(LogIndex offset, Term offset_term);

  LogIndex offset() const { return offset_; }
  Term offset_term() const { return offset_term_; }
  LogIndex first_index() const { return offset_ + 1; }
  LogIndex last_index() const { return offset_ + entries_.size(); }
  Term last_term() const { return entries_.empty() ? offset_term_ : entries_.back().term; }

  // The term at `index`: known for offset..last_index, nullopt otherwise.
  std::optional<Term> TermAt(LogIndex index) const;
  bool MatchTerm(LogIndex index, Term term) const;
  const Entry& At(LogIndex index) const;

  // Raft's "at least as up to date" comparison of (last term, last index).
  bool IsUpToDate(LogIndex last, Term term) const;

  // Leader path: appends entries whose indexes continue the log.
  void Append(Entry e);
  // Follower path: entries that follow (prev_index, prev_term), already
  // matched. Truncates from the first conflicting entry and appends the rest.
  // Returns the index of the last entry sent. Asserts that committed entries
  // are never truncated.
  LogIndex MaybeAppend(LogIndex prev_index, std::vector<Entry>& entries);

  // The largest index <= `index` whose term is <= `term` (fast backtracking).
  LogIndex FindConflictByTerm(LogIndex index, Term term) const;

  // Commit index only moves forward; it never passes last_index.
  void CommitTo(LogIndex index);
  void AppliedTo(LogIndex index);
  // The entries through `index` with term `term` are durable (ignored if the
  // log changed there meanwhile).
  void StableTo(LogIndex index, Term term);

  // Replaces the whole log with a snapshot's position.
  void Restore(const SnapshotMeta& meta);
  // Discards entries up to and including `index` (<= applied).
  void CompactTo(LogIndex index);

  // Copies entries [lo, hi] (inclusive), stopping after `max_bytes` (at least one).
  void Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes, std::vector<Entry>* out) const;
  // Entries not yet handed out for persisting.
  void Unstable(std::vector<Entry>* out) const;
  bool HasUnstable() const { return stabled_ < last_index(); }
  // Committed, not yet applied entries, up to max_bytes (at least one).
  void NextCommitted(uint64_t max_bytes, std::vector<Entry>* out) const;
  bool HasNextCommitted() const { return applied_ < committed_; }

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  LogIndex stabled() const { return stabled_; }

 private:
  LogIndex offset_;
  Term offset_term_;
  // Invariant: entries_[i].index == offset_ + 1 + i.
  std::deque<Entry> entries_;
  // Invariant: offset_ <= applied_ <= committed_ <= last_index(); stabled_ <= last_index().
  LogIndex committed_;
  LogIndex applied_;
  LogIndex stabled_;
};

}  // namespace bw::raft
