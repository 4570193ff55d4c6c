// The Raft log as the core sees it: entries after the last compaction point,
// with the commit, applied and stable (persisted) marks.
//
// The driver persists what each Ready hands it. With a reader (SetReader)
// the log keeps only recent entries in memory: once the entries it holds
// pass a byte budget, those both applied and stable leave memory, oldest
// first, and Slice reads them back through the reader (the node's WAL) for a
// follower that lags. What stays in memory for every entry is its term, as
// one run per term (a few bytes per term, not per entry). Without a reader
// every entry stays in memory (tests that drive the core alone).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "raft/types.h"

namespace bw::raft {

// Reads entries lo..hi (inclusive) back from durable storage, stopping
// before the one that would take the bytes read past `max_bytes` (at least
// one), appended to `out` in order.
using EntryReader = std::function<absl::Status(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                                               std::vector<Entry>* out)>;

class RaftLog {
 public:
  // An empty log whose history up to `offset` (inclusive) is compacted.
  RaftLog(LogIndex offset, Term offset_term);

  // Lets entries leave memory: kept in memory are the unstable and
  // unapplied entries and, past those, recent ones up to `cache_bytes`
  // (Entry::Bytes); the rest are read with `reader` when needed.
  void SetReader(EntryReader reader, uint64_t cache_bytes);

  LogIndex offset() const { return offset_; }
  Term offset_term() const { return offset_term_; }
  LogIndex first_index() const { return offset_ + 1; }
  LogIndex last_index() const { return last_index_; }
  Term last_term() const { return runs_.empty() ? offset_term_ : runs_.back().term; }

  // The term at `index`: known for offset..last_index, nullopt otherwise.
  std::optional<Term> TermAt(LogIndex index) const;
  bool MatchTerm(LogIndex index, Term term) const;
  // An entry in memory: one after cached_after() (every unapplied or
  // unstable entry is).
  const Entry& At(LogIndex index) const;
  // Entries after this index are in memory; those from first_index() up to
  // it are read back through the reader.
  LogIndex cached_after() const { return cached_after_; }
  // Bytes (Entry::Bytes) of the entries in memory.
  uint64_t cached_bytes() const { return cached_bytes_; }
  // The stamp (Entry::time_us) of the last stamped entry still in the log;
  // 0 if none is.
  int64_t LatestStamp() const;

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

  // Copies entries [lo, hi] (inclusive), stopping after `max_bytes` (at
  // least one). Entries no longer in memory come from the reader; its error
  // is returned (with what was read before it in `out`).
  [[nodiscard]] absl::Status Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                                   std::vector<Entry>* out) const;
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
  // Entries from `first` up to the next run's first (or the log's end) have
  // term `term`.
  struct Run {
    LogIndex first;
    Term term;
  };
  // Drops entries from `index` on.
  void TruncateFrom(LogIndex index);
  // Lets applied, stable entries leave memory while over the budget.
  void MaybeEvict();

  LogIndex offset_;
  Term offset_term_;
  LogIndex last_index_;
  // Invariant: cover (offset_, last_index_], firsts increasing, terms
  // increasing; empty when the log is.
  std::deque<Run> runs_;
  // Invariant: entries_[i].index == cached_after_ + 1 + i, through
  // last_index_; offset_ <= cached_after_ <= min(applied_, stabled_) when
  // cached_after_ > offset_.
  std::deque<Entry> entries_;
  LogIndex cached_after_;
  uint64_t cached_bytes_ = 0;
  EntryReader reader_;
  uint64_t cache_budget_ = 0;
  // The last stamped entry that left memory: its stamp and index.
  int64_t evicted_stamp_us_ = 0;
  LogIndex evicted_stamp_index_;
  // Invariant: offset_ <= applied_ <= committed_ <= last_index(); stabled_ <= last_index().
  LogIndex committed_;
  LogIndex applied_;
  LogIndex stabled_;
};

}  // namespace bw::raft
