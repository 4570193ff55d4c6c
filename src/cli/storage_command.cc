// `bulwark check-data DIR [--repair]` verifies a data directory.
//
// `bulwark storage-load --dir DIR` drives one member's storage as a server
// would: writer threads submit puts, the storage thread appends them to the
// WAL with group commit and applies each durable group to the RocksDB state
// store (the applied index in the same batch), and every write is printed as
// "ack <key> <value>" only once it is durable. On start it recovers: the WAL
// is read (a torn tail cut), and the entries past the state store's applied
// index are replayed into it. The crash test kills it with SIGKILL at random
// moments and checks, after each restart, that every acknowledged write is
// there (--verify FILE) and that check-data is clean. With --report it prints
// throughput and latency instead of acks (bench/wal_vs_disk.sh).
#include "cli/storage_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "env/real/real_disk.h"
#include "env/real/thread.h"
#include "kv/kv_state.h"
#include "storage/check_data.h"
#include "storage/group_commit.h"
#include "storage/raft_store.h"
#include "storage/rocks_state.h"
#include "storage/wal.h"

namespace bw::cli {

namespace {

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct CheckFlags {
  std::string dir;
  bool repair = false;
};

int RunCheckData(const CheckFlags& f) {
  env::RealDisk disk;
  absl::StatusOr<storage::DataReport> r = storage::CheckDataDir(disk, f.dir, f.repair);
  if (!r.ok()) {
    std::fprintf(stderr, "bulwark check-data: %s\n", std::string(r.status().message()).c_str());
    return 2;
  }
  for (const std::string& line : r->lines)
    std::printf("%s\n", line.c_str());
  return r->clean() ? 0 : 1;
}

struct LoadFlags {
  std::string dir;
  uint64_t count = 0;
  int writers = 8;
  size_t value_bytes = 100;
  double seconds = 0;
  std::string verify;
  bool report = false;
  bool async = false;
  uint64_t batch = 1;
  uint64_t snapshot_every = 0;
  bool no_state = false;
  bool no_preallocate = false;
  // Planted bug (BW_PLANTED_BUGS builds): acknowledge a write when it is
  // queued, before it reaches the log. The crash test must catch it.
  bool ack_on_submit = false;
  uint64_t segment_mib = 64;
  uint64_t group_kib = 4096;
  uint64_t node_id = 1;
  uint64_t cluster_id = 1;
};

// Applies durable entries to the state store: one batch per group, with the
// group's last index.
absl::Status ApplyEntries(storage::RocksState& state, const std::vector<raft::Entry>& entries) {
  storage::StateBatch batch;
  for (const raft::Entry& e : entries) {
    if (e.index <= state.applied_index()) continue;
    absl::StatusOr<kv::KvCommand> cmd = kv::DecodeKvCommand(e.data);
    if (!cmd.ok()) {
      return absl::DataLossError(
          absl::StrCat("entry ", e.index.value(), " does not decode: ", cmd.status().message()));
    }
    batch.writes.push_back(storage::StateWrite{std::move(cmd->key), std::move(cmd->value)});
    batch.applied = e.index;
  }
  if (batch.writes.empty()) return absl::OkStatus();
  return state.Commit(batch);
}

// A checkpoint of the state at its applied index, then the older ones go.
absl::Status TakeSnapshot(env::RealDisk& disk, const std::string& dir, storage::RocksState& st,
                          LogIndex* last) {
  BW_RETURN_IF_ERROR(disk.CreateDir(storage::StateSnapshotsDir(dir)));
  raft::SnapshotMeta meta;
  meta.index = st.applied_index();
  meta.term = Term(1);
  BW_RETURN_IF_ERROR(st.CreateSnapshot(storage::StateSnapshotPath(dir, meta.index), meta));
  BW_ASSIGN_OR_RETURN(std::vector<LogIndex> all, storage::ListStateSnapshots(disk, dir));
  for (LogIndex i : all) {
    if (i < meta.index) {
      BW_RETURN_IF_ERROR(storage::RocksState::RemoveSnapshot(storage::StateSnapshotPath(dir, i)));
    }
  }
  *last = meta.index;
  return absl::OkStatus();
}

int RunStorageLoad(const LoadFlags& f) {
  env::RealDisk disk;
  Clock::time_point t0 = Clock::now();
  storage::WalOptions wo;
  wo.node_id = NodeId(f.node_id);
  wo.cluster_id = f.cluster_id;
  wo.segment_bytes = f.segment_mib << 20;
  wo.preallocate = !f.no_preallocate;
  absl::Status mk = disk.CreateDir(f.dir);
  // The newest checkpoint snapshot covers the log up to its index: segments
  // before it may have been released. It must verify; an older one is never
  // used instead (the log it needs may be gone).
  LogIndex snap_index;
  if (mk.ok()) {
    absl::StatusOr<std::vector<LogIndex>> snaps = storage::ListStateSnapshots(disk, f.dir);
    if (!snaps.ok()) {
      mk = snaps.status();
    } else if (!snaps->empty()) {
      snap_index = snaps->back();
      mk = storage::RocksState::VerifySnapshot(storage::StateSnapshotPath(f.dir, snap_index))
               .status();
    }
  }
  absl::StatusOr<std::unique_ptr<storage::Wal>> wal =
      mk.ok() ? storage::Wal::Open(disk, storage::RaftStore::WalDir(f.dir), wo, snap_index)
              : absl::StatusOr<std::unique_ptr<storage::Wal>>(mk);
  if (!wal.ok()) {
    std::fprintf(stderr, "bulwark storage-load: %s\n", std::string(wal.status().message()).c_str());
    return 1;
  }
  storage::WalRecovered rec = (*wal)->TakeRecovered();
  double wal_ms = MillisSince(t0);
  // The state store (none with --no-state: the log alone).
  std::unique_ptr<storage::RocksState> state;
  LogIndex applied_before;
  if (!f.no_state) {
    absl::StatusOr<std::unique_ptr<storage::RocksState>> opened =
        storage::RocksState::Open(storage::StateDir(f.dir));
    if (!opened.ok()) {
      std::fprintf(stderr, "bulwark storage-load: %s\n",
                   std::string(opened.status().message()).c_str());
      return 1;
    }
    state = std::move(*opened);
    if (state->applied_index() < snap_index) {
      // The store lost what the snapshot holds (it was wiped, say): start
      // from the snapshot, then replay the log after it.
      absl::Status installed =
          state->InstallSnapshot(storage::StateSnapshotPath(f.dir, snap_index));
      if (!installed.ok()) {
        std::fprintf(stderr, "bulwark storage-load: %s\n",
                     std::string(installed.message()).c_str());
        return 1;
      }
    }
    applied_before = state->applied_index();
    if (applied_before > (*wal)->last_index()) {
      std::fprintf(stderr,
                   "bulwark storage-load: state applied index %llu is past the log (%llu)\n",
                   static_cast<unsigned long long>(applied_before.value()),
                   static_cast<unsigned long long>((*wal)->last_index().value()));
      return 1;
    }
    // Only what the log says is committed: entries after the last durable
    // hard state were written but never acknowledged (a kill between a
    // group's entries and its hard state); the next group's commit covers them.
    std::vector<raft::Entry> committed;
    for (raft::Entry& e : rec.entries) {
      if (e.index <= rec.hard_state.commit) committed.push_back(std::move(e));
    }
    absl::Status replayed = ApplyEntries(*state, committed);
    if (!replayed.ok()) {
      std::fprintf(stderr, "bulwark storage-load: replay: %s\n",
                   std::string(replayed.message()).c_str());
      return 1;
    }
  }
  LogIndex applied_now = state ? state->applied_index() : applied_before;
  std::fprintf(
      stderr,
      "snapshot %llu; recovered %zu entries (%zu segments) in %.0f ms; state applied %llu, "
      "replayed "
      "%llu; ready in %.0f ms%s%s\n",
      static_cast<unsigned long long>(snap_index.value()), rec.entries.size(), rec.segments.size(),
      wal_ms, static_cast<unsigned long long>(applied_before.value()),
      static_cast<unsigned long long>(applied_now - applied_before), MillisSince(t0),
      rec.torn_tail.empty() ? "" : "; cut torn tail: ", rec.torn_tail.c_str());
  rec.entries.clear();

  if (!f.verify.empty()) {
    if (!state) {
      std::fprintf(stderr, "bulwark storage-load: --verify needs the state store\n");
      return 2;
    }
    std::ifstream in(f.verify);
    std::string word, key, value;
    uint64_t checked = 0, missing = 0;
    while (in >> word >> key >> value) {
      if (word != "ack") continue;
      ++checked;
      absl::StatusOr<std::optional<std::string>> got = state->Get(key);
      if (!got.ok() || !got->has_value() || **got != value) {
        ++missing;
        if (missing <= 10) {
          std::string found = !got.ok()           ? std::string(got.status().message())
                              : !got->has_value() ? "no such key"
                                                  : "the value " + **got;
          std::fprintf(stderr, "LOST acknowledged write %s: expected %s, found %s\n", key.c_str(),
                       value.c_str(), found.c_str());
        }
      }
    }
    std::printf("verified %llu acknowledged writes, %llu lost\n",
                static_cast<unsigned long long>(checked), static_cast<unsigned long long>(missing));
    if (missing > 0) return 1;
  }
  if (f.count == 0 && f.seconds <= 0) return 0;

  // Each run writes keys of its own: the log's next index names the run.
  const std::string run = absl::StrCat("r", (*wal)->last_index().value() + 1);
  std::mutex out_mu;
  absl::Status apply_error;
  storage::RocksState* st = state.get();
  LogIndex last_snapshot = snap_index;
  storage::GroupCommitter* gc_ptr = nullptr;
  storage::GroupCommitter gc(
      **wal, Term(1), 64 << 20,
      [&](const std::vector<raft::Entry>& group) {
        if (st == nullptr || !apply_error.ok()) return;
        absl::Status s = ApplyEntries(*st, group);
        if (s.ok() && f.snapshot_every > 0 &&
            st->applied_index() - last_snapshot >= f.snapshot_every) {
          s = TakeSnapshot(disk, f.dir, *st, &last_snapshot);
          if (s.ok()) gc_ptr->RequestRelease(last_snapshot);
        }
        if (!s.ok() && apply_error.ok()) apply_error = s;
      },
      f.group_kib << 10);
  gc_ptr = &gc;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(f.writers);
  std::atomic<uint64_t> errors{0};
  std::vector<double> async_latencies;
  Clock::time_point start = Clock::now();
  {
    env::Thread storage_thread("bw-storage", [&] { gc.Run(); });
    env::Thread sync_thread("bw-sync", [&] { gc.RunSyncer(); });
    std::vector<std::unique_ptr<env::Thread>> writers;
    for (int w = 0; w < f.writers; ++w) {
      writers.push_back(std::make_unique<env::Thread>("bw-writer", [&, w] {
        std::string value(f.value_bytes, 'v');
        std::vector<kv::KvCommand> cmds;
        std::vector<std::string> payloads;
        for (;;) {
          if (stop.load()) return;
          if (f.seconds > 0 &&
              std::chrono::duration<double>(Clock::now() - start).count() > f.seconds) {
            return;
          }
          // The next `batch` writes (fewer at the end of --count).
          uint64_t first = next.fetch_add(f.batch);
          uint64_t n = f.batch;
          if (f.count > 0) {
            if (first >= f.count) return;
            n = std::min<uint64_t>(n, f.count - first);
          }
          cmds.clear();
          payloads.clear();
          for (uint64_t i = first; i < first + n; ++i) {
            kv::KvCommand cmd;
            cmd.key = absl::StrCat(run, "-", i);
            std::string tag = absl::StrCat(i, "-");
            value.replace(0, std::min(tag.size(), value.size()), tag.substr(0, value.size()));
            cmd.value = value;
            payloads.push_back(kv::EncodeKvCommand(cmd));
            cmds.push_back(std::move(cmd));
          }
          Clock::time_point t = Clock::now();
          if (f.async) {
            // Open loop: submit and go on; the queue's bound holds us back.
            // Callbacks run on the committer's threads, one at a time.
            gc.SubmitBatch(std::move(payloads), [&, t](absl::StatusOr<LogIndex> r) {
              if (!r.ok()) {
                ++errors;
                stop = true;
                return;
              }
              async_latencies.push_back(
                  std::chrono::duration<double, std::micro>(Clock::now() - t).count());
            });
            payloads = {};
            continue;
          }
          auto print_acks = [&] {
            std::lock_guard<std::mutex> lock(out_mu);
            for (const kv::KvCommand& c : cmds)
              std::printf("ack %s %s\n", c.key.c_str(), c.value.c_str());
            std::fflush(stdout);
          };
          bool ack_early = false;
#ifdef BW_PLANTED_BUGS
          ack_early = f.ack_on_submit && !f.report;
#endif
          if (ack_early) print_acks();
          absl::StatusOr<LogIndex> r = gc.Write(std::move(payloads));
          payloads = {};
          if (!r.ok()) {
            ++errors;
            stop = true;
            std::fprintf(stderr, "write failed: %s\n", std::string(r.status().message()).c_str());
            return;
          }
          if (f.report) {
            latencies[w].push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - t).count());
          } else if (!ack_early) {
            // Acknowledged only now: the entries are durable.
            print_acks();
          }
        }
      }));
    }
    writers.clear();  // joins
    gc.Stop();
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  storage::GroupCommitStats s = gc.stats();
  if (!apply_error.ok()) {
    std::fprintf(stderr, "apply failed: %s\n", std::string(apply_error.message()).c_str());
    return 1;
  }
  if (f.report) {
    std::vector<double> all = async_latencies;
    for (auto& v : latencies)
      all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    double mean = 0;
    for (double x : all)
      mean += x / static_cast<double>(all.size());
    auto pct = [&](double p) {
      return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
    };
    std::printf(
        "writers %d, batch %llu, entries %llu of %zu bytes in %.2f s: %.0f entries/s, %.2f MB/s "
        "payload, "
        "%.2f MB/s written to the log; %llu syncs (%.1f entries each, largest group %llu); latency "
        "mean %.0f us, p50 %.0f us, p99 %.0f us\n",
        f.writers, static_cast<unsigned long long>(f.batch),
        static_cast<unsigned long long>(s.entries), f.value_bytes, secs, s.entries / secs,
        s.bytes / secs / 1e6, (*wal)->bytes() / secs / 1e6,
        static_cast<unsigned long long>(s.syncs),
        s.syncs ? static_cast<double>(s.entries) / s.syncs : 0.0,
        static_cast<unsigned long long>(s.largest_group), mean, pct(0.5), pct(0.99));
  }
  return errors > 0 ? 1 : 0;
}

}  // namespace

void AddCheckDataCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* cmd = app.add_subcommand(
      "check-data",
      "Verify a member's data directory (snapshot, WAL, state store); exit 0 clean, 1 damage");
  cmd->add_option("dir", flags->dir, "Data directory")->required();
  cmd->add_flag("--repair", flags->repair,
                "Cut a torn tail (unsynced bytes only); nothing else is ever changed");
  cmd->callback([flags, exit_code] { *exit_code = RunCheckData(*flags); });
}

void AddStorageLoadCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<LoadFlags>();
  CLI::App* cmd = app.add_subcommand(
      "storage-load", "Recover a data directory, then write to it with group commit");
  cmd->add_option("--dir", flags->dir, "Data directory")->required();
  cmd->add_option("--count", flags->count, "Writes to make (0: only recover)");
  cmd->add_option("--seconds", flags->seconds, "Stop writing after this long");
  cmd->add_option("--writers", flags->writers, "Concurrent writer threads")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--value-bytes", flags->value_bytes, "Bytes per value")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--segment-mib", flags->segment_mib, "WAL segment size, MiB")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--group-kib", flags->group_kib, "Most payload one sync covers, KiB")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--verify", flags->verify,
                  "After recovery, check every 'ack KEY VALUE' line of this file is present");
  cmd->add_flag("--report", flags->report, "Print throughput and latency instead of acks");
  cmd->add_option("--batch", flags->batch,
                  "Writes each writer submits together (a Ready's worth); latency is per batch")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--snapshot-every", flags->snapshot_every,
                  "Checkpoint the state store every this many entries and release the log "
                  "segments it covers (0: never)");
  cmd->add_flag("--async", flags->async,
                "Writers submit without waiting for each write (with --report: bandwidth)");
  cmd->add_flag("--no-preallocate", flags->no_preallocate,
                "Do not reserve WAL segments' space up front (for comparison)");
  cmd->add_flag("--no-state", flags->no_state,
                "Log only: no state store (with --report: the WAL alone)");
#ifdef BW_PLANTED_BUGS
  cmd->add_flag("--plant-bug-ack-on-submit", flags->ack_on_submit,
                "Planted bug: acknowledge writes before they reach the log (crash-test check)");
#endif
  cmd->add_option("--node-id", flags->node_id, "Member id recorded in the WAL");
  cmd->add_option("--cluster-id", flags->cluster_id, "Cluster id recorded in the WAL");
  cmd->callback([flags, exit_code] { *exit_code = RunStorageLoad(*flags); });
}

}  // namespace bw::cli
