#include "storage/raft_store.h"

#include "absl/strings/str_cat.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "raft/codec.h"

namespace bw::storage {

namespace {

constexpr uint32_t kSnapshotMagic = 0x42575350;  // "BWSP"

}  // namespace

absl::StatusOr<std::unique_ptr<RaftStore>> RaftStore::Open(env::Disk& disk, std::string dir,
                                                           const WalOptions& wal) {
  BW_RETURN_IF_ERROR(disk.CreateDir(dir));
  std::unique_ptr<RaftStore> store(new RaftStore(disk, std::move(dir)));
  BW_RETURN_IF_ERROR(store->Load(wal));
  return store;
}

raft::Restored RaftStore::TakeLoaded() {
  return std::move(loaded_);
}

absl::StatusOr<raft::Snapshot> RaftStore::ReadSnapshot(env::Disk& disk, const std::string& path) {
  BW_ASSIGN_OR_RETURN(std::string snap, disk.ReadFile(path));
  core::ByteReader r(snap);
  uint32_t magic = r.Fixed32();
  uint32_t crc = r.Fixed32();
  std::string_view meta = r.Bytes();
  std::string_view data = r.Bytes();
  if (!r.ok() || !r.done() || magic != kSnapshotMagic) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a bulwark snapshot (bad magic or truncated)"));
  }
  if (core::Crc32c(data, core::Crc32c(meta)) != crc) {
    return absl::DataLossError(absl::StrCat(path, ": checksum mismatch"));
  }
  raft::Snapshot out;
  absl::StatusOr<raft::SnapshotMeta> m = raft::DecodeSnapshotMeta(meta);
  if (!m.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": metadata does not decode: ", m.status().message()));
  }
  out.meta = std::move(*m);
  out.data = std::string(data);
  return out;
}

absl::Status RaftStore::Load(const WalOptions& wal) {
  loaded_ = raft::Restored{};
  if (disk_.Exists(SnapshotPath(dir_))) {
    fresh_ = false;
    BW_ASSIGN_OR_RETURN(loaded_.snapshot, ReadSnapshot(disk_, SnapshotPath(dir_)));
    loaded_.applied = loaded_.snapshot.meta.index;
    loaded_.conf = loaded_.snapshot.meta.conf;
  }
  LogIndex snap_index = loaded_.snapshot.meta.index;
  BW_ASSIGN_OR_RETURN(wal_, Wal::Open(disk_, WalDir(dir_), wal, snap_index));
  WalRecovered rec = wal_->TakeRecovered();
  // A log holding nothing but segment headers was never written to.
  bool empty = rec.entries.empty() && rec.hard_state == raft::HardState{};
  if (!empty) fresh_ = false;
  torn_tail_ = std::move(rec.torn_tail);
  loaded_.hard_state = rec.hard_state;
  loaded_.entries = std::move(rec.entries);
  // Terms never decrease along a log, so an entry after the snapshot with a
  // lower term than the snapshot's is from a log the snapshot replaced: a
  // crash after the snapshot was saved and before the log was rebased on it
  // leaves such entries behind. They are not this member's log.
  const Term snap_term = loaded_.snapshot.meta.term;
  for (size_t i = 0; i < loaded_.entries.size(); ++i) {
    if (loaded_.entries[i].term < snap_term) {
      loaded_.entries.resize(i);
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status RaftStore::Append(const std::optional<raft::HardState>& hs,
                               const std::vector<raft::Entry>& entries) {
  if (!entries.empty() || hs) fresh_ = false;
  return wal_->Append(hs, entries);
}

absl::Status RaftStore::Sync() {
  return wal_->Sync();
}

absl::Status RaftStore::SaveSnapshot(const raft::Snapshot& snap, const raft::HardState& hs,
                                     const std::vector<raft::Entry>& after) {
  // The snapshot is durable before the log forgets what it covers.
  BW_RETURN_IF_ERROR(WriteSnapshotFile(snap));
  BW_RETURN_IF_ERROR(wal_->Rebase(snap.meta.index, hs, after));
  return wal_->Release(snap.meta.index).status();
}

absl::Status RaftStore::SaveOwnSnapshot(const raft::Snapshot& snap, LogIndex log_offset) {
  BW_RETURN_IF_ERROR(WriteSnapshotFile(snap));
  return wal_->Release(std::min(log_offset, snap.meta.index)).status();
}

absl::Status RaftStore::WriteSnapshotFile(const raft::Snapshot& snap) {
  std::string meta = raft::EncodeSnapshotMeta(snap.meta);
  // Everything but the state's bytes, which are written from where they are
  // (the state can be most of a member's memory: no second copy of it).
  std::string head;
  core::ByteWriter w(&head);
  w.Fixed32(kSnapshotMagic);
  w.Fixed32(core::Crc32c(snap.data, core::Crc32c(meta)));
  w.Bytes(meta);
  w.Varint(snap.data.size());
  const std::string_view parts[] = {head, snap.data};
  BW_RETURN_IF_ERROR(disk_.WriteFileAtomicParts(SnapshotPath(dir_), parts));
  fresh_ = false;
  return absl::OkStatus();
}

}  // namespace bw::storage
