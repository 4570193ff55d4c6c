#include "storage/rocks_engine.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/assert.h"
#include "core/crc32c.h"
#include "env/path.h"
#include "env/real/real_disk.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace bw::storage {

namespace {

namespace fs = std::filesystem;

constexpr char kPointerFile[] = "CURRENT_STATE";
constexpr char kDbPrefix[] = "db-";
// Read and copy buffer for checkpoint files (which may be tens of MiB each).
constexpr size_t kChunkBytes = 1 << 20;

// absl::string_view is not std::string_view in this Abseil build: StrCat
// needs std::string (or char*) pieces.
std::string S(std::string_view s) {
  return std::string(s);
}

std::string Hex32(uint32_t v) {
  return absl::StrFormat("0x%08x", v);
}

absl::Status RocksError(const rocksdb::Status& s, std::string_view op, std::string_view path) {
  std::string message = absl::StrCat("rocksdb ", S(op), " ", S(path), ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// std::filesystem reports errno values on POSIX; word them as RealDisk does.
absl::Status FsError(std::string_view op, std::string_view path, const std::error_code& ec) {
  return env::ErrnoToStatus(op, path, ec.value());
}

rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

std::string_view ToView(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

std::string PointerPath(const std::string& dir) {
  return absl::StrCat(dir, "/", kPointerFile);
}

std::string DbName(uint64_t generation) {
  return absl::StrCat(kDbPrefix, generation);
}

// "db-<n>" with n > 0 written canonically (no sign, no leading zeros).
std::optional<uint64_t> ParseDbName(std::string_view name) {
  std::string_view prefix(kDbPrefix);
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string digits = S(name.substr(prefix.size()));
  uint64_t generation = 0;
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(digits, &generation) || generation == 0 || DbName(generation) != name) {
    return std::nullopt;
  }
  return generation;
}

absl::StatusOr<uint64_t> ReadPointer(env::Disk& disk, const std::string& dir) {
  const std::string path = PointerPath(dir);
  BW_ASSIGN_OR_RETURN(std::string content, disk.ReadFile(path));
  std::optional<uint64_t> generation;
  if (!content.empty() && content.back() == '\n') {
    generation = ParseDbName(std::string_view(content).substr(0, content.size() - 1));
  }
  if (!generation) {
    return absl::DataLossError(absl::StrCat(path, ": malformed pointer \"", absl::CEscape(content),
                                            "\" (expected \"db-<n>\\n\")"));
  }
  return *generation;
}

// env::Disk fsyncs the directories its own operations change but has no call
// for a directory filled or renamed outside it; RocksDB's Env has one.
absl::Status SyncDir(const std::string& path) {
  std::unique_ptr<rocksdb::Directory> dir;
  rocksdb::Status s = rocksdb::Env::Default()->NewDirectory(path, &dir);
  if (s.ok()) s = dir->Fsync();
  if (!s.ok()) return RocksError(s, "fsync directory", path);
  return absl::OkStatus();
}

// env::Disk removes single files only; trees go through std::filesystem.
// Removing a path that does not exist is OK.
absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return FsError("remove_all", path, ec);
  return absl::OkStatus();
}

// Reads the file at `path` through RocksDB's Env (env::Disk reads whole
// files only, and checkpoint files can be large), a chunk at a time.
absl::Status ForEachChunk(const std::string& path,
                          const std::function<absl::Status(const rocksdb::Slice&)>& fn) {
  std::unique_ptr<rocksdb::SequentialFile> file;
  rocksdb::Status s =
      rocksdb::Env::Default()->NewSequentialFile(path, &file, rocksdb::EnvOptions());
  if (!s.ok()) return RocksError(s, "open", path);
  std::string scratch(kChunkBytes, '\0');
  while (true) {
    rocksdb::Slice chunk;
    s = file->Read(scratch.size(), &chunk, scratch.data());
    if (!s.ok()) return RocksError(s, "read", path);
    if (chunk.empty()) return absl::OkStatus();
    BW_RETURN_IF_ERROR(fn(chunk));
  }
}

absl::StatusOr<FileSum> SumFile(const std::string& dir, const std::string& name) {
  FileSum sum{0, core::Crc32c(name)};
  BW_RETURN_IF_ERROR(ForEachChunk(absl::StrCat(dir, "/", name), [&](const rocksdb::Slice& chunk) {
    sum.size += chunk.size();
    sum.crc = core::Crc32c(ToView(chunk), sum.crc);
    return absl::OkStatus();
  }));
  return sum;
}

// Copies `from` to a new file `to` and fsyncs it (not its directory).
absl::Status CopyFileSynced(const std::string& from, const std::string& to) {
  std::unique_ptr<rocksdb::WritableFile> out;
  rocksdb::Status s = rocksdb::Env::Default()->NewWritableFile(to, &out, rocksdb::EnvOptions());
  if (!s.ok()) return RocksError(s, "create", to);
  BW_RETURN_IF_ERROR(ForEachChunk(from, [&](const rocksdb::Slice& chunk) {
    rocksdb::Status w = out->Append(chunk);
    return w.ok() ? absl::OkStatus() : RocksError(w, "write", to);
  }));
  s = out->Sync();
  if (s.ok()) s = out->Close();
  if (!s.ok()) return RocksError(s, "sync", to);
  return absl::OkStatus();
}

// SST and blob files never change once written, so a new database may share
// them with the snapshot by hard link; every other file is copied.
bool Immutable(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends_with(".sst") || ends_with(".blob");
}

absl::StatusOr<SnapshotManifest> VerifySnapshotDir(const std::string& snap_dir) {
  env::RealDisk disk;
  if (!disk.Exists(snap_dir)) {
    return absl::NotFoundError(absl::StrCat("snapshot ", snap_dir, ": no such directory"));
  }
  const std::string meta_path = absl::StrCat(snap_dir, "/", kSnapshotMetaFile);
  if (!disk.Exists(meta_path)) {
    return absl::DataLossError(
        absl::StrCat(meta_path, ": missing; ", snap_dir, " is not a complete snapshot"));
  }
  BW_ASSIGN_OR_RETURN(std::string bytes, disk.ReadFile(meta_path));
  BW_ASSIGN_OR_RETURN(SnapshotManifest m, DecodeSnapshotManifest(bytes, meta_path));
  BW_ASSIGN_OR_RETURN(std::vector<std::string> names, disk.List(snap_dir));
  std::set<std::string, std::less<>> present(names.begin(), names.end());
  present.erase(kSnapshotMetaFile);
  for (const SnapshotFile& f : m.files) {
    const std::string path = absl::StrCat(snap_dir, "/", f.name);
    if (present.erase(f.name) == 0) {
      return absl::DataLossError(absl::StrCat(path, ": missing (expected ", f.sum.size,
                                              " bytes with crc32c ", Hex32(f.sum.crc), ")"));
    }
    BW_ASSIGN_OR_RETURN(FileSum found, SumFile(snap_dir, f.name));
    if (found.size != f.sum.size || found.crc != f.sum.crc) {
      return absl::DataLossError(absl::StrCat(path, ": expected ", f.sum.size,
                                              " bytes with crc32c ", Hex32(f.sum.crc), ", found ",
                                              found.size, " bytes with crc32c ", Hex32(found.crc)));
    }
  }
  if (!present.empty()) {
    return absl::DataLossError(
        absl::StrCat(snap_dir, "/", *present.begin(), ": not listed in ", kSnapshotMetaFile));
  }
  return m;
}

rocksdb::Options DbOptions(const RocksEngineOptions& opts) {
  rocksdb::Options o;
  o.create_if_missing = false;
  o.paranoid_checks = true;
  // Modest: a replica shares a small machine with its WAL and network.
  o.write_buffer_size = opts.write_buffer_bytes;
  o.max_write_buffer_number = 2;
  o.max_background_jobs = 2;
  o.max_open_files = 512;
  o.keep_log_file_num = 2;
  o.max_log_file_size = 1 << 20;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  return o;
}

absl::StatusOr<std::shared_ptr<rocksdb::DB>> OpenDb(const std::string& path,
                                                    const RocksEngineOptions& opts, bool create) {
  rocksdb::Options o = DbOptions(opts);
  o.create_if_missing = create;
  o.error_if_exists = create;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, path, &raw);
  if (!s.ok()) return RocksError(s, "open", path);
  return std::shared_ptr<rocksdb::DB>(raw);
}

class RocksView final : public EngineView {
 public:
  RocksView(const RocksEngine* owner, std::shared_ptr<rocksdb::DB> db)
      : owner_(owner), db_(std::move(db)), snapshot_(db_->GetSnapshot()) {}
  ~RocksView() override { db_->ReleaseSnapshot(snapshot_); }
  RocksView(const RocksView&) = delete;
  RocksView& operator=(const RocksView&) = delete;
  const RocksEngine* owner() const { return owner_; }
  const rocksdb::Snapshot* snapshot() const { return snapshot_; }

 private:
  const RocksEngine* owner_;
  std::shared_ptr<rocksdb::DB> db_;
  const rocksdb::Snapshot* snapshot_;
};

const rocksdb::Snapshot* SnapshotOf(const RocksEngine* engine, const EngineView* view) {
  if (view == nullptr) return nullptr;
  const auto* v = dynamic_cast<const RocksView*>(view);
  BW_ASSERT(v != nullptr && v->owner() == engine);  // a view of another engine
  return v->snapshot();
}

class RocksIterator final : public EngineIterator {
 public:
  RocksIterator(std::shared_ptr<rocksdb::DB> db, std::string path, KeyRange range,
                const rocksdb::Snapshot* snapshot)
      : db_(std::move(db)), path_(std::move(path)), range_(std::move(range)) {
    lower_ = ToSlice(range_.lower);
    upper_ = ToSlice(range_.upper);
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.iterate_lower_bound = &lower_;
    if (!range_.upper.empty()) ro.iterate_upper_bound = &upper_;
    it_.reset(db_->NewIterator(ro));
  }

  void SeekToFirst() override { it_->Seek(lower_); }
  void Seek(std::string_view key) override {
    it_->Seek(ToSlice(std::max(key, std::string_view(range_.lower))));
  }
  bool Valid() const override { return it_->Valid(); }
  void Next() override {
    BW_ASSERT(Valid());
    it_->Next();
  }
  std::string_view key() const override { return ToView(it_->key()); }
  std::string_view value() const override { return ToView(it_->value()); }
  absl::Status status() const override {
    if (it_->status().ok()) return absl::OkStatus();
    return RocksError(it_->status(), "iterate", path_);
  }

 private:
  // Declared first: destroyed after the iterator, which it outlives.
  std::shared_ptr<rocksdb::DB> db_;
  std::string path_;
  KeyRange range_;  // owns the bytes lower_ and upper_ point into
  rocksdb::Slice lower_;
  rocksdb::Slice upper_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace

RocksEngine::RocksEngine(std::string dir, RocksEngineOptions opts)
    : dir_(std::move(dir)), opts_(std::move(opts)) {}

RocksEngine::~RocksEngine() {
  BW_ASSERT(db_ == nullptr || db_.use_count() == 1);  // a View or iterator outlived the engine
  db_.reset();
  if (lock_ != nullptr) rocksdb::Env::Default()->UnlockFile(lock_).PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<RocksEngine>> RocksEngine::Open(const std::string& dir,
                                                               RocksEngineOptions opts) {
  env::RealDisk disk;
  const std::string pointer = PointerPath(dir);
  if (!opts.create_if_missing && !disk.Exists(pointer)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no bulwark state store (", kPointerFile, " missing)"));
  }
  BW_RETURN_IF_ERROR(disk.CreateDir(dir));
  std::unique_ptr<RocksEngine> engine(new RocksEngine(dir, std::move(opts)));
  // Taken before anything below looks at or removes files: a second Open of
  // a live engine must not mistake its install in progress for a leftover.
  const std::string lock_path = absl::StrCat(dir, "/LOCK");
  rocksdb::Status locked = rocksdb::Env::Default()->LockFile(lock_path, &engine->lock_);
  if (!locked.ok()) return RocksError(locked, "lock", lock_path);
  const bool fresh = !disk.Exists(pointer);
  if (fresh) {
    // A crash while creating the engine can leave db-1 without a pointer to
    // it; nothing was ever committed there.
    engine->generation_ = 1;
    BW_RETURN_IF_ERROR(RemoveTree(absl::StrCat(dir, "/", DbName(1))));
  } else {
    BW_ASSIGN_OR_RETURN(engine->generation_, ReadPointer(disk, dir));
    // Leftovers of an interrupted install: its new database if the pointer
    // was not switched, the old one if it was, and the pointer's temp file.
    BW_ASSIGN_OR_RETURN(std::vector<std::string> names, disk.List(dir));
    for (const std::string& name : names) {
      const std::string path = absl::StrCat(dir, "/", name);
      std::optional<uint64_t> generation = ParseDbName(name);
      if (generation && *generation != engine->generation_) {
        BW_RETURN_IF_ERROR(RemoveTree(path));
      } else if (name == absl::StrCat(kPointerFile, ".tmp")) {
        BW_RETURN_IF_ERROR(disk.Remove(path));
      }
    }
  }
  engine->db_path_ = absl::StrCat(dir, "/", DbName(engine->generation_));
  if (!fresh && !disk.Exists(engine->db_path_)) {
    return absl::DataLossError(absl::StrCat(pointer, " names ", DbName(engine->generation_),
                                            ", but ", engine->db_path_, " does not exist"));
  }
  BW_ASSIGN_OR_RETURN(engine->db_, OpenDb(engine->db_path_, engine->opts_, /*create=*/fresh));
  if (fresh) {
    if (!engine->opts_.initial.empty()) {
      const bool sync = engine->opts_.sync_writes;
      engine->opts_.sync_writes = true;
      absl::Status s = engine->Write(engine->opts_.initial);
      engine->opts_.sync_writes = sync;
      BW_RETURN_IF_ERROR(s);
    }
    // The engine exists from this moment on.
    BW_RETURN_IF_ERROR(disk.WriteFileAtomic(pointer, DbName(engine->generation_) + "\n"));
  }
  return engine;
}

absl::StatusOr<std::unique_ptr<RocksEngine>> RocksEngine::OpenForCheck(const std::string& dir) {
  env::RealDisk disk;
  if (!disk.Exists(PointerPath(dir))) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no bulwark state store (", kPointerFile, " missing)"));
  }
  std::unique_ptr<RocksEngine> engine(new RocksEngine(dir, RocksEngineOptions{}));
  BW_ASSIGN_OR_RETURN(engine->generation_, ReadPointer(disk, dir));
  engine->db_path_ = absl::StrCat(dir, "/", DbName(engine->generation_));
  if (!disk.Exists(engine->db_path_)) {
    return absl::DataLossError(absl::StrCat(PointerPath(dir), " names ",
                                            DbName(engine->generation_), ", which does not exist"));
  }
  rocksdb::Options o;
  o.create_if_missing = false;
  o.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, engine->db_path_, &raw);
  if (!s.ok()) return RocksError(s, "open read-only", engine->db_path_);
  engine->db_.reset(raw);
  s = engine->db_->VerifyChecksum();
  if (!s.ok()) return RocksError(s, "verify checksum", engine->db_path_);
  return engine;
}

absl::Status RocksEngine::Fault(std::string_view point) {
  if (!opts_.fault_point) return absl::OkStatus();
  absl::Status s = opts_.fault_point(point);
  if (!s.ok()) poisoned_ = s;
  return s;
}

absl::StatusOr<std::optional<std::string>> RocksEngine::Get(std::string_view key,
                                                            const EngineView* view) const {
  BW_RETURN_IF_ERROR(poisoned_);
  rocksdb::ReadOptions ro;
  ro.snapshot = SnapshotOf(this, view);
  std::string value;
  rocksdb::Status s = db_->Get(ro, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return RocksError(s, "get", db_path_);
  return std::optional<std::string>(std::move(value));
}

std::unique_ptr<EngineIterator> RocksEngine::NewIterator(KeyRange range,
                                                         const EngineView* view) const {
  return std::make_unique<RocksIterator>(db_, db_path_, std::move(range), SnapshotOf(this, view));
}

std::shared_ptr<const EngineView> RocksEngine::View() const {
  return std::make_shared<RocksView>(this, db_);
}

absl::Status RocksEngine::Write(const WriteBatch& batch) {
  BW_RETURN_IF_ERROR(poisoned_);
  rocksdb::WriteBatch b;
  rocksdb::Status s;
  for (const WriteBatch::Entry& e : batch.entries()) {
    switch (e.op) {
      case WriteBatch::Op::kPut:
        s = b.Put(ToSlice(e.key), ToSlice(e.value));
        break;
      case WriteBatch::Op::kDelete:
        s = b.Delete(ToSlice(e.key));
        break;
      case WriteBatch::Op::kDeleteRange:
        if (e.value > e.key) s = b.DeleteRange(ToSlice(e.key), ToSlice(e.value));
        break;
    }
    if (!s.ok()) return RocksError(s, "batch", db_path_);
  }
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  s = db_->Write(wo, &b);
  if (!s.ok()) return RocksError(s, "write", db_path_);
  return absl::OkStatus();
}

absl::Status RocksEngine::Sync() {
  BW_RETURN_IF_ERROR(poisoned_);
  rocksdb::Status s = db_->FlushWAL(/*sync=*/true);
  if (!s.ok()) return RocksError(s, "sync wal", db_path_);
  return absl::OkStatus();
}

uint64_t RocksEngine::ApproximateBytes() const {
  uint64_t sst = 0;
  uint64_t mem = 0;
  db_->GetIntProperty("rocksdb.live-sst-files-size", &sst);
  db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
  return sst + mem;
}

absl::Status RocksEngine::CreateCheckpoint(const std::string& snap_dir,
                                           const raft::SnapshotMeta& meta) {
  BW_RETURN_IF_ERROR(poisoned_);
  // RocksDB wants an absolute checkpoint path.
  std::error_code ec;
  fs::path absolute = fs::absolute(snap_dir, ec).lexically_normal();
  if (ec) return FsError("absolute", snap_dir, ec);
  if (!absolute.has_filename()) absolute = absolute.parent_path();  // "x/" -> "x"
  const std::string target = absolute.string();
  const std::string tmp = target + ".tmp";
  env::RealDisk disk;
  if (disk.Exists(target)) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", target, ": already exists (snapshots are never overwritten)"));
  }
  BW_RETURN_IF_ERROR(RemoveTree(tmp));  // a crash's leftover
  BW_RETURN_IF_ERROR(disk.CreateDir(env::ParentDir(target)));

  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
  if (!s.ok()) return RocksError(s, "checkpoint", db_path_);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // Flushes the memtable first; syncs what it copies and the directory.
  s = checkpoint->CreateCheckpoint(tmp);
  if (!s.ok()) return RocksError(s, "checkpoint", tmp);

  SnapshotManifest m{meta, {}};
  BW_ASSIGN_OR_RETURN(std::vector<std::string> names, disk.List(tmp));
  for (const std::string& name : names) {
    BW_ASSIGN_OR_RETURN(FileSum sum, SumFile(tmp, name));
    m.files.push_back(SnapshotFile{name, sum});
  }
  BW_RETURN_IF_ERROR(
      disk.WriteFileAtomic(absl::StrCat(tmp, "/", kSnapshotMetaFile), EncodeSnapshotManifest(m)));
  BW_RETURN_IF_ERROR(Fault("checkpoint:built"));
  // env::Disk cannot rename a directory.
  fs::rename(tmp, target, ec);
  if (ec) return FsError("rename", absl::StrCat(tmp, " -> ", target), ec);
  return SyncDir(env::ParentDir(target));
}

absl::StatusOr<SnapshotManifest> RocksEngine::VerifyCheckpoint(const std::string& snap_dir) {
  return VerifySnapshotDir(snap_dir);
}

absl::Status RocksEngine::InstallCheckpoint(
    const std::string& snap_dir,
    const std::function<absl::Status(const Engine& next, const SnapshotManifest& m)>& check) {
  BW_RETURN_IF_ERROR(poisoned_);
  if (db_.use_count() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_, ": a view or iterator of the current state is still open"));
  }
  BW_ASSIGN_OR_RETURN(SnapshotManifest m, VerifySnapshotDir(snap_dir));
  env::RealDisk disk;
  const uint64_t next = generation_ + 1;
  const std::string next_path = absl::StrCat(dir_, "/", DbName(next));

  // Build and check the new database; until the pointer names it, it is a
  // leftover that Open would remove.
  std::unique_ptr<RocksEngine> next_engine(new RocksEngine(dir_, RocksEngineOptions{}));
  auto build = [&]() -> absl::Status {
    BW_RETURN_IF_ERROR(RemoveTree(next_path));
    BW_RETURN_IF_ERROR(disk.CreateDir(next_path));
    for (const SnapshotFile& f : m.files) {
      const std::string from = absl::StrCat(snap_dir, "/", f.name);
      const std::string to = absl::StrCat(next_path, "/", f.name);
      if (Immutable(f.name)) {
        // env::Disk has no hard links. Across file systems (EXDEV) or where
        // links are not supported, fall back to a copy.
        std::error_code ec;
        fs::create_hard_link(from, to, ec);
        if (!ec) continue;
      }
      BW_RETURN_IF_ERROR(CopyFileSynced(from, to));
    }
    BW_RETURN_IF_ERROR(SyncDir(next_path));
    next_engine->db_path_ = next_path;
    BW_ASSIGN_OR_RETURN(next_engine->db_, OpenDb(next_path, opts_, /*create=*/false));
    return check ? check(*next_engine, m) : absl::OkStatus();
  };
  if (absl::Status built = build(); !built.ok()) {
    next_engine.reset();
    // Best effort: Open removes the leftover too.
    RemoveTree(next_path).IgnoreError();
    return built;
  }
  BW_RETURN_IF_ERROR(Fault("install:built"));

  absl::Status switched = disk.WriteFileAtomic(PointerPath(dir_), DbName(next) + "\n");
  if (!switched.ok()) {
    // The rename may or may not have reached the disk: which state a crash
    // leaves is unknown, so this object no longer speaks for the disk.
    poisoned_ = absl::Status(switched.code(),
                             absl::StrCat("switching ", dir_, " to ", DbName(next),
                                          " failed; reopen the store: ", switched.message()));
    return poisoned_;
  }
  BW_RETURN_IF_ERROR(Fault("install:switched"));

  const std::string old_path = db_path_;
  db_ = std::move(next_engine->db_);
  db_path_ = next_path;
  generation_ = next;
  // The old generation is garbage now. Failing to remove it loses nothing,
  // and the next Open removes it.
  RemoveTree(old_path).IgnoreError();
  return absl::OkStatus();
}

absl::Status RocksEngine::RemoveCheckpoint(const std::string& snap_dir) {
  // Renamed aside first (one atomic step), so a crash part-way through the
  // removal never leaves a half-deleted snapshot under its own name.
  const std::string doomed = snap_dir + ".removing";
  BW_RETURN_IF_ERROR(RemoveTree(doomed));
  std::error_code ec;
  fs::rename(snap_dir, doomed, ec);
  if (ec) return FsError("rename", snap_dir, ec);
  return RemoveTree(doomed);
}

}  // namespace bw::storage
