#include "storage/group_commit.h"

#include <algorithm>
#include <utility>

namespace bw::storage {

GroupCommitter::GroupCommitter(Wal& wal, Term term, uint64_t max_queued_bytes, OnDurable on_durable,
                               uint64_t max_group_bytes, size_t max_groups_ahead)
    : wal_(wal),
      term_(term),
      max_queued_bytes_(max_queued_bytes),
      on_durable_(std::move(on_durable)),
      max_group_bytes_(max_group_bytes),
      max_groups_ahead_(max_groups_ahead == 0 ? 1 : max_groups_ahead) {}

void GroupCommitter::Submit(std::string payload, Done done) {
  std::vector<std::string> one;
  one.push_back(std::move(payload));
  SubmitBatch(std::move(one), std::move(done));
}

void GroupCommitter::SubmitBatch(std::vector<std::string> payloads, Done done) {
  Pending p;
  for (const std::string& s : payloads)
    p.bytes += s.size();
  p.payloads = std::move(payloads);
  p.done = std::move(done);
  Enqueue(std::move(p), /*may_lead=*/false);
}

absl::StatusOr<LogIndex> GroupCommitter::Write(std::vector<std::string> payloads) {
  absl::StatusOr<LogIndex> result = absl::UnknownError("wal: write not completed");
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool finished = false;
  Pending p;
  for (const std::string& s : payloads)
    p.bytes += s.size();
  p.payloads = std::move(payloads);
  p.done = [&](absl::StatusOr<LogIndex> r) {
    std::lock_guard<std::mutex> lock(done_mu);
    result = std::move(r);
    finished = true;
    done_cv.notify_one();
  };
  Enqueue(std::move(p), /*may_lead=*/true);
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait(lock, [&] { return finished; });
  return result;
}

void GroupCommitter::Enqueue(Pending p, bool may_lead) {
  if (p.payloads.empty()) {
    p.done(absl::InvalidArgumentError("wal: empty batch"));
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  space_.wait(lock,
              [&] { return queued_bytes_ < max_queued_bytes_ || stopping_ || !failed_.ok(); });
  if (!failed_.ok() || stopping_) {
    absl::Status s = failed_.ok() ? absl::UnavailableError("wal: group commit stopped") : failed_;
    lock.unlock();
    p.done(s);
    return;
  }
  if (may_lead && !wal_owner_ && !syncing_ && sync_queue_.empty() && queue_.empty()) {
    // Idle: this writer appends and syncs its own entries, with no hand-off
    // to the storage threads and back (a lone writer's latency is then one
    // write and one fdatasync). Whoever comes meanwhile queues behind it.
    wal_owner_ = true;
    syncing_ = true;
    lock.unlock();
    Group group;
    TakeInto(p, &group);
    absl::Status s = AppendGroup(group);
    {
      // The log is free for the append stage while this sync runs; what it
      // appends is synced after this group (syncing_ holds the order).
      // Wake-ups only for whoever can proceed: a lone writer's path then
      // makes no futex calls beyond its own write and sync.
      std::lock_guard<std::mutex> relock(mu_);
      wal_owner_ = false;
      if (!queue_.empty() || stopping_) work_.notify_one();
    }
    bool synced = false;
    if (s.ok()) {
      s = group.file->Sync();
      synced = true;
    }
    bool fatal = !s.ok() && !absl::IsResourceExhausted(s);
    if (fatal) FailQueued(s);
    std::vector<Group> one;
    one.push_back(std::move(group));
    Complete(one, s, synced && s.ok());
    lock.lock();
    syncing_ = false;
    if (!queue_.empty() || stopping_) work_.notify_one();
    if (!sync_queue_.empty() || appender_done_) {
      to_sync_.notify_all();
      synced_.notify_all();
    }
    return;
  }
  queued_bytes_ += p.bytes;
  queue_.push_back(std::move(p));
  if (queue_.size() == 1) work_.notify_one();
}

void GroupCommitter::TakeInto(Pending& p, Group* group) {
  group->bytes += p.bytes;
  for (std::string& payload : p.payloads) {
    group->entries.push_back(
        raft::Entry{term_, LogIndex(0), raft::EntryType::kNormal, std::move(payload)});
  }
  group->dones.emplace_back(group->entries.size() - 1, std::move(p.done));
}

size_t GroupCommitter::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const Pending& p : queue_)
    n += p.payloads.size();
  return n;
}

void GroupCommitter::RequestRelease(LogIndex index) {
  std::lock_guard<std::mutex> lock(mu_);
  release_to_ = std::max(release_to_, index);
}

absl::Status GroupCommitter::AppendGroup(Group& group) {
  LogIndex release;
  {
    std::lock_guard<std::mutex> lock(mu_);
    release = release_to_;
  }
  if (release > LogIndex(0)) {
    BW_ASSIGN_OR_RETURN(size_t n, wal_.Release(release));
    std::lock_guard<std::mutex> lock(mu_);
    stats_.segments_released += n;
  }
  LogIndex next = wal_.last_index() + 1;
  for (raft::Entry& e : group.entries) {
    e.index = next;
    ++next;
  }
  raft::HardState hs{term_, kNoNode, group.entries.back().index};
  BW_RETURN_IF_ERROR(wal_.Append(hs, group.entries));
  group.file = wal_.active_file();
  return absl::OkStatus();
}

void GroupCommitter::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  work_.notify_all();
  space_.notify_all();
}

GroupCommitStats GroupCommitter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void GroupCommitter::FailQueued(const absl::Status& s) {
  std::deque<Pending> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.ok()) failed_ = s;
    rest.swap(queue_);
    queued_bytes_ = 0;
    space_.notify_all();
    work_.notify_all();  // the append stage returns
    to_sync_.notify_all();
  }
  for (Pending& p : rest)
    p.done(s);
}

void GroupCommitter::Complete(std::vector<Group>& groups, const absl::Status& s, bool synced_once) {
  if (s.ok()) {
    for (const Group& g : groups) {
      if (on_durable_) on_durable_(g.entries);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (synced_once) ++stats_.syncs;
      for (const Group& g : groups) {
        ++stats_.groups;
        stats_.entries += g.entries.size();
        stats_.bytes += g.bytes;
        stats_.largest_group = std::max<uint64_t>(stats_.largest_group, g.entries.size());
      }
    }
  }
  for (Group& g : groups) {
    for (auto& [pos, done] : g.dones) {
      if (s.ok()) {
        done(g.entries[pos].index);
      } else {
        done(s);
      }
    }
  }
}

void GroupCommitter::Run() {
  for (;;) {
    Group group;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock,
                 [&] { return ((!queue_.empty() || stopping_) && !wal_owner_) || !failed_.ok(); });
      if (queue_.empty() || !failed_.ok()) break;
      // Up to max_group_bytes_ per group: larger groups only make their
      // first writers wait longer.
      while (!queue_.empty() && group.bytes < max_group_bytes_) {
        TakeInto(queue_.front(), &group);
        queue_.pop_front();
      }
      queued_bytes_ -= group.bytes;
      wal_owner_ = true;
      space_.notify_all();
    }
    absl::Status s = AppendGroup(group);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (s.ok() && !failed_.ok()) s = failed_;  // a sync failed meanwhile: never sync again
      if (s.ok()) {
        // The sync stage takes it (with any groups ahead of it, one sync for
        // all) while this stage writes the next one. The log stays ours
        // until the group is in the queue: while we wait for room, a Write
        // that found the committer idle would lead, and its later entries
        // would be made durable and applied before this group's.
        if (sync_queue_.size() >= max_groups_ahead_ && waiting_for_room_hook_) {
          lock.unlock();
          waiting_for_room_hook_();
          lock.lock();
        }
        synced_.wait(lock, [&] { return sync_queue_.size() < max_groups_ahead_; });
        sync_queue_.push_back(std::move(group));
        wal_owner_ = false;
        work_.notify_one();
        to_sync_.notify_one();
        continue;
      }
      wal_owner_ = false;
      work_.notify_one();
    }
    std::vector<Group> one;
    one.push_back(std::move(group));
    Complete(one, s, false);
    if (absl::IsResourceExhausted(s)) continue;
    FailQueued(s);
    break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  appender_done_ = true;
  to_sync_.notify_all();
}

void GroupCommitter::RunSyncer() {
  for (;;) {
    std::vector<Group> groups;
    absl::Status prior;
    {
      std::unique_lock<std::mutex> lock(mu_);
      to_sync_.wait(lock, [&] { return !syncing_ && (!sync_queue_.empty() || appender_done_); });
      if (sync_queue_.empty()) return;
      groups.swap(sync_queue_);
      syncing_ = true;
      // After a failed sync nothing more is synced (a later fdatasync may
      // report success for pages that were dropped): these groups fail.
      prior = failed_;
      synced_.notify_all();
    }
    // One sync of the newest group's segment covers them all: older
    // segments were synced when they were closed.
    absl::Status s = prior.ok() ? groups.back().file->Sync() : prior;
    if (!s.ok() && prior.ok()) FailQueued(s);
    Complete(groups, s, prior.ok() && s.ok());
    std::lock_guard<std::mutex> lock(mu_);
    syncing_ = false;
    synced_.notify_all();
    to_sync_.notify_all();
  }
}

}  // namespace bw::storage
