#include "storage/rocks_state.h"

#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "env/path.h"
#include "env/real/real_disk.h"
#include "raft/codec.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "storage/snapshot_manifest.h"

namespace bw::storage {

namespace {

namespace fs = std::filesystem;

constexpr char kPointerFile[] = "CURRENT_STATE";
constexpr char kDbPrefix[] = "db-";
constexpr char kClientPrefix = 'c';
constexpr char kDataPrefix = 'd';
constexpr char kMetaPrefix = 'm';
constexpr char kAppliedKey[] = "mapplied";
constexpr char kFormatKey[] = "mformat";
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

std::string EncodeU64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xFF);
  return out;
}

std::optional<uint64_t> DecodeU64(std::string_view in) {
  if (in.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (char c : in)
    v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

std::string DataKey(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  out.push_back(kDataPrefix);
  out.append(key);
  return out;
}

std::string ClientKey(uint64_t client) {
  return std::string(1, kClientPrefix) + EncodeU64(client);
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

// Streams the file through RocksDB's Env (env::Disk reads whole files only,
// and checkpoint files can be large).
absl::StatusOr<FileSum> SumFile(const std::string& dir, const std::string& name) {
  const std::string path = absl::StrCat(dir, "/", name);
  std::unique_ptr<rocksdb::SequentialFile> file;
  rocksdb::Status s =
      rocksdb::Env::Default()->NewSequentialFile(path, &file, rocksdb::EnvOptions());
  if (!s.ok()) return RocksError(s, "open", path);
  FileSum sum{0, core::Crc32c(name)};
  std::string scratch(kChunkBytes, '\0');
  while (true) {
    rocksdb::Slice chunk;
    s = file->Read(scratch.size(), &chunk, scratch.data());
    if (!s.ok()) return RocksError(s, "read", path);
    if (chunk.empty()) break;
    sum.size += chunk.size();
    sum.crc = core::Crc32c(ToView(chunk), sum.crc);
  }
  return sum;
}

// Copies `from` to a new file `to` and fsyncs it (not its directory).
absl::Status CopyFileSynced(const std::string& from, const std::string& to) {
  rocksdb::Env* env = rocksdb::Env::Default();
  std::unique_ptr<rocksdb::SequentialFile> in;
  rocksdb::Status s = env->NewSequentialFile(from, &in, rocksdb::EnvOptions());
  if (!s.ok()) return RocksError(s, "open", from);
  std::unique_ptr<rocksdb::WritableFile> out;
  s = env->NewWritableFile(to, &out, rocksdb::EnvOptions());
  if (!s.ok()) return RocksError(s, "create", to);
  std::string scratch(kChunkBytes, '\0');
  while (true) {
    rocksdb::Slice chunk;
    s = in->Read(scratch.size(), &chunk, scratch.data());
    if (!s.ok()) return RocksError(s, "read", from);
    if (chunk.empty()) break;
    s = out->Append(chunk);
    if (!s.ok()) return RocksError(s, "write", to);
  }
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

rocksdb::Options DbOptions(const RocksStateOptions& opts) {
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

absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenDb(const std::string& path,
                                                    const RocksStateOptions& opts, bool create) {
  rocksdb::Options o = DbOptions(opts);
  o.create_if_missing = create;
  o.error_if_exists = create;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, path, &raw);
  if (!s.ok()) return RocksError(s, "open", path);
  return std::unique_ptr<rocksdb::DB>(raw);
}

// Checks the format key and returns the applied index.
absl::StatusOr<LogIndex> ReadMeta(rocksdb::DB& db, const std::string& path) {
  std::string value;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), kFormatKey, &value);
  if (s.IsNotFound()) {
    return absl::DataLossError(
        absl::StrCat(path, ": format key \"", kFormatKey, "\" missing; not a bulwark state store"));
  }
  if (!s.ok()) return RocksError(s, "get format", path);
  if (value.size() != 1) {
    return absl::DataLossError(absl::StrCat(path, ": format key \"", kFormatKey, "\" holds ",
                                            value.size(), " bytes, expected 1"));
  }
  if (static_cast<uint8_t>(value[0]) != kRocksStateFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": state format version ", int{static_cast<uint8_t>(value[0])},
                     "; this binary reads version ", int{kRocksStateFormat}));
  }
  s = db.Get(rocksdb::ReadOptions(), kAppliedKey, &value);
  if (s.IsNotFound()) {
    return absl::DataLossError(
        absl::StrCat(path, ": applied index key \"", kAppliedKey, "\" missing"));
  }
  if (!s.ok()) return RocksError(s, "get applied index", path);
  std::optional<uint64_t> applied = DecodeU64(value);
  if (!applied) {
    return absl::DataLossError(absl::StrCat(path, ": applied index key \"", kAppliedKey,
                                            "\" holds ", value.size(),
                                            " bytes, expected an 8-byte big-endian index"));
  }
  return LogIndex(*applied);
}

// Visits every key starting with `prefix`, in order, from one consistent view.
absl::Status ScanPrefix(
    rocksdb::DB& db, const std::string& path, char prefix,
    const std::function<absl::Status(std::string_view key, std::string_view value)>& fn) {
  const std::string lower(1, prefix);
  const std::string upper(1, static_cast<char>(prefix + 1));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    BW_RETURN_IF_ERROR(fn(ToView(it->key()), ToView(it->value())));
  }
  if (!it->status().ok()) return RocksError(it->status(), "iterate", path);
  return absl::OkStatus();
}

// Decodes one 'c' entry; DATA_LOSS if it does not have the layout's shape.
absl::Status DecodeClientSeq(std::string_view key, std::string_view value, const std::string& path,
                             uint64_t* client, uint64_t* seq) {
  std::optional<uint64_t> c = DecodeU64(key.substr(1));
  std::optional<uint64_t> s = DecodeU64(value);
  if (!c || !s) {
    return absl::DataLossError(absl::StrCat(path, ": client seq key \"", absl::CEscape(S(key)),
                                            "\" -> ", value.size(),
                                            "-byte value; expected 'c' u64 -> u64"));
  }
  *client = *c;
  *seq = *s;
  return absl::OkStatus();
}

}  // namespace

RocksState::RocksState(std::string dir, RocksStateOptions opts)
    : dir_(std::move(dir)), opts_(std::move(opts)) {}

RocksState::~RocksState() {
  db_.reset();
  if (lock_ != nullptr) rocksdb::Env::Default()->UnlockFile(lock_).PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<RocksState>> RocksState::Open(const std::string& dir,
                                                             RocksStateOptions opts) {
  env::RealDisk disk;
  const std::string pointer = PointerPath(dir);
  if (!opts.create_if_missing && !disk.Exists(pointer)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no bulwark state store (", kPointerFile, " missing)"));
  }
  BW_RETURN_IF_ERROR(disk.CreateDir(dir));
  std::unique_ptr<RocksState> state(new RocksState(dir, std::move(opts)));
  // Taken before anything below looks at or removes files: a second Open of
  // a live store must not mistake its install in progress for a leftover.
  const std::string lock_path = absl::StrCat(dir, "/LOCK");
  rocksdb::Status locked = rocksdb::Env::Default()->LockFile(lock_path, &state->lock_);
  if (!locked.ok()) return RocksError(locked, "lock", lock_path);
  const bool fresh = !disk.Exists(pointer);
  if (fresh) {
    // A crash while creating the store can leave db-1 without a pointer to
    // it; nothing was ever committed there.
    state->generation_ = 1;
    BW_RETURN_IF_ERROR(RemoveTree(absl::StrCat(dir, "/", DbName(1))));
  } else {
    BW_ASSIGN_OR_RETURN(state->generation_, ReadPointer(disk, dir));
    // Leftovers of an interrupted install: its new database if the pointer
    // was not switched, the old one if it was, and the pointer's temp file.
    BW_ASSIGN_OR_RETURN(std::vector<std::string> names, disk.List(dir));
    for (const std::string& name : names) {
      const std::string path = absl::StrCat(dir, "/", name);
      std::optional<uint64_t> generation = ParseDbName(name);
      if (generation && *generation != state->generation_) {
        BW_RETURN_IF_ERROR(RemoveTree(path));
      } else if (name == absl::StrCat(kPointerFile, ".tmp")) {
        BW_RETURN_IF_ERROR(disk.Remove(path));
      }
    }
  }
  state->db_path_ = absl::StrCat(dir, "/", DbName(state->generation_));
  if (!fresh && !disk.Exists(state->db_path_)) {
    return absl::DataLossError(absl::StrCat(pointer, " names ", DbName(state->generation_),
                                            ", but ", state->db_path_, " does not exist"));
  }
  BW_ASSIGN_OR_RETURN(state->db_, OpenDb(state->db_path_, state->opts_, /*create=*/fresh));
  if (fresh) {
    rocksdb::WriteBatch batch;
    rocksdb::Status s = batch.Put(kFormatKey, rocksdb::Slice(std::string(1, kRocksStateFormat)));
    if (s.ok()) s = batch.Put(kAppliedKey, EncodeU64(0));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (s.ok()) s = state->db_->Write(wo, &batch);
    if (!s.ok()) return RocksError(s, "write", state->db_path_);
    // The store exists from this moment on.
    BW_RETURN_IF_ERROR(disk.WriteFileAtomic(pointer, DbName(state->generation_) + "\n"));
  }
  BW_ASSIGN_OR_RETURN(state->applied_index_, ReadMeta(*state->db_, state->db_path_));
  return state;
}

absl::Status RocksState::Fault(std::string_view point) {
  if (!opts_.fault_point) return absl::OkStatus();
  absl::Status s = opts_.fault_point(point);
  if (!s.ok()) poisoned_ = s;
  return s;
}

absl::Status RocksState::Commit(const StateBatch& b) {
  BW_RETURN_IF_ERROR(poisoned_);
  if (b.applied <= applied_index_) {
    return absl::FailedPreconditionError(
        absl::StrCat(db_path_, ": commit at applied index ", b.applied.value(),
                     " is not past the current applied index ", applied_index_.value()));
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status s;
  for (const StateWrite& w : b.writes) {
    s = w.value ? batch.Put(DataKey(w.key), ToSlice(*w.value)) : batch.Delete(DataKey(w.key));
    if (!s.ok()) return RocksError(s, "batch", db_path_);
  }
  for (const auto& [client, seq] : b.client_seqs) {
    s = batch.Put(ClientKey(client), EncodeU64(seq));
    if (!s.ok()) return RocksError(s, "batch", db_path_);
  }
  s = batch.Put(kAppliedKey, EncodeU64(b.applied.value()));
  if (!s.ok()) return RocksError(s, "batch", db_path_);
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  s = db_->Write(wo, &batch);
  if (!s.ok()) return RocksError(s, "write", db_path_);
  applied_index_ = b.applied;
  return absl::OkStatus();
}

absl::Status RocksState::Sync() {
  BW_RETURN_IF_ERROR(poisoned_);
  rocksdb::Status s = db_->FlushWAL(/*sync=*/true);
  if (!s.ok()) return RocksError(s, "sync wal", db_path_);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> RocksState::Get(std::string_view key) const {
  BW_RETURN_IF_ERROR(poisoned_);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), DataKey(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return RocksError(s, "get", db_path_);
  return std::optional<std::string>(std::move(value));
}

absl::Status RocksState::ForEach(
    const std::function<void(std::string_view key, std::string_view value)>& fn) const {
  BW_RETURN_IF_ERROR(poisoned_);
  return ScanPrefix(*db_, db_path_, kDataPrefix, [&](std::string_view key, std::string_view value) {
    fn(key.substr(1), value);
    return absl::OkStatus();
  });
}

absl::Status RocksState::ForEachClientSeq(
    const std::function<void(uint64_t client, uint64_t seq)>& fn) const {
  BW_RETURN_IF_ERROR(poisoned_);
  return ScanPrefix(*db_, db_path_, kClientPrefix,
                    [&](std::string_view key, std::string_view value) {
                      uint64_t client = 0;
                      uint64_t seq = 0;
                      BW_RETURN_IF_ERROR(DecodeClientSeq(key, value, db_path_, &client, &seq));
                      fn(client, seq);
                      return absl::OkStatus();
                    });
}

absl::StatusOr<uint64_t> RocksState::key_count() const {
  BW_RETURN_IF_ERROR(poisoned_);
  uint64_t keys = 0;
  BW_RETURN_IF_ERROR(
      ScanPrefix(*db_, db_path_, kDataPrefix, [&](std::string_view, std::string_view) {
        ++keys;
        return absl::OkStatus();
      }));
  return keys;
}

absl::Status RocksState::CreateSnapshot(const std::string& snap_dir,
                                        const raft::SnapshotMeta& meta) {
  BW_RETURN_IF_ERROR(poisoned_);
  if (meta.index != applied_index_) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", snap_dir, ": meta index ", meta.index.value(),
                     " is not the applied index ", applied_index_.value()));
  }
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
  BW_RETURN_IF_ERROR(Fault("snapshot:built"));
  // env::Disk cannot rename a directory.
  fs::rename(tmp, target, ec);
  if (ec) return FsError("rename", absl::StrCat(tmp, " -> ", target), ec);
  return SyncDir(env::ParentDir(target));
}

absl::StatusOr<raft::SnapshotMeta> RocksState::VerifySnapshot(const std::string& snap_dir) {
  BW_ASSIGN_OR_RETURN(SnapshotManifest m, VerifySnapshotDir(snap_dir));
  return m.meta;
}

absl::Status RocksState::InstallSnapshot(const std::string& snap_dir) {
  BW_RETURN_IF_ERROR(poisoned_);
  BW_ASSIGN_OR_RETURN(SnapshotManifest m, VerifySnapshotDir(snap_dir));
  env::RealDisk disk;
  const uint64_t next = generation_ + 1;
  const std::string next_path = absl::StrCat(dir_, "/", DbName(next));

  // Build and check the new database; until the pointer names it, it is a
  // leftover that Open would remove.
  std::unique_ptr<rocksdb::DB> next_db;
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
    BW_ASSIGN_OR_RETURN(next_db, OpenDb(next_path, opts_, /*create=*/false));
    BW_ASSIGN_OR_RETURN(LogIndex applied, ReadMeta(*next_db, next_path));
    if (applied != m.meta.index) {
      return absl::DataLossError(
          absl::StrCat("snapshot ", snap_dir, ": its state is at applied index ", applied.value(),
                       " but ", kSnapshotMetaFile, " says ", m.meta.index.value()));
    }
    return absl::OkStatus();
  };
  if (absl::Status built = build(); !built.ok()) {
    next_db.reset();
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
  db_ = std::move(next_db);
  db_path_ = next_path;
  generation_ = next;
  applied_index_ = m.meta.index;
  // The old generation is garbage now. Failing to remove it loses nothing,
  // and the next Open removes it.
  RemoveTree(old_path).IgnoreError();
  return absl::OkStatus();
}

absl::StatusOr<RocksState::Report> RocksState::Check(const std::string& dir) {
  env::RealDisk disk;
  if (!disk.Exists(PointerPath(dir))) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no bulwark state store (", kPointerFile, " missing)"));
  }
  BW_ASSIGN_OR_RETURN(uint64_t generation, ReadPointer(disk, dir));
  const std::string path = absl::StrCat(dir, "/", DbName(generation));
  if (!disk.Exists(path)) {
    return absl::DataLossError(
        absl::StrCat(PointerPath(dir), " names ", DbName(generation), ", which does not exist"));
  }
  rocksdb::Options o;
  o.create_if_missing = false;
  o.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, path, &raw);
  if (!s.ok()) return RocksError(s, "open read-only", path);
  std::unique_ptr<rocksdb::DB> db(raw);

  Report report;
  BW_ASSIGN_OR_RETURN(report.applied, ReadMeta(*db, path));
  s = db->VerifyChecksum();
  if (!s.ok()) return RocksError(s, "verify checksum", path);
  // Every key must belong to one of the layout's three ranges.
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = ToView(it->key());
    char prefix = key.empty() ? '\0' : key[0];
    if (prefix == kDataPrefix) {
      ++report.keys;
    } else if (prefix == kClientPrefix) {
      uint64_t client = 0;
      uint64_t seq = 0;
      BW_RETURN_IF_ERROR(DecodeClientSeq(key, ToView(it->value()), path, &client, &seq));
      ++report.clients;
    } else if (prefix != kMetaPrefix || (key != kAppliedKey && key != kFormatKey)) {
      return absl::DataLossError(
          absl::StrCat(path, ": key \"", absl::CEscape(S(key)), "\" is outside the layout"));
    }
  }
  if (!it->status().ok()) return RocksError(it->status(), "iterate", path);
  return report;
}

absl::Status RocksState::RemoveSnapshot(const std::string& snap_dir) {
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
