#include "storage/rocks_state.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/bytes.h"

namespace bw::storage {

namespace {

constexpr char kClientPrefix = 'c';
constexpr char kDataPrefix = 'd';
constexpr char kMetaPrefix = 'm';
constexpr char kAppliedKey[] = "mapplied";
constexpr char kFormatKey[] = "mformat";

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

// The keys starting with `prefix`.
KeyRange PrefixRange(char prefix) {
  return KeyRange{std::string(1, prefix), std::string(1, static_cast<char>(prefix + 1))};
}

// Checks the format key and returns the applied index.
absl::StatusOr<LogIndex> ReadMeta(const Engine& engine, const std::string& path) {
  BW_ASSIGN_OR_RETURN(std::optional<std::string> format, engine.Get(kFormatKey));
  if (!format) {
    return absl::DataLossError(
        absl::StrCat(path, ": format key \"", kFormatKey, "\" missing; not a bulwark state store"));
  }
  if (format->size() != 1) {
    return absl::DataLossError(absl::StrCat(path, ": format key \"", kFormatKey, "\" holds ",
                                            format->size(), " bytes, expected 1"));
  }
  if (static_cast<uint8_t>((*format)[0]) != kRocksStateFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": state format version ", int{static_cast<uint8_t>((*format)[0])},
                     "; this binary reads version ", int{kRocksStateFormat}));
  }
  BW_ASSIGN_OR_RETURN(std::optional<std::string> applied_bytes, engine.Get(kAppliedKey));
  if (!applied_bytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": applied index key \"", kAppliedKey, "\" missing"));
  }
  std::optional<uint64_t> applied = DecodeU64(*applied_bytes);
  if (!applied) {
    return absl::DataLossError(absl::StrCat(path, ": applied index key \"", kAppliedKey,
                                            "\" holds ", applied_bytes->size(),
                                            " bytes, expected an 8-byte big-endian index"));
  }
  return LogIndex(*applied);
}

// Visits every key in `range`, in order, from one consistent view.
absl::Status Scan(
    const Engine& engine, KeyRange range,
    const std::function<absl::Status(std::string_view key, std::string_view value)>& fn) {
  std::shared_ptr<const EngineView> view = engine.View();
  std::unique_ptr<EngineIterator> it = engine.NewIterator(std::move(range), view.get());
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    BW_RETURN_IF_ERROR(fn(it->key(), it->value()));
  }
  return it->status();
}

// Decodes one 'c' entry; DATA_LOSS if it does not have the layout's shape.
absl::Status DecodeClientSeq(std::string_view key, std::string_view value, const std::string& path,
                             uint64_t* client, uint64_t* seq) {
  std::optional<uint64_t> c = DecodeU64(key.substr(1));
  std::optional<uint64_t> s = DecodeU64(value);
  if (!c || !s) {
    return absl::DataLossError(absl::StrCat(path, ": client seq key \"",
                                            absl::CEscape(std::string(key)), "\" -> ", value.size(),
                                            "-byte value; expected 'c' u64 -> u64"));
  }
  *client = *c;
  *seq = *s;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksState>> RocksState::Open(const std::string& dir,
                                                             RocksStateOptions opts) {
  RocksEngineOptions eo;
  eo.sync_writes = opts.sync_writes;
  eo.create_if_missing = opts.create_if_missing;
  eo.write_buffer_bytes = opts.write_buffer_bytes;
  eo.fault_point = std::move(opts.fault_point);
  eo.initial.Put(kFormatKey, std::string(1, static_cast<char>(kRocksStateFormat)));
  eo.initial.Put(kAppliedKey, EncodeU64(0));
  BW_ASSIGN_OR_RETURN(std::unique_ptr<RocksEngine> engine, RocksEngine::Open(dir, std::move(eo)));
  std::unique_ptr<RocksState> state(new RocksState(std::move(engine)));
  BW_ASSIGN_OR_RETURN(state->applied_index_, ReadMeta(*state->engine_, state->db_path()));
  return state;
}

absl::Status RocksState::Commit(const StateBatch& b) {
  if (b.applied <= applied_index_) {
    return absl::FailedPreconditionError(
        absl::StrCat(db_path(), ": commit at applied index ", b.applied.value(),
                     " is not past the current applied index ", applied_index_.value()));
  }
  WriteBatch batch;
  for (const StateWrite& w : b.writes) {
    if (w.value) {
      batch.Put(DataKey(w.key), *w.value);
    } else {
      batch.Delete(DataKey(w.key));
    }
  }
  for (const auto& [client, seq] : b.client_seqs)
    batch.Put(ClientKey(client), EncodeU64(seq));
  batch.Put(kAppliedKey, EncodeU64(b.applied.value()));
  BW_RETURN_IF_ERROR(engine_->Write(batch));
  applied_index_ = b.applied;
  return absl::OkStatus();
}

absl::Status RocksState::Sync() {
  return engine_->Sync();
}

absl::StatusOr<std::optional<std::string>> RocksState::Get(std::string_view key) const {
  return engine_->Get(DataKey(key));
}

absl::Status RocksState::ForEach(
    const std::function<void(std::string_view key, std::string_view value)>& fn) const {
  return Scan(*engine_, PrefixRange(kDataPrefix),
              [&](std::string_view key, std::string_view value) {
                fn(key.substr(1), value);
                return absl::OkStatus();
              });
}

absl::Status RocksState::ForEachClientSeq(
    const std::function<void(uint64_t client, uint64_t seq)>& fn) const {
  return Scan(*engine_, PrefixRange(kClientPrefix),
              [&](std::string_view key, std::string_view value) {
                uint64_t client = 0;
                uint64_t seq = 0;
                BW_RETURN_IF_ERROR(DecodeClientSeq(key, value, db_path(), &client, &seq));
                fn(client, seq);
                return absl::OkStatus();
              });
}

absl::StatusOr<uint64_t> RocksState::key_count() const {
  uint64_t keys = 0;
  BW_RETURN_IF_ERROR(
      Scan(*engine_, PrefixRange(kDataPrefix), [&](std::string_view, std::string_view) {
        ++keys;
        return absl::OkStatus();
      }));
  return keys;
}

absl::Status RocksState::CreateSnapshot(const std::string& snap_dir,
                                        const raft::SnapshotMeta& meta) {
  if (meta.index != applied_index_) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", snap_dir, ": meta index ", meta.index.value(),
                     " is not the applied index ", applied_index_.value()));
  }
  return engine_->CreateCheckpoint(snap_dir, meta);
}

absl::StatusOr<raft::SnapshotMeta> RocksState::VerifySnapshot(const std::string& snap_dir) {
  BW_ASSIGN_OR_RETURN(SnapshotManifest m, RocksEngine::VerifyCheckpoint(snap_dir));
  return m.meta;
}

absl::Status RocksState::RemoveSnapshot(const std::string& snap_dir) {
  return RocksEngine::RemoveCheckpoint(snap_dir);
}

absl::Status RocksState::InstallSnapshot(const std::string& snap_dir) {
  LogIndex installed;
  BW_RETURN_IF_ERROR(engine_->InstallCheckpoint(
      snap_dir, [&](const Engine& next, const SnapshotManifest& m) -> absl::Status {
        BW_ASSIGN_OR_RETURN(LogIndex applied, ReadMeta(next, snap_dir));
        if (applied != m.meta.index) {
          return absl::DataLossError(absl::StrCat(
              "snapshot ", snap_dir, ": its state is at applied index ", applied.value(), " but ",
              kSnapshotMetaFile, " says ", m.meta.index.value()));
        }
        installed = applied;
        return absl::OkStatus();
      }));
  applied_index_ = installed;
  return absl::OkStatus();
}

absl::StatusOr<RocksState::Report> RocksState::Check(const std::string& dir) {
  BW_ASSIGN_OR_RETURN(std::unique_ptr<RocksEngine> engine, RocksEngine::OpenForCheck(dir));
  const std::string& path = engine->db_path();
  Report report;
  BW_ASSIGN_OR_RETURN(report.applied, ReadMeta(*engine, path));
  // Every key must belong to one of the layout's three ranges.
  BW_RETURN_IF_ERROR(Scan(*engine, KeyRange{}, [&](std::string_view key, std::string_view value) {
    char prefix = key.empty() ? '\0' : key[0];
    if (prefix == kDataPrefix) {
      ++report.keys;
    } else if (prefix == kClientPrefix) {
      uint64_t client = 0;
      uint64_t seq = 0;
      BW_RETURN_IF_ERROR(DecodeClientSeq(key, value, path, &client, &seq));
      ++report.clients;
    } else if (prefix != kMetaPrefix || (key != kAppliedKey && key != kFormatKey)) {
      return absl::DataLossError(absl::StrCat(path, ": key \"", absl::CEscape(std::string(key)),
                                              "\" is outside the layout"));
    }
    return absl::OkStatus();
  }));
  return report;
}

}  // namespace bw::storage
