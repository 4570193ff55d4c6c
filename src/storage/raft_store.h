// A node's durable Raft state on an env::Disk: a log file of checksummed
// records (hard states and entries, in the order they were persisted) and a
// snapshot file. Loading replays the log; an entry whose index is not past
// the last one overwrites from there, exactly as the Raft core truncated.
//
// Record framing: length:u32 length_crc:u32 crc:u32 type:u8 payload; the
// length has a checksum of its own and `crc` covers type and payload. A bad
// record that the file ends inside (or a zero-filled tail) is a torn write
// and is cut off; any other bad record is corruption and makes Open fail
// with DATA_LOSS naming the file and offset.
//
// Thread-safety: none; owned by the node's event loop (or its storage thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "env/env.h"
#include "raft/raft.h"

namespace bw::storage {

class RaftStore {
 public:
  // Opens (creating if need be) the store in `dir` and loads what it holds.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RaftStore>> Open(env::Disk& disk,
                                                                       std::string dir);

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
  // Durably stores `snap` and rewrites the log to hold only `hs` and the
  // entries after the snapshot.
  [[nodiscard]] absl::Status SaveSnapshot(const raft::Snapshot& snap, const raft::HardState& hs,
                                          const std::vector<raft::Entry>& after);

  uint64_t log_bytes() const { return log_ ? log_->Size() : 0; }
  // What Open cut off as a torn write ("" if nothing): file, bytes, offset, why.
  const std::string& torn_tail() const { return torn_tail_; }

 private:
  RaftStore(env::Disk& disk, std::string dir) : disk_(disk), dir_(std::move(dir)) {}
  absl::Status Load();
  absl::Status ReopenLog();
  std::string LogPath() const { return dir_ + "/raft.log"; }
  std::string SnapshotPath() const { return dir_ + "/snapshot"; }

  env::Disk& disk_;
  std::string dir_;
  std::unique_ptr<env::AppendFile> log_;
  bool fresh_ = true;
  raft::Restored loaded_;
  std::string torn_tail_;
};

// Encodes one framed record (exposed for tests and check-data).
void AppendRecord(std::string* out, uint8_t type, std::string_view payload);

}  // namespace bw::storage
