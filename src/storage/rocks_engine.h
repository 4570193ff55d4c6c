// storage::Engine on RocksDB (Debian's librocksdb): the production engine,
// with what only files give: generations, checkpoints and their install.
//
// Directory layout (`dir` is what Open is given):
//   dir/LOCK            held (fcntl) while a RocksEngine has the directory
//                       open, so a second Open fails instead of touching it.
//   dir/CURRENT_STATE   pointer file, "db-<n>\n": the live database. Written
//                       only with env::Disk::WriteFileAtomic (temp, fsync,
//                       rename, fsync dir), so it names one generation or the
//                       next, never neither.
//   dir/db-<n>/         the live RocksDB database (n = 1 when created).
//   dir/db-<m>/, m != n leftovers of an interrupted InstallCheckpoint (or of
//                       its old generation); Open removes them, with any
//                       CURRENT_STATE.tmp.
// Open finds the database only through CURRENT_STATE, so a database under
// construction is invisible until the pointer switch makes it live. A new
// engine's first batch (RocksEngineOptions::initial) is synced before the
// pointer exists: an engine that exists holds it.
//
// Checkpoint directory (CreateCheckpoint/VerifyCheckpoint/InstallCheckpoint):
// the files of a RocksDB checkpoint plus the metadata file BULWARK-SNAPSHOT,
// which lists them with their sizes and checksums (its format and codec:
// storage/snapshot_manifest.h).
//
// Errors: RocksDB failures read "rocksdb <op> <path>: <rocksdb message>";
// Corruption -> DATA_LOSS, IOError(NoSpace) -> RESOURCE_EXHAUSTED, anything
// else -> INTERNAL. Damaged data of our own (pointer, checkpoint files) is
// DATA_LOSS naming the file and what was expected.
//
// Thread-safety: one owner thread calls every method; RocksDB runs its own
// background threads. The static functions touch no engine and may run on
// any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "raft/types.h"
#include "storage/engine.h"
#include "storage/snapshot_manifest.h"

namespace rocksdb {
class DB;
class FileLock;
}  // namespace rocksdb

namespace bw::storage {

// The metadata file inside a checkpoint directory.
inline constexpr char kSnapshotMetaFile[] = "BULWARK-SNAPSHOT";

struct RocksEngineOptions {
  // Sync RocksDB's log on every Write. Off: a Write survives a crash of the
  // process at once, a power loss only after Sync.
  bool sync_writes = false;
  // Create the engine when `dir` holds none; otherwise Open is NOT_FOUND.
  bool create_if_missing = true;
  // Written (synced) into a new engine before it becomes visible.
  WriteBatch initial;
  // RocksDB memtable size (bytes) before a flush to an SST file.
  uint64_t write_buffer_bytes = 8 << 20;
  // Tests only. Called at the named points "checkpoint:built" (checkpoint
  // and metadata in snap_dir.tmp, not yet renamed), "install:built" (new
  // database ready, pointer not yet switched) and "install:switched"
  // (pointer switched, old database not yet removed). A non-OK result stops
  // the operation there and returns it, leaving the disk as a crash at that
  // point would; the engine then refuses every call until it is reopened.
  std::function<absl::Status(std::string_view point)> fault_point;
};

class RocksEngine final : public Engine {
 public:
  // Opens the engine in `dir`, creating it (and `dir`) if there is none and
  // opts.create_if_missing, and removes leftovers of interrupted installs.
  // Fails (INTERNAL, naming dir/LOCK) while another RocksEngine has it open.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RocksEngine>> Open(
      const std::string& dir, RocksEngineOptions opts = {});
  // Opens the live database of `dir` read-only (no lock; `dir` must not be
  // open elsewhere) and verifies every SST block's checksum. NOT_FOUND if
  // `dir` holds no engine. Write and Sync fail on it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RocksEngine>> OpenForCheck(
      const std::string& dir);
  // Every View and iterator must be gone by then.
  ~RocksEngine() override;
  RocksEngine(const RocksEngine&) = delete;
  RocksEngine& operator=(const RocksEngine&) = delete;

  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key, const EngineView* view = nullptr) const override;
  std::unique_ptr<EngineIterator> NewIterator(KeyRange range,
                                              const EngineView* view = nullptr) const override;
  std::shared_ptr<const EngineView> View() const override;
  [[nodiscard]] absl::Status Write(const WriteBatch& batch) override;
  // Makes every Write durable (RocksDB FlushWAL(sync=true)).
  [[nodiscard]] absl::Status Sync() override;
  // Live SST files and memtables.
  uint64_t ApproximateBytes() const override;

  // The live database directory (dir/db-<n>).
  const std::string& db_path() const { return db_path_; }

  // Writes a checkpoint of the whole engine to `snap_dir`, with `meta` in
  // its metadata file. `snap_dir` must not exist (else ALREADY_EXISTS).
  // Built in snap_dir + ".tmp" (a leftover one is replaced), made durable,
  // then renamed into place and the parent directory fsynced: a crash never
  // leaves a partial checkpoint at snap_dir. Cheap on one file system: the
  // checkpoint hard-links the SST files.
  [[nodiscard]] absl::Status CreateCheckpoint(const std::string& snap_dir,
                                              const raft::SnapshotMeta& meta);
  // Checks a checkpoint directory against its metadata file (magic,
  // version, checksum; every listed file present with its size and CRC; no
  // other files). DATA_LOSS naming the file and what was expected on any
  // mismatch; FAILED_PRECONDITION for a metadata version this binary does
  // not read; NOT_FOUND if `snap_dir` does not exist.
  [[nodiscard]] static absl::StatusOr<SnapshotManifest> VerifyCheckpoint(
      const std::string& snap_dir);
  // Deletes a checkpoint directory (renamed aside first, so a crash never
  // leaves half of one under its name).
  [[nodiscard]] static absl::Status RemoveCheckpoint(const std::string& snap_dir);

  // Replaces the engine's whole content by the checkpoint's, as a new
  // generation. Verifies the checkpoint, builds dir/db-<n+1> (SST files
  // hard-linked, falling back to a copy; other files copied and fsynced),
  // opens it and runs `check` on it (the caller's own checks of the content
  // against the metadata; its error is returned and nothing changes), then
  // switches CURRENT_STATE and removes dir/db-<n>. A crash before the switch
  // reopens to the old content, after it to the new. If writing the pointer
  // fails, which a crash would leave is unknown, so the engine refuses every
  // later call until reopened. FAILED_PRECONDITION while a View is open.
  // `snap_dir` is left as it was; it must be durable already.
  [[nodiscard]] absl::Status InstallCheckpoint(
      const std::string& snap_dir,
      const std::function<absl::Status(const Engine& next, const SnapshotManifest& m)>& check);

 private:
  RocksEngine(std::string dir, RocksEngineOptions opts);
  absl::Status Fault(std::string_view point);

  const std::string dir_;
  RocksEngineOptions opts_;
  // dir/LOCK (nullptr for OpenForCheck); released after db_ is closed.
  rocksdb::FileLock* lock_ = nullptr;
  // Generation n of the live database dir/db-<n>.
  uint64_t generation_ = 0;
  std::string db_path_;
  // Shared with Views and iterators, which must not outlive the engine.
  std::shared_ptr<rocksdb::DB> db_;
  // Not OK once the engine may no longer match the disk (a failed pointer
  // switch or a fault_point); every call then returns it.
  absl::Status poisoned_;
};

}  // namespace bw::storage
