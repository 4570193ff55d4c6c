#include "raft/progress.h"

#include <algorithm>

#include "core/assert.h"

namespace bw::raft {

void Inflights::Add(LogIndex last, uint64_t bytes) {
  BW_ASSERT(!Full() || count_ == 0);
  if (ring_.size() < max_count_) {
    // Grow lazily: most followers never fill the window.
    if (count_ == ring_.size()) {
      std::vector<Slot> grown;
      grown.reserve(std::min<uint64_t>(max_count_, std::max<uint64_t>(8, ring_.size() * 2)));
      for (uint64_t i = 0; i < count_; ++i)
        grown.push_back(ring_[(start_ + i) % ring_.size()]);
      grown.resize(grown.capacity());
      ring_ = std::move(grown);
      start_ = 0;
    }
  }
  if (count_ > 0) {
    BW_ASSERT_GT(last, ring_[(start_ + count_ - 1) % ring_.size()].last);
  }
  ring_[(start_ + count_) % ring_.size()] = Slot{last, bytes};
  ++count_;
  bytes_ += bytes;
}

void Inflights::FreeLE(LogIndex index) {
  while (count_ > 0 && ring_[start_].last <= index) {
    bytes_ -= ring_[start_].bytes;
    start_ = (start_ + 1) % ring_.size();
    --count_;
  }
  if (count_ == 0) start_ = 0;
}

void Inflights::FreeFirst() {
  if (count_ == 0) return;
  FreeLE(ring_[start_].last);
}

void Inflights::Reset() {
  start_ = 0;
  count_ = 0;
  bytes_ = 0;
}

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "?";
}

void Progress::BecomeProbe() {
  // Coming out of a snapshot, resume after what the snapshot covered.
  if (state == ProgressState::kSnapshot) {
    LogIndex after = std::max(match + 1, pending_snapshot + 1);
    next = after;
  } else {
    next = match + 1;
  }
  state = ProgressState::kProbe;
  probe_sent = false;
  pending_snapshot = LogIndex(0);
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = LogIndex(0);
  inflights.Reset();
}

void Progress::BecomeSnapshot(LogIndex snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  snapshot_offset = 0;
  snapshot_acked = true;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(LogIndex index) {
  bool updated = false;
  if (match < index) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(LogIndex rejected, LogIndex hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection for something already matched is stale.
    if (rejected <= match) return false;
    next = std::max(std::min(rejected, hint + 1), match + 1);
    state = ProgressState::kProbe;
    probe_sent = false;
    inflights.Reset();
    return true;
  }
  // Probe (or snapshot): only the answer to the last probe counts.
  if (next - 1 != rejected) return false;
  // Not clamped to match + 1: a follower that lost entries it acknowledged
  // (a broken disk) must be probed below its old match, or the leader would
  // resend the same rejected append for ever.
  next = std::max(std::min(rejected, hint + 1), LogIndex(1));
  probe_sent = false;
  return true;
}

bool Progress::Paused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

void Progress::SentEntries(LogIndex last, uint64_t bytes) {
  if (state == ProgressState::kReplicate) {
    if (last >= next) {
      inflights.Add(last, bytes);
      next = last + 1;
    }
  } else if (state == ProgressState::kProbe) {
    probe_sent = true;
  }
}

}  // namespace bw::raft
