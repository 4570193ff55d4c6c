#include "storage/raft_store.h"

#include "absl/strings/str_cat.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "raft/codec.h"

namespace bw::storage {

namespace {

constexpr uint8_t kRecordHardState = 1;
constexpr uint8_t kRecordEntry = 2;
// length:u32 length_crc:u32 crc:u32 type:u8. The length has its own
// checksum: a damaged length must not pass for a record that runs off the
// end of the file (a torn write), or the records after it would be dropped.
constexpr size_t kRecordHeaderBytes = 13;
constexpr uint32_t kSnapshotMagic = 0x42575350;  // "BWSP"

uint32_t RecordCrc(uint8_t type, std::string_view payload) {
  char t = static_cast<char>(type);
  return core::Crc32c(payload, core::Crc32c(std::string_view(&t, 1)));
}

void AppendHardState(std::string* out, const raft::HardState& hs) {
  AppendRecord(out, kRecordHardState, raft::EncodeHardState(hs));
}

void AppendEntryRecord(std::string* out, const raft::Entry& e) {
  std::string payload;
  raft::AppendEntry(&payload, e);
  AppendRecord(out, kRecordEntry, payload);
}

}  // namespace

void AppendRecord(std::string* out, uint8_t type, std::string_view payload) {
  core::ByteWriter w(out);
  size_t len_at = out->size();
  w.Fixed32(static_cast<uint32_t>(payload.size()));
  w.Fixed32(core::Crc32c(std::string_view(*out).substr(len_at, 4)));
  w.Fixed32(RecordCrc(type, payload));
  w.U8(type);
  out->append(payload);
}

absl::StatusOr<std::unique_ptr<RaftStore>> RaftStore::Open(env::Disk& disk, std::string dir) {
  BW_RETURN_IF_ERROR(disk.CreateDir(dir));
  std::unique_ptr<RaftStore> store(new RaftStore(disk, std::move(dir)));
  BW_RETURN_IF_ERROR(store->Load());
  BW_RETURN_IF_ERROR(store->ReopenLog());
  return store;
}

raft::Restored RaftStore::TakeLoaded() {
  return std::move(loaded_);
}

absl::Status RaftStore::ReopenLog() {
  log_.reset();
  BW_ASSIGN_OR_RETURN(log_, disk_.OpenAppend(LogPath()));
  return absl::OkStatus();
}

absl::Status RaftStore::Load() {
  loaded_ = raft::Restored{};
  if (disk_.Exists(SnapshotPath())) {
    fresh_ = false;
    BW_ASSIGN_OR_RETURN(std::string snap, disk_.ReadFile(SnapshotPath()));
    core::ByteReader r(snap);
    uint32_t magic = r.Fixed32();
    uint32_t crc = r.Fixed32();
    std::string_view meta = r.Bytes();
    std::string_view data = r.Bytes();
    if (!r.ok() || !r.done() || magic != kSnapshotMagic) {
      return absl::DataLossError(
          absl::StrCat(SnapshotPath(), ": not a bulwark snapshot (bad magic or truncated)"));
    }
    if (core::Crc32c(data, core::Crc32c(meta)) != crc) {
      return absl::DataLossError(absl::StrCat(SnapshotPath(), ": checksum mismatch"));
    }
    BW_ASSIGN_OR_RETURN(loaded_.snapshot.meta, raft::DecodeSnapshotMeta(meta));
    loaded_.snapshot.data = std::string(data);
    loaded_.applied = loaded_.snapshot.meta.index;
    loaded_.conf = loaded_.snapshot.meta.conf;
  }
  if (!disk_.Exists(LogPath())) return absl::OkStatus();
  BW_ASSIGN_OR_RETURN(std::string log, disk_.ReadFile(LogPath()));
  if (!log.empty()) fresh_ = false;
  LogIndex snap_index = loaded_.snapshot.meta.index;
  std::vector<raft::Entry>& entries = loaded_.entries;
  size_t off = 0;
  while (off < log.size()) {
    std::string_view rest = std::string_view(log).substr(off);
    // Decide first whether the record at `off` is whole; a record that is
    // not is a torn write only if it can be one: the file ends inside it, or
    // everything from it on is zeros (a tail the file system zero-filled).
    std::string bad;
    uint32_t len = 0;
    uint8_t type = 0;
    std::string_view payload;
    if (rest.size() < kRecordHeaderBytes) {
      bad = "short header";
    } else {
      core::ByteReader r(rest);
      len = r.Fixed32();
      uint32_t len_crc = r.Fixed32();
      uint32_t crc = r.Fixed32();
      type = r.U8();
      if (core::Crc32c(rest.substr(0, 4)) != len_crc) {
        bad = "damaged record header";
      } else if (len > rest.size() - kRecordHeaderBytes) {
        bad = "record runs past the end";
      } else {
        payload = rest.substr(kRecordHeaderBytes, len);
        if (RecordCrc(type, payload) != crc) bad = "checksum mismatch";
      }
    }
    if (!bad.empty()) {
      size_t end = off + kRecordHeaderBytes + len;
      bool at_end = bad == "short header" || bad == "record runs past the end" ||
                    (bad == "checksum mismatch" && end == log.size());
      bool zeros = rest.find_first_not_of('\0') == std::string_view::npos;
      if (!at_end && !zeros) {
        return absl::DataLossError(absl::StrCat(
            LogPath(), ": ", bad, " at offset ", off, " with ", log.size() - off,
            " bytes of log from there; refusing to start: rebuild this member from its peers"));
      }
      // A torn write at the tail: nothing from `off` on was acknowledged.
      torn_tail_ = absl::StrCat(LogPath(), ": cut ", log.size() - off, " bytes at offset ", off,
                                " (", bad, ")");
      BW_RETURN_IF_ERROR(disk_.Truncate(LogPath(), off));
      break;
    }
    if (type == kRecordHardState) {
      BW_ASSIGN_OR_RETURN(loaded_.hard_state, raft::DecodeHardState(payload));
    } else if (type == kRecordEntry) {
      std::string_view in = payload;
      BW_ASSIGN_OR_RETURN(raft::Entry e, raft::DecodeEntry(&in));
      if (e.index > snap_index) {
        LogIndex first = snap_index + 1;
        size_t pos = e.index - first;
        if (pos > entries.size()) {
          return absl::DataLossError(absl::StrCat(LogPath(), ": entry ", e.index.value(),
                                                  " at offset ", off, " leaves a gap after ",
                                                  (first + entries.size() - 1).value()));
        }
        entries.resize(pos);
        entries.push_back(std::move(e));
      }
    } else {
      return absl::DataLossError(
          absl::StrCat(LogPath(), ": unknown record type ", type, " at offset ", off));
    }
    off += kRecordHeaderBytes + len;
  }
  // Hard states are written after the entries they cover, so even a torn
  // tail cannot leave the commit index past the log; if it is, the file was
  // damaged some other way.
  LogIndex last = snap_index + entries.size();
  if (loaded_.hard_state.commit > last) {
    return absl::DataLossError(absl::StrCat(LogPath(), ": commit index ",
                                            loaded_.hard_state.commit.value(),
                                            " is past the last entry ", last.value()));
  }
  if (loaded_.hard_state.commit < snap_index) loaded_.hard_state.commit = snap_index;
  return absl::OkStatus();
}

absl::Status RaftStore::Append(const std::optional<raft::HardState>& hs,
                               const std::vector<raft::Entry>& entries) {
  std::string buf;
  for (const raft::Entry& e : entries)
    AppendEntryRecord(&buf, e);
  // The hard state goes after the entries, so a torn tail never leaves a
  // commit index pointing past the log.
  if (hs) AppendHardState(&buf, *hs);
  if (buf.empty()) return absl::OkStatus();
  fresh_ = false;
  return log_->Append(buf);
}

absl::Status RaftStore::Sync() {
  return log_->Sync();
}

absl::Status RaftStore::SaveSnapshot(const raft::Snapshot& snap, const raft::HardState& hs,
                                     const std::vector<raft::Entry>& after) {
  std::string meta = raft::EncodeSnapshotMeta(snap.meta);
  std::string file;
  core::ByteWriter w(&file);
  w.Fixed32(kSnapshotMagic);
  w.Fixed32(core::Crc32c(snap.data, core::Crc32c(meta)));
  w.Bytes(meta);
  w.Bytes(snap.data);
  BW_RETURN_IF_ERROR(disk_.WriteFileAtomic(SnapshotPath(), file));
  std::string log;
  for (const raft::Entry& e : after) {
    if (e.index > snap.meta.index) AppendEntryRecord(&log, e);
  }
  AppendHardState(&log, hs);
  BW_RETURN_IF_ERROR(disk_.WriteFileAtomic(LogPath(), log));
  fresh_ = false;
  return ReopenLog();
}

}  // namespace bw::storage
