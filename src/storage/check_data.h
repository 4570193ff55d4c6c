// `bulwark check-data DIR`: verifies a member's data directory the way
// `etcdutl` inspects etcd's, and reports what it found.
//
// Checked: the snapshot file (magic, checksum, metadata); every WAL segment
// (each record's checksum, header magic/version, one member's identity,
// segment numbers without gaps, entry indexes without gaps and continuing
// the snapshot, the commit index within the log); and the state store
// (RocksDB checksums, its applied index, which may not pass the durable
// commit index). A torn tail is reported as what recovery would cut; only
// with `repair` is it cut, which discards only bytes that were never synced
// and so never acknowledged. Nothing else is ever changed.
//
// Thread-safety: none; run it on a directory no member has open.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "env/env.h"

namespace bw::storage {

struct DataReport {
  // Human-readable findings, one per line, in the order checked.
  std::vector<std::string> lines;
  // Damage that stops the member from starting (empty when clean).
  std::vector<std::string> problems;
  // A torn tail found (and, with repair, cut).
  std::string torn_tail;
  bool clean() const { return problems.empty(); }
};

// Layout of a data directory: dir/snapshot (a snapshot file, Raft members
// of the simulator), dir/wal (storage/wal.h), dir/state (RocksState), and
// dir/snapshots/snap-<index as 16 hex digits> (RocksState checkpoints).
std::string StateDir(const std::string& dir);
std::string StateSnapshotsDir(const std::string& dir);
std::string StateSnapshotPath(const std::string& dir, LogIndex index);
// The indexes of the checkpoint snapshots present, oldest first.
[[nodiscard]] absl::StatusOr<std::vector<LogIndex>> ListStateSnapshots(env::Disk& disk,
                                                                       const std::string& dir);

// Fails only when `dir` cannot be read at all; damage goes in the report.
[[nodiscard]] absl::StatusOr<DataReport> CheckDataDir(env::Disk& disk, const std::string& dir,
                                                      bool repair);

}  // namespace bw::storage
