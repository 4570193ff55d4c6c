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
  // Durably stores `snap` and rewrites the log to hold only `hs` and the
  // entries after the snapshot.
  [[nodiscard]] absl::Status SaveSnapshot(const raft::Snapshot& snap, const raft::HardState& hs,
                                          const std::vector<raft::Entry>& after);

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

  env::Disk& disk_;
  std::string dir_;
  std::unique_ptr<Wal> wal_;
  bool fresh_ = true;
  raft::Restored loaded_;
  std::string torn_tail_;
};

}  // namespace bw::storage
