// What a member reports about itself, as plain values.
#pragma once

#include <cstdint>

#include "core/histogram.h"

namespace bw::member {

// What the member reports, taken on its loop thread (member::Member::Stats): a
// plain snapshot, so the page is rendered from values and this file needs
// nothing of the member.
struct MemberStats {
  bool has_leader = false;
  bool is_leader = false;
  uint64_t leader_changes = 0;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  // The Raft log: entries held and their bytes in memory; entries sent to
  // followers read back from the WAL, and sends whose read failed.
  uint64_t log_entries = 0;
  uint64_t log_cached_bytes = 0;
  uint64_t log_entries_read = 0;
  uint64_t log_read_failures = 0;
  uint64_t pending = 0;    // client requests waiting for the log or a read
  uint64_t proposals = 0;  // entries proposed for clients
  uint64_t db_bytes = 0;
  uint64_t live_keys = 0;
  uint64_t versions = 0;
  int64_t revision = 0;
  int64_t compact_revision = 0;
  uint64_t watchers = 0;
  uint64_t leases = 0;
  uint64_t idempotency_keys = 0;
  uint64_t idempotency_bytes = 0;   // kept answers and records, counted in the quota
  int64_t quota_backend_bytes = 0;  // 0: no quota
  uint64_t records = 0;
  bool nospace_alarm = false;
  core::Histogram sync_seconds = core::Histogram::LatencySeconds();
};

}  // namespace bw::member
