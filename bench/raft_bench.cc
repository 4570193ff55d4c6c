// Throughput and latency of the Raft core alone: 3 or 5 Raft instances in one
// thread, no codec, no I/O, no clock. Each benchmark iteration is one round:
// the leader proposes a batch of B entries (kPayloadBytes each) with
// ProposeBatch, then every node's Ready is processed in turn until the
// leader has applied the batch. Processing a Ready "persists" by counting,
// moves each message straight into the destination's Step, counts committed
// entries and calls Advance. Messages a round leaves behind (the leader's
// commit broadcast) are delivered in the next round, as in a real pipeline.
//
// Every kCompactEveryEntries committed entries each node snapshots (a few
// bytes) and compacts its log, so memory stays bounded however long the
// benchmark runs. The run aborts (BW_ASSERT) if a node ever needs a snapshot
// transfer, falls out of the leader role, or loses an entry.
//
//   BM_RaftThroughput/nodes:N/batch:B  entries/s and bytes/s of committed payload
//   BM_RaftRoundLatency/nodes:N        ns from ProposeBatch(1) to the leader applying it
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "raft/codec.h"
#include "raft/raft.h"

namespace bw::raft {
namespace {

constexpr size_t kPayloadBytes = 16;
constexpr uint64_t kCompactEveryEntries = 64 * 1024;
// Entries each node keeps behind its snapshot (a slow follower's margin).
constexpr uint64_t kCompactKeepEntries = 1024;
// A round that is not done after this many passes over the nodes is a bug.
constexpr int kMaxPassesPerRound = 64;

// What a node's driver has done with its Readies.
struct NodeStats {
  uint64_t persisted_entries = 0;
  uint64_t persisted_bytes = 0;
  LogIndex persisted_last;
  uint64_t applied_entries = 0;  // non-empty normal entries
  LogIndex applied_last;
};

// N Raft cores wired together in memory. Node i + 1 is nodes_[i]; node 1 is
// elected at construction. Single-threaded; owned by one benchmark run.
class MemCluster {
 public:
  explicit MemCluster(int n) : stats_(static_cast<size_t>(n)) {
    std::vector<NodeId> voters;
    for (int i = 1; i <= n; ++i)
      voters.push_back(NodeId(static_cast<uint64_t>(i)));
    for (NodeId id : voters) {
      Config c;
      c.id = id;
      c.random_seed = 42;
      absl::StatusOr<std::unique_ptr<Raft>> r = Raft::Create(c, BootstrapState(voters));
      BW_ASSERT(r.ok());
      nodes_.push_back(std::move(*r));
    }
    Settle();  // applies the bootstrap configuration everywhere
    nodes_[0]->Campaign();
    Settle();
    BW_ASSERT(nodes_[0]->role() == Role::kLeader);
    for (const auto& r : nodes_)
      BW_ASSERT_EQ(r->leader(), NodeId(1));
  }

  Raft& leader() { return *nodes_[0]; }
  const NodeStats& stats(size_t i) const { return stats_[i]; }
  size_t size() const { return nodes_.size(); }

  // Proposes `batch` on the leader and processes Readies until the leader
  // has applied all of it.
  void Round(std::vector<std::string> batch) {
    Raft& lead = leader();
    LogIndex target = lead.log().last_index() + batch.size();
    absl::Status s = lead.ProposeBatch(std::move(batch));
    BW_ASSERT(s.ok());
    for (int pass = 0; lead.log().applied() < target; ++pass) {
      BW_ASSERT_LT(pass, kMaxPassesPerRound);
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->HasReady()) Process(i);
      }
    }
    BW_ASSERT(lead.role() == Role::kLeader);
    if (stats_[0].applied_entries >= next_compact_) {
      next_compact_ = stats_[0].applied_entries + kCompactEveryEntries;
      CompactAll();
    }
  }

  // Processes Readies until no node has one.
  void Settle() {
    for (int pass = 0;; ++pass) {
      BW_ASSERT_LT(pass, kMaxPassesPerRound);
      bool any = false;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->HasReady()) {
          Process(i);
          any = true;
        }
      }
      if (!any) return;
    }
  }

 private:
  // One Ready of node `i`, in the order raft/types.h prescribes.
  void Process(size_t i) {
    Raft& r = *nodes_[i];
    NodeStats& st = stats_[i];
    Ready rd = r.GetReady();
    // 1. Persist: count what a log writer would write.
    BW_ASSERT(rd.snapshot.Empty());
    for (const Entry& e : rd.entries)
      st.persisted_bytes += e.data.size();
    st.persisted_entries += rd.entries.size();
    if (!rd.entries.empty()) st.persisted_last = rd.entries.back().index;
    // 2. Send: straight into the destination's Step, no encoding.
    for (Message& m : rd.messages) {
      BW_ASSERT(m.type != MessageType::kSnapshot);
      uint64_t to = m.to.value();
      BW_ASSERT(to >= 1 && to <= nodes_.size());
      absl::Status s = nodes_[to - 1]->Step(std::move(m));
      BW_ASSERT(s.ok());
    }
    // 3. Apply.
    for (const Entry& e : rd.committed) {
      BW_ASSERT_EQ(e.index, st.applied_last + 1);
      st.applied_last = e.index;
      if (e.type == EntryType::kConfChange) {
        absl::StatusOr<ConfChange> cc = DecodeConfChange(e.data);
        BW_ASSERT(cc.ok());
        r.ApplyConfChange(*cc);
      } else if (!e.data.empty()) {
        ++st.applied_entries;
      }
    }
    // 4. Advance.
    r.Advance(rd);
  }

  void CompactAll() {
    for (auto& r : nodes_) {
      std::string snapshot = "applied@" + std::to_string(r->log().applied().value());
      r->Compact(std::move(snapshot), kCompactKeepEntries);
    }
  }

  std::vector<std::unique_ptr<Raft>> nodes_;
  std::vector<NodeStats> stats_;
  uint64_t next_compact_ = kCompactEveryEntries;
};

std::vector<std::string> MakeBatch(size_t n, uint64_t* seq) {
  std::vector<std::string> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string p(kPayloadBytes, 'x');
    uint64_t v = (*seq)++;
    std::memcpy(p.data(), &v, sizeof(v));
    batch.push_back(std::move(p));
  }
  return batch;
}

// Checks the run did what it claims: every entry the leader applied was
// persisted by a majority; followers lag the leader by at most a round.
void CheckAfterRun(const MemCluster& c, uint64_t proposed) {
  BW_ASSERT_EQ(c.stats(0).applied_entries, proposed);
  size_t persisted_all = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    BW_ASSERT_LE(c.stats(i).applied_entries, proposed);
    if (c.stats(i).persisted_last >= c.stats(0).applied_last) ++persisted_all;
  }
  BW_ASSERT_GE(persisted_all, c.size() / 2 + 1);
}

void BM_RaftThroughput(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  const size_t batch = static_cast<size_t>(state.range(1));
  MemCluster c(nodes);
  uint64_t seq = 0;
  const uint64_t applied_before = c.stats(0).applied_entries;
  for (auto _ : state)
    c.Round(MakeBatch(batch, &seq));
  const uint64_t committed = c.stats(0).applied_entries - applied_before;
  CheckAfterRun(c, seq);
  state.counters["entries/s"] =
      benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
  state.counters["bytes/s"] =
      benchmark::Counter(static_cast<double>(committed * kPayloadBytes),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
}

// One ProposeBatch of a single entry through commit on the leader. The
// reported time is the mean ns per round; p50/p99 come from timing each
// round with steady_clock (which adds ~20 ns to the mean).
void BM_RaftRoundLatency(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  MemCluster c(nodes);
  uint64_t seq = 0;
  std::vector<int64_t> round_ns;
  round_ns.reserve(static_cast<size_t>(std::min<int64_t>(state.max_iterations, 1 << 20)));
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    c.Round(MakeBatch(1, &seq));
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    if (round_ns.size() < round_ns.capacity()) round_ns.push_back(ns);
  }
  CheckAfterRun(c, seq);
  if (!round_ns.empty()) {
    std::sort(round_ns.begin(), round_ns.end());
    auto at = [&](double q) {
      return static_cast<double>(round_ns[static_cast<size_t>(q * (round_ns.size() - 1))]);
    };
    state.counters["p50_ns"] = at(0.50);
    state.counters["p99_ns"] = at(0.99);
    state.counters["p999_ns"] = at(0.999);
  }
  state.counters["entries/s"] =
      benchmark::Counter(static_cast<double>(seq), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_RaftThroughput)
    ->ArgNames({"nodes", "batch"})
    ->ArgsProduct({{3, 5}, {1, 16, 64, 256, 1024}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RaftRoundLatency)->ArgName("nodes")->Arg(3)->Arg(5)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace bw::raft
