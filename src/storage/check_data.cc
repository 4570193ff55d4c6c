#include "storage/check_data.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/raft_store.h"
#include "storage/rocks_state.h"
#include "storage/wal.h"

namespace bw::storage {

std::string StateDir(const std::string& dir) {
  return dir + "/state";
}

std::string StateSnapshotsDir(const std::string& dir) {
  return dir + "/snapshots";
}

std::string StateSnapshotPath(const std::string& dir, LogIndex index) {
  return absl::StrFormat("%s/snap-%016x", StateSnapshotsDir(dir), index.value());
}

absl::StatusOr<std::vector<LogIndex>> ListStateSnapshots(env::Disk& disk, const std::string& dir) {
  std::vector<LogIndex> out;
  const std::string snaps = StateSnapshotsDir(dir);
  if (!disk.Exists(snaps)) return out;
  BW_ASSIGN_OR_RETURN(std::vector<std::string> names, disk.List(snaps));
  for (const std::string& name : names) {
    // "snap-" + 16 hex digits; anything else (a ".tmp" left by a crash) is
    // not a snapshot.
    if (name.size() != 21 || name.compare(0, 5, "snap-") != 0) continue;
    uint64_t v = 0;
    bool ok = true;
    for (size_t i = 5; i < name.size() && ok; ++i) {
      char c = name[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      ok = d >= 0;
      v = (v << 4) | static_cast<uint64_t>(d < 0 ? 0 : d);
    }
    if (ok) out.push_back(LogIndex(v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<DataReport> CheckDataDir(env::Disk& disk, const std::string& dir, bool repair) {
  DataReport report;
  if (!disk.Exists(dir)) return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  auto problem = [&](std::string what) {
    report.lines.push_back(absl::StrCat("PROBLEM ", what));
    report.problems.push_back(std::move(what));
  };

  LogIndex snap_index;
  const std::string snap_path = RaftStore::SnapshotPath(dir);
  if (disk.Exists(snap_path)) {
    absl::StatusOr<raft::Snapshot> snap = RaftStore::ReadSnapshot(disk, snap_path);
    if (snap.ok()) {
      snap_index = snap->meta.index;
      report.lines.push_back(absl::StrFormat(
          "snapshot %s: index %d term %d, %d voters, %d bytes", snap_path, snap->meta.index.value(),
          snap->meta.term.value(), snap->meta.conf.voters.size(), snap->data.size()));
    } else {
      problem(std::string(snap.status().message()));
    }
  } else {
    report.lines.push_back("snapshot: none");
  }

  // Checkpoint snapshots of the state store; the newest one covers the log
  // up to its index (segments before it may have been released).
  absl::StatusOr<std::vector<LogIndex>> snaps = ListStateSnapshots(disk, dir);
  if (!snaps.ok()) {
    problem(std::string(snaps.status().message()));
  } else {
    for (LogIndex i : *snaps) {
      const std::string path = StateSnapshotPath(dir, i);
      absl::StatusOr<raft::SnapshotMeta> meta = RocksState::VerifySnapshot(path);
      if (!meta.ok()) {
        problem(std::string(meta.status().message()));
      } else if (meta->index != i) {
        problem(absl::StrFormat("%s: metadata says index %d", path, meta->index.value()));
      } else {
        report.lines.push_back(absl::StrFormat("state snapshot %s: index %d term %d, verified",
                                               path, meta->index.value(), meta->term.value()));
        snap_index = std::max(snap_index, meta->index);
      }
    }
  }

  WalOptions wo;
  wo.check_identity = false;
  wo.writable = false;
  LogIndex commit;
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::Open(disk, RaftStore::WalDir(dir), wo, snap_index, repair);
  if (!wal.ok()) {
    problem(std::string(wal.status().message()));
  } else {
    WalRecovered rec = (*wal)->TakeRecovered();
    uint64_t cluster = 0;
    NodeId node;
    for (const WalSegmentInfo& s : rec.segments) {
      report.lines.push_back(absl::StrFormat(
          "segment %s: seq %d, entries after %d up to %d, %d records, %d bytes", s.path, s.seq,
          s.prev_index.value(), s.last_index.value(), s.records, s.bytes));
      if (node == kNoNode) {
        cluster = s.cluster_id;
        node = s.node_id;
      } else if (s.cluster_id != cluster || s.node_id != node) {
        problem(
            absl::StrFormat("%s: written by node %d of cluster %016x, the others by node %d "
                            "of cluster %016x",
                            s.path, s.node_id.value(), s.cluster_id, node.value(), cluster));
      }
    }
    if (rec.segments.empty()) report.lines.push_back("wal: no segments");
    commit = rec.hard_state.commit;
    LogIndex first = snap_index + 1;
    LogIndex last = snap_index + rec.entries.size();
    report.lines.push_back(absl::StrFormat(
        "wal: member %d of cluster %016x; %d entries (%d..%d); term %d, vote %d, commit %d",
        node.value(), cluster, rec.entries.size(), first.value(), last.value(),
        rec.hard_state.term.value(), rec.hard_state.vote.value(), commit.value()));
    if (!rec.torn_tail.empty()) {
      report.torn_tail = rec.torn_tail;
      report.lines.push_back(absl::StrCat(repair ? "torn tail cut: "
                                                 : "torn tail (unsynced, "
                                                   "recovery will cut it): ",
                                          rec.torn_tail));
    }
  }

  const std::string state_dir = StateDir(dir);
  if (disk.Exists(state_dir)) {
    absl::StatusOr<RocksState::Report> st = RocksState::Check(state_dir);
    if (absl::IsNotFound(st.status())) {
      // The store's first creation was cut short (the pointer file is its
      // last step): like no store at all, the next start builds it from the
      // log and snapshot. Nothing that was acknowledged lived only there.
      report.lines.push_back(absl::StrCat("state: none (", st.status().message(),
                                          "; its creation was interrupted, the next start "
                                          "rebuilds it from the log)"));
    } else if (!st.ok()) {
      problem(std::string(st.status().message()));
    } else {
      report.lines.push_back(absl::StrFormat("state %s: applied index %d, %d keys, %d clients",
                                             state_dir, st->applied.value(), st->keys,
                                             st->clients));
      // Only committed entries are applied, and the commit index is made
      // durable before they are.
      LogIndex durable = std::max(commit, snap_index);
      if (wal.ok() && st->applied > durable) {
        problem(absl::StrFormat("%s: applied index %d is past the durable commit index %d",
                                state_dir, st->applied.value(), durable.value()));
      }
    }
  } else {
    report.lines.push_back("state: none");
  }
  report.lines.push_back(
      report.clean() ? "clean" : absl::StrCat(report.problems.size(), " problem(s) found"));
  return report;
}

}  // namespace bw::storage
