// The simulator as a test: sweeps of seeds across 3, 5 and 7 nodes under
// every fault family (and each family alone) must finish with no violation;
// a seed must replay identically; every planted bug must be caught within a
// bounded number of seeds; seeds that once found bugs stay as regressions.
//
// BW_SIM_SEEDS_SCALE (default 1) scales the sweep sizes: the sanitizer
// build runs 3 in 100 of them, the release build a tenth.
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace bw::sim {
namespace {

uint64_t Scaled(uint64_t n) {
  const char* s = std::getenv("BW_SIM_SEEDS_SCALE");
  double scale = s != nullptr ? std::atof(s) : 1.0;
  uint64_t scaled = static_cast<uint64_t>(static_cast<double>(n) * scale);
  return scaled == 0 ? 1 : scaled;
}

std::string Report(const SimResult& r, uint64_t seed) {
  std::string out = "seed " + std::to_string(seed) + ": " + r.violation + "\ntrace:\n";
  for (const std::string& line : r.trace_tail)
    out += "  " + line + "\n";
  return out;
}

struct Sweep {
  int nodes;
  uint32_t faults;
  uint64_t first_seed;
  uint64_t seeds;
  Workload workload = Workload::kRegisters;
  bool sdk = false;  // SimOptions::sdk_clients
};

void PrintTo(const Sweep& s, std::ostream* os) {
  *os << s.nodes << " nodes, faults " << FaultNames(s.faults) << ", seeds " << s.first_seed << "+"
      << s.seeds << ", workload " << WorkloadName(s.workload) << (s.sdk ? ", sdk clients" : "");
}

class SimSweepTest : public ::testing::TestWithParam<Sweep> {};

TEST_P(SimSweepTest, NoViolations) {
  const Sweep& p = GetParam();
  uint64_t n = Scaled(p.seeds);
  for (uint64_t i = 0; i < n; ++i) {
    SimOptions o;
    o.seed = p.first_seed + i;
    o.nodes = p.nodes;
    o.faults = p.faults;
    o.workload = p.workload;
    o.sdk_clients = p.sdk;
    SimResult r = RunSimulation(o);
    ASSERT_TRUE(r.ok) << Report(r, o.seed) << "reproduce: bulwark sim --seed " << o.seed
                      << " --nodes " << p.nodes << " --faults " << FaultNames(p.faults)
                      << " --workload " << WorkloadName(p.workload) << (p.sdk ? " --sdk" : "");
    if (p.sdk) {
      // Every operation was one call, and some were retried: the
      // policies had work.
      ASSERT_EQ(r.stats.sdk_calls, r.stats.ops_ok + r.stats.ops_failed + r.stats.ops_unknown)
          << "seed " << o.seed;
      ASSERT_GT(r.stats.sdk_retries, 0u) << "seed " << o.seed;
    }
    // A run that did nothing proves nothing.
    ASSERT_GT(r.stats.ops_ok, 0u) << "seed " << o.seed;
    if (p.workload == Workload::kExactlyOnce) {
      ASSERT_GT(r.stats.keyed_attempts, r.stats.keyed_requests) << "seed " << o.seed;
    }
    if (p.workload == Workload::kWatches) {
      ASSERT_GT(r.stats.watch_events, 0u) << "seed " << o.seed;
    }
    if (p.workload == Workload::kRecords) {
      ASSERT_GT(r.stats.records_completed, 0u) << "seed " << o.seed;
    }
    if (p.workload == Workload::kAuth && p.nodes == 3) {
      // Revocations were acknowledged and operations honoured: the checker
      // had work.
      ASSERT_GT(r.stats.auth_revocations, 0u) << "seed " << o.seed;
      ASSERT_GT(r.stats.auth_honoured, 0u) << "seed " << o.seed;
    }
    if (p.workload == Workload::kLeases) {
      // Leases were granted and some ran out: the checker had work.
      ASSERT_GT(r.stats.leases_granted, 0u) << "seed " << o.seed;
      ASSERT_GT(r.stats.lease_revocations, 0u) << "seed " << o.seed;
    }
  }
}

// 1,335 seeds in all: 3/5/7 nodes under every fault, the exactly-once and
// leases workloads, then each fault alone.
std::vector<Sweep> AllSweeps() {
  std::vector<Sweep> out;
  for (uint64_t shard = 0; shard < 8; ++shard)
    out.push_back({3, kFaultAll, 1000 + shard * 50, 50});
  for (uint64_t shard = 0; shard < 6; ++shard)
    out.push_back({5, kFaultAll, 2000 + shard * 50, 50});
  for (uint64_t shard = 0; shard < 3; ++shard)
    out.push_back({7, kFaultAll, 3000 + shard * 50, 50});
  // Keyed writes retried through every fault, on the MVCC store.
  for (uint64_t shard = 0; shard < 2; ++shard)
    out.push_back({3, kFaultAll, 6000 + shard * 40, 40, Workload::kExactlyOnce});
  out.push_back({5, kFaultAll, 6100, 30, Workload::kExactlyOnce});
  // Leases with the member's lease clock and the leader's ticks; seed 1498
  // on three nodes found a new leader starting cluster time from a deposed
  // leader's dropped tail.
  out.push_back({3, kFaultAll, 1400, 150, Workload::kLeases});
  out.push_back({5, kFaultAll, 7000, 60, Workload::kLeases});
  out.push_back({3, kFaultAll, 9000, 300, Workload::kWatches});
  out.push_back({5, kFaultAll, 9500, 100, Workload::kWatches});
  // Idempotency records: fencing tokens, takeovers after the lock's TTL.
  out.push_back({3, kFaultAll, 9700, 300, Workload::kRecords});
  out.push_back({5, kFaultAll, 10100, 100, Workload::kRecords});
  // Users, roles and tokens: permissions revoked and granted under faults.
  out.push_back({3, kFaultAll, 11000, 200, Workload::kAuth});
  out.push_back({5, kFaultAll, 11300, 60, Workload::kAuth});
  // The registers workload through the SDK's resilience pipeline.
  out.push_back({3, kFaultAll, 12000, 150, Workload::kRegisters, true});
  out.push_back({5, kFaultAll, 12200, 50, Workload::kRegisters, true});
  uint64_t seed = 4000;
  for (uint32_t bit = 1; bit < kFaultAll; bit <<= 1) {
    out.push_back({bit == kFaultMembership ? 5 : 3, bit, seed, 15});
    seed += 100;
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimSweepTest, ::testing::ValuesIn(AllSweeps()));

TEST(SimTest, SameSeedSameRun) {
  SimOptions o;
  o.seed = 77;
  o.nodes = 5;
  SimResult a = RunSimulation(o);
  SimResult b = RunSimulation(o);
  ASSERT_TRUE(a.ok) << a.violation;
  EXPECT_EQ(a.final_digest, b.final_digest);
  EXPECT_EQ(a.stats.events, b.stats.events);
  EXPECT_EQ(a.stats.messages, b.stats.messages);
  EXPECT_EQ(a.stats.ops_ok, b.stats.ops_ok);
  EXPECT_EQ(a.trace_tail, b.trace_tail);
  o.seed = 78;
  SimResult c = RunSimulation(o);
  EXPECT_NE(a.final_digest, c.final_digest) << "different seeds should differ";
}

// The SDK's pipeline draws on the run's random and simulated time only: a
// seed replays exactly, retries included.
TEST(SimTest, SdkClientsReplayFromTheSeed) {
  SimOptions o;
  o.seed = 77;
  o.sdk_clients = true;
  SimResult a = RunSimulation(o);
  SimResult b = RunSimulation(o);
  ASSERT_TRUE(a.ok) << a.violation;
  EXPECT_EQ(a.final_digest, b.final_digest);
  EXPECT_EQ(a.stats.events, b.stats.events);
  EXPECT_EQ(a.stats.sdk_attempts, b.stats.sdk_attempts);
  EXPECT_EQ(a.stats.sdk_retries, b.stats.sdk_retries);
  EXPECT_GT(a.stats.sdk_attempts, a.stats.sdk_calls);
}

TEST(SimTest, FaultsActuallyHappen) {
  SimOptions o;
  o.seed = 5;
  o.nodes = 5;
  SimStats total;
  for (uint64_t s = 0; s < 10; ++s) {
    o.seed = 500 + s;
    SimResult r = RunSimulation(o);
    ASSERT_TRUE(r.ok) << Report(r, o.seed);
    total.crashes += r.stats.crashes;
    total.partitions += r.stats.partitions;
    total.conf_changes += r.stats.conf_changes;
    total.snapshots_installed += r.stats.snapshots_installed;
    total.elections += r.stats.elections;
    total.ops_unknown += r.stats.ops_unknown;
    total.messages_dropped += r.stats.messages_dropped;
    total.halts += r.stats.halts;
    total.refused_starts += r.stats.refused_starts;
    total.disk_full += r.stats.disk_full;
    total.log_entries_read += r.stats.log_entries_read;
    total.log_read_failures += r.stats.log_read_failures;
  }
  EXPECT_GT(total.crashes, 10u);
  EXPECT_GT(total.partitions, 5u);
  EXPECT_GT(total.conf_changes, 0u);
  EXPECT_GT(total.snapshots_installed, 0u);
  EXPECT_GT(total.elections, 20u);
  EXPECT_GT(total.ops_unknown, 0u);
  EXPECT_GT(total.messages_dropped, 0u);
  EXPECT_GT(total.halts, 0u);           // fsync failed with EIO
  EXPECT_GT(total.refused_starts, 0u);  // a bit flipped as a log was read
  EXPECT_GT(total.disk_full, 0u);
  // Lagging followers were fed from leaders' WALs (entries out of memory),
  // and reads that failed (a bit flipped on read) were tried again.
  EXPECT_GT(total.log_entries_read, 0u);
  EXPECT_GT(total.log_read_failures, 0u);
}

// Seeds that found real bugs while the simulator was being built. The
// simulator's random stream has changed since, so these are ordinary runs
// now; each bug also has a targeted test: KvStateMachineTest for duplicated
// proposals, RaftTest.AStaleCandidateDoesNotHoldOffTheElection, and (for the
// read served before an installed snapshot was applied, which the core now
// also prevents by installing only at Advance)
// RaftTest.SnapshotArrivingDuringAnOutstandingReadyWaitsForAdvance.
TEST(SimTest, RegressionSeeds) {
  struct Case {
    uint64_t seed;
    int nodes;
    const char* bug;
    Workload workload = Workload::kRegisters;
  } cases[] = {
      {36, 3, "a forwarded proposal duplicated by the network was applied twice"},
      {191, 3, "a read was served while an installed snapshot was not yet applied"},
      {168, 3, "a candidate with a stale log kept resetting everyone's election timer"},
      {8617, 3,
       "a snapshot rewrote the log while the next Ready (pumped from a read's callback) was "
       "being synced, leaving its entry out: a WAL gap the member refused to start on",
       Workload::kAuth},
      {13679, 3,
       "a copy of a forwarded grant, delivered again by the network after the permission was "
       "revoked, was placed in the log a second time and undid the revocation",
       Workload::kAuth},
      {560, 3,
       "the records checker took a lock its holder had released for one still held (a false "
       "alarm: it did not know of releases)",
       Workload::kRecords},
  };
  for (const Case& c : cases) {
    SimOptions o;
    o.seed = c.seed;
    o.nodes = c.nodes;
    o.workload = c.workload;
    SimResult r = RunSimulation(o);
    EXPECT_TRUE(r.ok) << c.bug << "\n" << Report(r, c.seed);
  }
}

// Latent corruption (a bit flipped in a synced WAL record): a damaged member
// refuses to start. On a minority nothing acknowledged is lost and the rest
// stay live; on a majority the cluster halts and acknowledges nothing more.
constexpr uint32_t kFaultsKeepingMembership = kFaultAll & ~kFaultMembership & ~kFaultFigure8;

TEST(SimTest, CorruptionOnAMinorityLosesNothing) {
  for (int nodes : {3, 5}) {
    SimStats total;
    for (uint64_t seed = 6000; seed < 6000 + Scaled(20); ++seed) {
      SimOptions o;
      o.seed = seed;
      o.nodes = nodes;
      o.faults = kFaultsKeepingMembership;
      o.corrupt_nodes = (nodes - 1) / 2;
      SimResult r = RunSimulation(o);
      ASSERT_TRUE(r.ok) << Report(r, seed);
      total.refused_starts += r.stats.refused_starts;
      total.ops_ok += r.stats.ops_ok;
    }
    // Each damaged member was tried, and refused, at least once.
    EXPECT_GE(total.refused_starts, Scaled(20) * static_cast<uint64_t>((nodes - 1) / 2));
    EXPECT_GT(total.ops_ok, 0u);
  }
}

// Rebuilt from its peers: each damaged voter is replaced by a fresh member,
// which must end with every acknowledged write (CheckFinal's lost-write and
// convergence checks cover the new member).
TEST(SimTest, DamagedMinorityIsRebuiltFromItsPeers) {
  for (int nodes : {3, 5}) {
    for (uint64_t seed = 6500; seed < 6500 + Scaled(20); ++seed) {
      SimOptions o;
      o.seed = seed;
      o.nodes = nodes;
      o.faults = kFaultsKeepingMembership;
      o.corrupt_nodes = (nodes - 1) / 2;
      o.rebuild_damaged = true;
      SimResult r = RunSimulation(o);
      ASSERT_TRUE(r.ok) << Report(r, seed);
      EXPECT_GE(r.stats.conf_changes, static_cast<uint64_t>(o.corrupt_nodes));
    }
  }
}

TEST(SimTest, CorruptionOnAMajorityHaltsSafely) {
  for (int nodes : {3, 5}) {
    for (uint64_t seed = 7000; seed < 7000 + Scaled(20); ++seed) {
      SimOptions o;
      o.seed = seed;
      o.nodes = nodes;
      o.faults = kFaultsKeepingMembership;
      o.corrupt_nodes = nodes / 2 + 1;
      SimResult r = RunSimulation(o);
      ASSERT_TRUE(r.ok) << Report(r, seed);
      EXPECT_GE(r.stats.refused_starts, static_cast<uint64_t>(o.corrupt_nodes));
    }
  }
}

TEST(SimTest, InvalidOptionsAreRejected) {
  SimOptions o;
  o.nodes = 0;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.nodes = 3;
  o.election_ticks = 1;
  EXPECT_NE(o.Validate().message().find("election_ticks"), std::string::npos);
  o.election_ticks = 10;
  o.corrupt_nodes = 2;
  o.rebuild_damaged = true;  // a majority cannot agree to rebuild
  EXPECT_NE(std::string(o.Validate().message()).find("minority"), std::string::npos);
  o.corrupt_nodes = 4;
  o.rebuild_damaged = false;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.corrupt_nodes = 0;
  o.workload = Workload::kLeases;
  o.sdk_clients = true;  // the registers workload's clients only
  EXPECT_NE(std::string(o.Validate().message()).find("--sdk"), std::string::npos);
  o.workload = Workload::kRegisters;
  EXPECT_TRUE(o.Validate().ok());
  o.sdk_clients = false;
  o.planted_sdk_key_per_attempt = true;
  EXPECT_NE(std::string(o.Validate().message()).find("need --sdk"), std::string::npos);
  EXPECT_FALSE(ParseFaults("drop,bogus").ok());
  EXPECT_EQ(*ParseFaults("drop,crash"), kFaultDrop | kFaultCrash);
  EXPECT_EQ(*ParseFaults("all"), static_cast<uint32_t>(kFaultAll));
}

#ifdef BW_PLANTED_BUGS
struct PlantedBug {
  const char* name;
  int nodes;
  uint32_t faults;
  uint64_t max_seeds;
  void (*plant)(SimOptions&);
};

void PrintTo(const PlantedBug& b, std::ostream* os) {
  *os << b.name;
}

class PlantedBugTest : public ::testing::TestWithParam<PlantedBug> {};

// Each planted bug must be caught within max_seeds seeds (the figures are
// recorded in docs/simulation.md).
TEST_P(PlantedBugTest, IsCaught) {
  const PlantedBug& b = GetParam();
  for (uint64_t seed = 1; seed <= b.max_seeds; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.nodes = b.nodes;
    o.faults = b.faults;
    b.plant(o);
    SimResult r = RunSimulation(o);
    if (!r.ok) {
      std::printf("planted bug %s caught at seed %llu: %s\n", b.name,
                  static_cast<unsigned long long>(seed), r.violation.substr(0, 160).c_str());
      return;
    }
  }
  FAIL() << "planted bug " << b.name << " went unnoticed for " << b.max_seeds << " seeds";
}

INSTANTIATE_TEST_SUITE_P(
    Bugs, PlantedBugTest,
    ::testing::Values(
        // Figure 3.7 needs a particular history; the figure8 fault plays
        // it (about one seed in ten of the first 400 since it cuts the other
        // side's leader off as it is elected and kills the next one
        // quickly; before, one in 500).
        PlantedBug{"commit_previous_term_by_counting", 5, kFaultFigure8, 60,
                   [](SimOptions& o) { o.raft_bugs.commit_previous_term_by_counting = true; }},
        PlantedBug{"skip_vote_log_check", 3, kFaultAll, 100,
                   [](SimOptions& o) { o.raft_bugs.skip_vote_log_check = true; }},
        PlantedBug{"reads_without_read_index", 3, kFaultAll, 20,
                   [](SimOptions& o) { o.node_bugs.reads_without_read_index = true; }},
        // Rare with 5 nodes (seed 964 since keyed requests carry their
        // retention): 3 of the first 60 seeds with 3.
        PlantedBug{"ack_before_persist", 3, kFaultAll, 150,
                   [](SimOptions& o) { o.node_bugs.ack_before_persist = true; }},
        // A WAL that does not verify checksums starts on a damaged log.
        // Without the idempotency table a retry is applied again.
        PlantedBug{"skip_dedup", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.workload = Workload::kExactlyOnce;
                     o.planted_skip_dedup = true;
                   }},
        // The same, with no reused keys: the double application itself
        // must be seen in the data.
        PlantedBug{"skip_dedup_applied_twice", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.workload = Workload::kExactlyOnce;
                     o.keyed_reuse_chance = 0;
                     o.planted_skip_dedup = true;
                   }},
        // Leases started from the proposer's reckoning of log time (before
        // the leader stamped entries): a follower that lags revokes early.
        PlantedBug{"proposer_time", 3, kFaultAll, 20,
                   [](SimOptions& o) {
                     o.workload = Workload::kLeases;
                     o.planted_proposer_time = true;
                   }},
        // A watch hub that loses events, and a compaction that takes the
        // delete at the compaction point with it: watchers see the gap.
        PlantedBug{"watch_gaps", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.workload = Workload::kWatches;
                     o.planted_watch_gaps = true;
                   }},
        PlantedBug{"compaction_drops_delete", 3, kFaultAll, 30,
                   [](SimOptions& o) {
                     o.workload = Workload::kWatches;
                     o.planted_compaction_drops_delete = true;
                   }},
        // The record service honouring a superseded token; and records on
        // the proposer's clock (before the leader stamped entries), which
        // lets a lock be taken over early.
        PlantedBug{"stale_token", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.workload = Workload::kRecords;
                     o.planted_stale_token = true;
                   }},
        PlantedBug{"records_proposer_time", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.workload = Workload::kRecords;
                     o.planted_proposer_time = true;
                   }},
        // Permissions checked only by the proposing member (not again when
        // the entry is applied); a read's permission checked before its
        // barrier: a revoked permission is honoured.
        PlantedBug{"skip_apply_auth", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.workload = Workload::kAuth;
                     o.planted_skip_apply_auth = true;
                   }},
        PlantedBug{"auth_before_barrier", 3, kFaultAll, 20,
                   [](SimOptions& o) {
                     o.workload = Workload::kAuth;
                     o.planted_auth_before_barrier = true;
                   }},
        // SDK clients: a key made per attempt (a retry becomes a new
        // write, applied twice); a write whose attempt may have been
        // applied reported as failed (the history then shows a failed
        // write's value read).
        PlantedBug{"sdk_key_per_attempt", 3, kFaultAll, 10,
                   [](SimOptions& o) {
                     o.sdk_clients = true;
                     o.planted_sdk_key_per_attempt = true;
                   }},
        PlantedBug{"sdk_unknown_as_failed", 3, kFaultAll, 20,
                   [](SimOptions& o) {
                     o.sdk_clients = true;
                     o.planted_sdk_unknown_as_failed = true;
                   }},
        PlantedBug{"wal_skip_checksums", 3, kFaultAll & ~kFaultMembership & ~kFaultFigure8, 20,
                   [](SimOptions& o) {
                     o.corrupt_nodes = 1;
                     o.node_bugs.wal_skip_checksums = true;
                   }}),
    [](const ::testing::TestParamInfo<PlantedBug>& info) { return std::string(info.param.name); });
#endif

}  // namespace
}  // namespace bw::sim
