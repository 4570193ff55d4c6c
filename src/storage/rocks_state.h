// The durable applied state of one replica, on RocksDB: the user's keys and
// values, each client's last applied request seq, and the log index the state
// has been brought up to. One apply step is one StateBatch, committed as one
// rocksdb::WriteBatch together with its index, so after a crash the state and
// applied_index() always agree: replay resumes at applied_index() + 1.
//
// On storage::RocksEngine (storage/rocks_engine.h: the directory's layout of
// generations, the lock, checkpoints and their crash-safe install).
//
// Keys inside the database, by one-byte prefix (so the three never mix and
// each is one contiguous range):
//   'c' client:u64-big-endian  -> seq:u64-big-endian   last applied seq
//   'd' user key bytes         -> user value bytes
//   'm' "applied"              -> index:u64-big-endian  applied index
//   'm' "format"               -> version:u8 (= kRocksStateFormat)
// Both 'm' keys are written when the store is created; a store without them
// (or with a value of the wrong size) is DATA_LOSS.
//
// Snapshots are the engine's checkpoints, the applied index in their
// metadata. Errors are the engine's; damaged meta keys are DATA_LOSS naming
// the key and what was expected.
//
// Thread-safety: none. One owner thread (the node's apply loop) calls every
// method; RocksDB runs its own background threads. The static functions
// touch no RocksState and may run on any thread, but Check must not be run
// on a directory that a live RocksState has open.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "raft/types.h"
#include "storage/rocks_engine.h"

namespace bw::storage {

inline constexpr uint8_t kRocksStateFormat = 1;

struct StateWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt deletes the key
};

// Everything one apply step changes, committed atomically together with the
// log index it brings the state up to.
struct StateBatch {
  LogIndex applied;  // must be > applied_index()
  // Applied in order: a later write to the same key wins.
  std::vector<StateWrite> writes;
  // client id -> seq of its last applied request.
  std::vector<std::pair<uint64_t, uint64_t>> client_seqs;
};

struct RocksStateOptions {
  // Sync the RocksDB WAL on every Commit. Off: a commit survives a process
  // crash at once but a power loss only after Sync().
  bool sync_writes = false;
  // Create the store when `dir` holds none; otherwise Open is NOT_FOUND.
  bool create_if_missing = true;
  // RocksDB memtable size (bytes) before a flush to an SST file.
  uint64_t write_buffer_bytes = 8 << 20;
  // Tests only: RocksEngineOptions::fault_point.
  std::function<absl::Status(std::string_view point)> fault_point;
};

class RocksState {
 public:
  // Opens the store in `dir`, creating it (and `dir`) if there is none and
  // opts.create_if_missing, and removes leftovers of interrupted installs.
  // Fails (INTERNAL, naming dir/LOCK) while another RocksState has it open.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RocksState>> Open(
      const std::string& dir, RocksStateOptions opts = {});
  RocksState(const RocksState&) = delete;
  RocksState& operator=(const RocksState&) = delete;

  // The log index the state reflects; 0 for a fresh store. Cached: read from
  // the database at Open, advanced by Commit and InstallSnapshot.
  LogIndex applied_index() const { return applied_index_; }
  // The live database directory (dir/db-<n>).
  const std::string& db_path() const { return engine_->db_path(); }

  // Writes the batch's data, client seqs and applied index as one RocksDB
  // WriteBatch (synced if opts.sync_writes). FAILED_PRECONDITION if
  // b.applied <= applied_index(); nothing is written then.
  [[nodiscard]] absl::Status Commit(const StateBatch& b);
  // Makes every committed batch durable (RocksDB FlushWAL(sync=true)).
  [[nodiscard]] absl::Status Sync();

  // nullopt when the key is absent.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(std::string_view key) const;
  // Every user key and value, in byte order, from one consistent view.
  [[nodiscard]] absl::Status ForEach(
      const std::function<void(std::string_view key, std::string_view value)>& fn) const;
  // Every client's last applied seq, in client id order.
  [[nodiscard]] absl::Status ForEachClientSeq(
      const std::function<void(uint64_t client, uint64_t seq)>& fn) const;
  // The number of user keys. Counts them: O(keys).
  [[nodiscard]] absl::StatusOr<uint64_t> key_count() const;

  // Writes a snapshot of the whole state to `snap_dir`: a RocksDB checkpoint
  // plus the metadata file (see the top of this file). meta.index must equal
  // applied_index() (else FAILED_PRECONDITION); `snap_dir` must not exist
  // (else ALREADY_EXISTS). Built in snap_dir + ".tmp" (a leftover one is
  // replaced), made durable, then renamed into place and the parent
  // directory fsynced: a crash never leaves a partial snapshot at snap_dir.
  // Cheap on one file system: the checkpoint hard-links the SST files.
  [[nodiscard]] absl::Status CreateSnapshot(const std::string& snap_dir,
                                            const raft::SnapshotMeta& meta);

  // Checks a snapshot directory against its metadata file (magic, version,
  // checksum; every listed file present with its size and CRC; no other
  // files) and returns the raft metadata. DATA_LOSS naming the file and what
  // was expected on any mismatch; FAILED_PRECONDITION for a metadata version
  // this binary does not read; NOT_FOUND if `snap_dir` does not exist.
  [[nodiscard]] static absl::StatusOr<raft::SnapshotMeta> VerifySnapshot(
      const std::string& snap_dir);
  // Deletes a snapshot directory (one no longer needed).
  [[nodiscard]] static absl::Status RemoveSnapshot(const std::string& snap_dir);

  // Replaces the whole state by the snapshot's; afterwards applied_index()
  // is the snapshot's index (which may be below the current one: the caller
  // decides whether to install). Verifies the snapshot first. Steps: build
  // dir/db-<n+1> (SST files hard-linked, falling back to a copy; other files
  // copied and fsynced), open it and check its applied index equals the
  // metadata's (else DATA_LOSS), switch CURRENT_STATE, then remove
  // dir/db-<n>. A crash before the switch reopens to the old state, after it
  // to the new one. If writing the pointer fails, which state a crash would
  // leave is unknown, so the store refuses every later call until reopened.
  // `snap_dir` is left as it was; it must be durable already (as
  // CreateSnapshot leaves it).
  [[nodiscard]] absl::Status InstallSnapshot(const std::string& snap_dir);

  // What `bulwark check-data` reports about a store.
  struct Report {
    LogIndex applied;
    uint64_t keys = 0;
    uint64_t clients = 0;
  };
  // Opens the store in `dir` read-only (rocksdb::DB::OpenForReadOnly; `dir`
  // must not be open elsewhere), checks the format and applied-index keys,
  // runs RocksDB's VerifyChecksum over every SST block, and counts keys,
  // checking every client seq value and that no key lies outside the layout.
  // NOT_FOUND if `dir` holds no store; DATA_LOSS for damage.
  [[nodiscard]] static absl::StatusOr<Report> Check(const std::string& dir);

 private:
  explicit RocksState(std::unique_ptr<RocksEngine> engine) : engine_(std::move(engine)) {}

  std::unique_ptr<RocksEngine> engine_;
  // Invariant: equals the applied-index key in the engine.
  LogIndex applied_index_;
};

}  // namespace bw::storage
