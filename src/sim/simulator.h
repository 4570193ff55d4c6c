// The deterministic cluster simulator: whole clusters of member::Member (the
// class production's server constructs: the node, the MVCC store, the watch
// hub, log time and the leader's ticks, quota, publishing, users,
// keep-alive batching) and their clients in one thread, on a SimWorld, from
// one seed. The seed derives
// everything — message delays, loss, duplication and reordering; partitions;
// crashes that lose unsynced writes; clock drift; membership changes;
// snapshots; leadership transfers; and which rare-path fault sites fire.
//
// A run has a safety phase (faults on) and a liveness phase (faults healed,
// every crashed node restarted). Checkers run throughout (Raft invariants on
// every persisted Ready and applied entry) and at the end (linearizable
// client histories, no acknowledged write lost, identical state on every
// replica, a stable leader within a bound).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "node/node.h"
#include "raft/config.h"

namespace bw::sim {

// Fault families, as bits.
enum Fault : uint32_t {
  kFaultDrop = 1u << 0,
  kFaultDuplicate = 1u << 1,
  kFaultReorder = 1u << 2,
  kFaultPartition = 1u << 3,
  kFaultCrash = 1u << 4,
  kFaultDrift = 1u << 5,
  kFaultMembership = 1u << 6,
  kFaultSnapshot = 1u << 7,
  kFaultBuggify = 1u << 8,
  kFaultTransfer = 1u << 9,
  // The dissertation's Figure 3.7 played with random timing: a leader and one
  // follower are cut off while clients write, the others elect a leader that
  // is cut off and crashed right after it takes writes, the old side wins
  // again and is crashed soon after, and the crashed leader returns.
  kFaultFigure8 = 1u << 10,
  // Disk faults on every node: torn tails at crashes, fsync failing with EIO
  // (the node halts and is restarted), bits flipped on read (the node refuses
  // to start and is tried again later), and now and then a full disk for a
  // while (the node raises the no-space alarm and recovers).
  kFaultDisk = 1u << 11,
  kFaultAll = (1u << 12) - 1,
};

// "drop,partition,crash" -> bits; "all" and "none" are accepted.
absl::StatusOr<uint32_t> ParseFaults(const std::string& list);
// "drop,crash" for those bits; "all" and "none" for the extremes.
std::string FaultNames(uint32_t faults);
// Every family's name, comma-separated (for help and error messages).
std::string KnownFaults();

// What the clients do.
enum class Workload {
  // Linearizable reads (member::Member::Read, then a Range), puts and
  // compare-and-sets (a txn) on a few keys of the MVCC store, each write
  // with an idempotency key as the SDK sends it; the history must be
  // linearizable and no acknowledged write may be lost.
  kRegisters,
  // Keyed (idempotent) etcd writes on the MVCC store, each retried with the
  // same idempotency key through every fault until it is answered, sometimes
  // sent twice at once, and now and then followed by a different request
  // under a used key. No request may be applied twice, every answer to a key
  // must be the first one, an acknowledged request must be applied, and a
  // reused key must be refused.
  kExactlyOnce,
  // Leases on the MVCC store, with every member's lease clock
  // (member::LogTime) and the leader's ticks, run by the member itself:
  // clients grant leases of 2-4 s through any member and keep some alive.
  // No lease may be revoked (on any replica) before its TTL has passed on
  // the fastest clock since the client sent the grant or the last keep-alive
  // that was answered (check::LeaseExpiryChecker).
  kLeases,
  // Watches on the MVCC store through each member's watch hub
  // (member::WatchHub, the member's own): half the clients write
  // (puts, deletes, two-key txns, now and then a compaction), the others
  // watch every key from revision 2, resuming on another member (from the
  // revision after their last event) when theirs crashes, and now and then
  // moving on their own. Each must see every revision once, whole, in
  // order, the same events as every other watcher, skipping only what a
  // compaction took (check::WatchStreamChecker); at the end every watcher
  // catches up with the leader.
  kWatches,
  // bulwark.v1.Idempotency records on the MVCC store: workers Begin a job
  // key with a short lock, checkpoint it (now and then stalling past the
  // lock), then Complete or Release it; a worker whose lock ran out finds
  // another took over. Fencing tokens must never go backwards or be given
  // twice, an older holder is never honoured once a newer one started, a job
  // completes once (later Begins get its response), and a lock is taken over
  // only after its TTL on the fastest clock (check::RecordFencingChecker).
  kRecords,
  // Authentication and permissions under faults, through the member's own
  // paths (tokens from Authenticate entries, Member::ProposeAs and
  // Member::Read): the first client, as root, sets up a user and a role per
  // other client (read-write on one key of its own), enables
  // authentication, then keeps revoking and granting those permissions;
  // the others authenticate (again whenever their token is unknown, as
  // after a member restarts) and read and write their keys. A revoked
  // permission is never honoured once the revocation was acknowledged
  // (check::AuthRevocationChecker), and no member applies a write whose
  // user lacked the permission at that point of the log.
  kAuth,
};

// "registers", "exactly-once", "leases", "watches", "records" or "auth".
absl::StatusOr<Workload> ParseWorkload(const std::string& name);
std::string WorkloadName(Workload w);

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  int clients = 4;
  int keys = 4;
  uint32_t faults = kFaultAll;
  int64_t safety_us = 30'000'000;
  int64_t liveness_us = 10'000'000;
  int64_t tick_us = 100'000;
  uint32_t election_ticks = 10;
  uint32_t heartbeat_ticks = 1;
  // Mean pause between a client's operations.
  int64_t client_think_us = 20'000;
  int64_t client_timeout_us = 1'500'000;
  // Latent disk corruption: halfway through the safety phase, flip one bit
  // of a synced WAL record on this many of the initial voters and crash
  // them. A damaged member must refuse to start, and stays down. Fewer than
  // a majority: the others carry on and lose nothing. A majority: the
  // cluster must halt, acknowledging nothing more and answering nothing
  // wrongly. Best with faults that leave membership alone.
  int corrupt_nodes = 0;
  // With a damaged minority: once the faults are healed, rebuild from the
  // peers, as an operator would (etcd's member remove + member add): the
  // leader replaces each damaged voter with a fresh member in one joint-
  // consensus step, and the new member must catch up from the others.
  bool rebuild_damaged = false;
  bool lease_reads = false;
  Workload workload = Workload::kRegisters;
  // The registers workload's clients call through the C++ SDK's resilience
  // pipeline (client::Pipeline: deadline, retries with backoff and jitter
  // inside a retry budget, circuit breakers, outlier ejection, bulkhead),
  // one pipeline per client with every member as an endpoint, as an
  // application would: an operation is one call, retried on another member
  // with the idempotency key made before its first attempt, and recorded
  // in the history with the call's outcome (ok, failed, unknown).
  bool sdk_clients = false;
  // Exactly-once: how often a new request reuses an answered key.
  double keyed_reuse_chance = 0.05;
  raft::PlantedBugs raft_bugs;
  // Planted bug (BW_PLANTED_BUGS builds): the MVCC store ignores
  // idempotency keys, so every retry is applied again.
  bool planted_skip_dedup = false;
  // Planted bug (BW_PLANTED_BUGS builds): leases start from the proposing
  // member's reckoning of log time, not the leader's stamp.
  bool planted_proposer_time = false;
  // Planted bug (BW_PLANTED_BUGS builds): the watch hubs drop every 500th
  // event they send.
  bool planted_watch_gaps = false;
  // Planted bug: compaction drops a delete at the compaction point (as
  // etcd does), so a watch that starts there misses it.
  bool planted_compaction_drops_delete = false;
  // Planted bug: the record service honours a Checkpoint or Complete from a
  // holder whose token was superseded.
  bool planted_stale_token = false;
  // Planted bug: the MVCC store does not check permissions when it applies
  // an entry (only the proposing member does).
  bool planted_skip_apply_auth = false;
  // Planted bug: a member checks a read's permission before its read
  // barrier.
  bool planted_auth_before_barrier = false;
  // Planted bug (SDK clients): each attempt of a write carries a key of its
  // own, so a retry after an unanswered attempt is a new write.
  bool planted_sdk_key_per_attempt = false;
  // Planted bug (SDK clients, in client::Pipeline): a write whose attempt
  // may have been applied ends as failed, not unknown, at its deadline.
  bool planted_sdk_unknown_as_failed = false;
  node::NodeBugs node_bugs;
  // How often the trace notes the clients' progress.
  int64_t progress_every_us = 5'000'000;
  // Lines of trace kept for a failure report.
  size_t trace_lines = 60;
  // Called with each trace line as it happens (the narrated demo).
  std::function<void(const std::string&)> narrate;

  [[nodiscard]] absl::Status Validate() const;
};

struct SimStats {
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t ops_unknown = 0;
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t elections = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t conf_changes = 0;
  uint64_t snapshots_installed = 0;
  uint64_t transfers = 0;
  uint64_t halts = 0;           // nodes stopped by a storage failure
  uint64_t refused_starts = 0;  // restarts refused because of damage read
  uint64_t disk_full = 0;       // periods of a full disk
  uint64_t messages = 0;
  uint64_t messages_dropped = 0;
  uint64_t events = 0;
  uint64_t applied_entries = 0;
  // Entries leaders sent to followers from their WAL (out of the Raft log's
  // memory), and sends that failed to read them (a bit flipped on read).
  uint64_t log_entries_read = 0;
  uint64_t log_read_failures = 0;
  // The exactly-once workload: keyed requests, attempts sent (retries and
  // concurrent copies included), answers that were replays of the first,
  // and reused keys refused.
  uint64_t keyed_requests = 0;
  uint64_t keyed_attempts = 0;
  uint64_t keyed_replays = 0;
  uint64_t keyed_refused = 0;
  // The leases workload: leases granted, keep-alives answered, revocations
  // seen.
  uint64_t leases_granted = 0;
  uint64_t lease_keepalives = 0;
  uint64_t lease_revocations = 0;
  // The watches workload: events delivered, resumes on another member (or
  // the same one restarted), cancels for compaction.
  uint64_t watch_events = 0;
  uint64_t watch_resumes = 0;
  uint64_t watch_compactions = 0;
  // The records workload: jobs started, taken over, completed.
  uint64_t records_started = 0;
  uint64_t records_taken_over = 0;
  uint64_t records_completed = 0;
  // The auth workload: permission changes acknowledged (revocations among
  // them), user operations honoured and refused for want of permission.
  uint64_t auth_changes = 0;
  uint64_t auth_revocations = 0;
  uint64_t auth_honoured = 0;
  uint64_t auth_denied = 0;
  // SDK clients (SimOptions::sdk_clients), summed over the clients'
  // pipelines: calls, attempts, retries, calls that ended unknown, breakers
  // opened, endpoints ejected, retries the budget refused.
  uint64_t sdk_calls = 0;
  uint64_t sdk_attempts = 0;
  uint64_t sdk_retries = 0;
  uint64_t sdk_unknown = 0;
  uint64_t sdk_breaker_opened = 0;
  uint64_t sdk_ejections = 0;
  uint64_t sdk_budget_exhausted = 0;
  int64_t virtual_us = 0;
  int64_t leader_after_heal_us = -1;
};

struct SimResult {
  bool ok = true;
  // What failed: a violated invariant, a non-linearizable history, a lost
  // write, or a liveness bound that was missed.
  std::string violation;
  std::vector<std::string> trace_tail;
  SimStats stats;
  uint64_t final_digest = 0;
};

// Runs one seed. Deterministic: the same options give the same result.
SimResult RunSimulation(const SimOptions& options);

}  // namespace bw::sim
