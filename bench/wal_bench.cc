// The Raft log's storage alone: what appending entries to the write-ahead log
// costs, with and without the fdatasync that makes them durable. The log
// lives on the real disk (a scratch directory under $TMPDIR, or /var/tmp),
// so the synced figures are the device's as much as ours: compare them with
// `bench/wal_vs_disk.sh`, which measures the device with dd in the same run.
//
//   BM_WalAppend/batch:B      Append of B entries (256-byte payloads) and a
//                             hard state, no sync: encoding, checksums, write(2)
//   BM_WalAppendSync/batch:B  the same followed by Sync (one fdatasync), as a
//                             member does once per Ready (group commit)
//
// Every 64 Ki entries the log is rebased past what it holds and the old
// segments are released, as a snapshot does, so the disk used stays bounded
// however long a benchmark runs.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "env/real/real_disk.h"
#include "storage/wal.h"

namespace bw::storage {
namespace {

constexpr size_t kPayloadBytes = 256;
constexpr uint64_t kRebaseEvery = 64 * 1024;

class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/var/tmp") + "/bw-wal-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void RunAppend(benchmark::State& state, bool sync) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  ScratchDir dir;
  env::RealDisk disk;
  WalOptions options;
  options.cluster_id = 1;
  options.node_id = NodeId(1);
  absl::StatusOr<std::unique_ptr<Wal>> opened =
      Wal::Open(disk, dir.path() + "/wal", options, LogIndex(0));
  if (!opened.ok()) {
    state.SkipWithError(std::string(opened.status().message()).c_str());
    return;
  }
  Wal& wal = **opened;
  std::vector<raft::Entry> entries(batch);
  for (raft::Entry& e : entries) {
    e.term = Term(1);
    e.data = std::string(kPayloadBytes, 'v');
  }
  uint64_t next = 1;
  uint64_t since_rebase = 0;
  for (auto _ : state) {
    for (raft::Entry& e : entries)
      e.index = LogIndex(next++);
    raft::HardState hs{Term(1), NodeId(1), LogIndex(next - 1)};
    absl::Status s = wal.Append(hs, entries);
    if (s.ok() && sync) s = wal.Sync();
    since_rebase += batch;
    if (s.ok() && since_rebase >= kRebaseEvery) {
      state.PauseTiming();
      s = wal.Rebase(LogIndex(next - 1), hs, {});
      if (s.ok()) s = wal.Release(LogIndex(next - 1)).status();
      since_rebase = 0;
      state.ResumeTiming();
    }
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * kPayloadBytes));
}

void BM_WalAppend(benchmark::State& state) {
  RunAppend(state, /*sync=*/false);
}
BENCHMARK(BM_WalAppend)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256);

void BM_WalAppendSync(benchmark::State& state) {
  RunAppend(state, /*sync=*/true);
}
BENCHMARK(BM_WalAppendSync)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256)->Arg(4096);

}  // namespace
}  // namespace bw::storage
