// Group commit: many writers, one fdatasync per group, appends and syncs
// overlapped.
//
// Writers Submit entries from any thread. The append stage (Run) takes what
// is queued, up to `max_group_bytes`, appends it to the WAL as consecutive
// entries followed by a hard state whose commit index is the last of them,
// and hands the group to the sync stage (RunSyncer), which makes it durable
// with one fdatasync of the active segment and then completes the group's
// callbacks in order, each with the index its entry got. While one group is
// being synced the next is encoded and written, so the disk is kept busy;
// and when several groups wait for the sync stage, one fdatasync covers them
// all. A lone blocking writer (Write) pays no hand-off: when the committer
// is idle it appends and syncs its entries itself, and the append stage may
// write the next group while that sync runs.
//
// This is the log of a single writer (the entries need no agreement), as the
// storage benchmark and the crash test use it; a Raft member's storage
// thread does the same with the entries of each Ready.
//
// Failure: a failed append or sync stops the committer for good (the WAL's
// error is sticky): the groups in hand and everything queued get the error,
// and later Submits get it at once. A full disk is not a failure: the group
// is completed with RESOURCE_EXHAUSTED and nothing of it was written.
//
// Thread-safety: Submit, Stop and stats are thread-safe; Run and RunSyncer
// are each called by exactly one thread (start both). Callbacks run on one
// of those two threads or on a submitting writer's. Successful ones run one
// at a time, in log order; after a failure, error callbacks may run on more
// than one thread at once. An error means "not acknowledged": after a failed
// sync the entries may or may not be on the disk.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/wal.h"

namespace bw::storage {

struct GroupCommitStats {
  uint64_t groups = 0;   // groups made durable
  uint64_t syncs = 0;    // fdatasyncs (one may cover several groups)
  uint64_t entries = 0;  // entries made durable
  uint64_t bytes = 0;    // payload bytes made durable
  uint64_t largest_group = 0;
  uint64_t segments_released = 0;
};

class GroupCommitter {
 public:
  // Called with the entry's index once it is durable, or with the error.
  using Done = std::function<void(absl::StatusOr<LogIndex>)>;
  // Called for each durable group, in log order, before its callbacks (e.g.
  // to apply the entries).
  using OnDurable = std::function<void(const std::vector<raft::Entry>& group)>;

  // `wal` must outlive the committer and be used by nobody else meanwhile.
  // Entries get term `term` and indexes from wal.last_index() + 1 on.
  // Submit blocks while more than `max_queued_bytes` are waiting. A group
  // holds at most about `max_group_bytes` of payload.
  // At most `max_groups_ahead` appended groups wait for the sync stage.
  GroupCommitter(Wal& wal, Term term, uint64_t max_queued_bytes = 64 << 20,
                 OnDurable on_durable = nullptr, uint64_t max_group_bytes = 4 << 20,
                 size_t max_groups_ahead = 4);

  // Queues an entry; never waits for I/O (only for room in the queue), so an
  // event loop may call it. `done` runs on a committer thread.
  void Submit(std::string payload, Done done);
  // Several entries at once, kept together (a Ready's worth); `done` gets
  // the last one's index. `payloads` must not be empty.
  void SubmitBatch(std::vector<std::string> payloads, Done done);
  // Writes the entries and returns once they are durable, with the last
  // one's index. When the committer is idle the calling thread does the
  // append and sync itself (as RocksDB's write-group leader does), so a lone
  // writer pays no hand-off between threads.
  absl::StatusOr<LogIndex> Write(std::vector<std::string> payloads);
  // The append stage; returns after Stop once the queue is drained (or after
  // a failure).
  void Run();
  // The sync stage; returns once the append stage has returned and every
  // group handed to it is completed.
  void RunSyncer();
  void Stop();
  GroupCommitStats stats() const;
  // The log up to `index` is covered by a durable snapshot: its segments are
  // released (Wal::Release) before the next append. Thread-safe.
  void RequestRelease(LogIndex index);
  // Entries queued and not yet taken by the append stage (for observation).
  size_t queued() const;
  // Tests only: called on the append stage, without the lock, when an
  // appended group finds the sync stage's queue full and must wait.
  void SetWaitingForRoomHookForTest(std::function<void()> hook) {
    waiting_for_room_hook_ = std::move(hook);
  }

 private:
  struct Pending {
    std::vector<std::string> payloads;
    uint64_t bytes = 0;
    Done done;
  };
  struct Group {
    std::vector<raft::Entry> entries;
    // Each callback with the position of the entry whose index it gets.
    std::vector<std::pair<size_t, Done>> dones;
    uint64_t bytes = 0;
    // Syncing this file makes the group durable.
    std::shared_ptr<env::AppendFile> file;
  };

  // Completes durable groups (sync OK) or fails them.
  void Complete(std::vector<Group>& groups, const absl::Status& s, bool synced_once);
  void Enqueue(Pending p, bool may_lead);
  void TakeInto(Pending& p, Group* group);
  // Numbers the group's entries and appends them (wal_ owned by the caller).
  absl::Status AppendGroup(Group& group);
  // Records a fatal error and fails everything queued.
  void FailQueued(const absl::Status& s);

  Wal& wal_;
  const Term term_;
  const uint64_t max_queued_bytes_;
  const OnDurable on_durable_;
  const uint64_t max_group_bytes_;
  const size_t max_groups_ahead_;
  std::function<void()> waiting_for_room_hook_;
  mutable std::mutex mu_;
  std::condition_variable work_;     // queue non-empty, or stopping
  std::condition_variable space_;    // queue has room
  std::condition_variable to_sync_;  // groups for the sync stage, or appender done
  std::condition_variable synced_;   // the sync stage finished a round
  std::deque<Pending> queue_;
  uint64_t queued_bytes_ = 0;
  std::vector<Group> sync_queue_;
  bool syncing_ = false;    // a sync is under way (groups held for it)
  bool wal_owner_ = false;  // someone is appending to wal_
  bool stopping_ = false;
  LogIndex release_to_;  // requested by RequestRelease, under mu_
  bool appender_done_ = false;
  absl::Status failed_;
  GroupCommitStats stats_;
};

}  // namespace bw::storage
