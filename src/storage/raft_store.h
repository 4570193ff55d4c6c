// A node's durable Raft state on an env::Disk: the write-ahead log
// (storage/wal.h: hard states and entries in segment files under dir/wal)
// and the latest snapshot (dir/snapshot). Loading reads the snapshot, then
// recovers the log after it.
//
// Snapshot file: magic "BWSP":u32 crc:u32 meta:bytes data:bytes, where crc
// is the CRC-32C of meta then data; written atomically (temp, sync, rename).
// A snapshot that does not decode or whose checksum fails is DATA_LOSS.
//
// Thread-safety: none; owned by the node's event loop (or its storage thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "env/env.h"
#include "raft/raft.h"
#include "storage/wal.h"

namespace bw::storage {

class RaftStore {
 public:
  // Opens (creating if need be) the store in `dir` and loads what it holds.
  // `wal` names the member that owns the directory and sizes the segments.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RaftStore>> Open(env::Disk& disk,
                                                                       std::string dir,
                                                                       const WalOptions& wal);

  // True when nothing was ever persisted here.
  bool fresh() const { return fresh_; }
  // What Open found: hard state, snapshot and the entries after it.
  raft::Restored TakeLoaded();

  // Writes (without syncing) the hard state and entries of a Ready. A
  // snapshot in the Ready must be saved first with SaveSnapshot.
  [[nodiscard]] absl::Status Append(const std::optional<raft::HardState>& hs,
                                    const std::vector<raft::Entry>& entries);
  // Makes every Append so far durable.
  [[nodiscard]] absl::Status Sync();
  // The same without blocking the caller (Wal::SyncAsync).
  void SyncAsync(env::Env& env, std::function<void(absl::Status)> done) {
    wal_->SyncAsync(env, std::move(done));
  }
  // WalOptions::planted_lying_sync: writes what Sync only pretended to.
  [[nodiscard]] absl::Status PlantedFlush() { return wal_->PlantedFlush(); }
  // Durably stores `snap` (one received from the leader) and rewrites the
  // log to hold only `hs` and the entries after the snapshot.
  [[nodiscard]] absl::Status SaveSnapshot(const raft::Snapshot& snap, const raft::HardState& hs,
                                          const std::vector<raft::Entry>& after);
  // Durably stores `snap`, a snapshot of this member's own applied state,
  // and releases the log segments that hold only entries at or below
  // `log_offset` (the Raft log's compaction point, at or below the
  // snapshot's index). The log itself goes on as it is: nothing is
  // rewritten, and the entries after `log_offset` can still be read back.
  [[nodiscard]] absl::Status SaveOwnSnapshot(const raft::Snapshot& snap, LogIndex log_offset);
  // Reads entries back from the log (Wal::ReadEntries).
  [[nodiscard]] absl::Status ReadEntries(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                                         std::vector<raft::Entry>* out) const {
    return wal_->ReadEntries(lo, hi, max_bytes, out);
  }

  uint64_t log_bytes() const { return wal_ ? wal_->bytes() : 0; }
  const Wal& wal() const { return *wal_; }
  // What Open cut off as a torn write ("" if nothing): file, bytes, offset, why.
  const std::string& torn_tail() const { return torn_tail_; }

  static std::string SnapshotPath(const std::string& dir) { return dir + "/snapshot"; }
  static std::string WalDir(const std::string& dir) { return dir + "/wal"; }
  // Reads and verifies a snapshot file.
  [[nodiscard]] static absl::StatusOr<raft::Snapshot> ReadSnapshot(env::Disk& disk,
                                                                   const std::string& path);

 private:
  RaftStore(env::Disk& disk, std::string dir) : disk_(disk), dir_(std::move(dir)) {}
  absl::Status Load(const WalOptions& wal);
  // Writes the snapshot file (temp, sync, rename).
  absl::Status WriteSnapshotFile(const raft::Snapshot& snap);

  env::Disk& disk_;
  std::string dir_;
  std::unique_ptr<Wal> wal_;
  bool fresh_ = true;
  raft::Restored loaded_;
  std::string torn_tail_;
};

}  // namespace bw::storage
