#include "raft/config.h"

#include "absl/strings/str_cat.h"

namespace bw::raft {

absl::Status Config::Validate() const {
  if (id == kNoNode) return absl::InvalidArgumentError("raft config: id must be non-zero");
  if (heartbeat_ticks == 0) {
    return absl::InvalidArgumentError("raft config: heartbeat_ticks must be at least 1");
  }
  if (election_ticks <= heartbeat_ticks) {
    return absl::InvalidArgumentError(absl::StrCat("raft config: election_ticks (", election_ticks,
                                                   ") must be greater than heartbeat_ticks (",
                                                   heartbeat_ticks, ")"));
  }
  if (max_inflight_messages == 0) {
    return absl::InvalidArgumentError("raft config: max_inflight_messages must be at least 1");
  }
  if (max_append_bytes == 0 || max_inflight_bytes < max_append_bytes) {
    return absl::InvalidArgumentError(
        "raft config: max_inflight_bytes must be at least max_append_bytes (> 0)");
  }
  if (snapshot_chunk_bytes == 0 || snapshot_chunk_bytes > limits::kMaxMessageBytes / 2) {
    return absl::InvalidArgumentError("raft config: snapshot_chunk_bytes out of range");
  }
  if (max_uncommitted_bytes == 0 || max_apply_bytes == 0 || max_pending_reads == 0) {
    return absl::InvalidArgumentError("raft config: limits must be non-zero");
  }
  if (lease_reads && !check_quorum) {
    return absl::InvalidArgumentError("raft config: lease_reads requires check_quorum");
  }
#ifndef BW_PLANTED_BUGS
  if (bugs.commit_previous_term_by_counting || bugs.skip_vote_log_check) {
    return absl::InvalidArgumentError("raft config: planted bugs are not compiled in this build");
  }
#endif
  return absl::OkStatus();
}

}  // namespace bw::raft
