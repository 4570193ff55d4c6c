// Every bound in bulwark, in one place. Names carry their units. The
// static_asserts at the bottom relate limits that depend on one another.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bw::limits {

// --- Raft core ---
// Default ticks (a tick is `tick_ms` of driver time; see raft::Config).
inline constexpr uint32_t kHeartbeatTicksDefault = 1;
inline constexpr uint32_t kElectionTicksDefault = 10;
// Bytes of entries in one append message.
inline constexpr size_t kMaxAppendBytesDefault = 1 << 20;
// Append messages in flight to one follower before the leader waits for acks.
inline constexpr size_t kMaxInflightMessagesDefault = 256;
// Bytes of entries in flight to one follower.
inline constexpr size_t kMaxInflightBytesDefault = 32 << 20;
// Bytes of proposed-but-uncommitted entries on the leader; past this a
// proposal is refused with RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxUncommittedBytesDefault = 64 << 20;
// Bytes of committed entries handed to the application in one Ready.
inline constexpr size_t kMaxApplyBytesDefault = 16 << 20;
// Bytes of recent log entries a member keeps in memory once they are
// applied and durable (older ones are read back from the WAL).
inline constexpr size_t kLogCacheBytesDefault = 64 << 20;
// Bytes of snapshot data in one InstallSnapshot chunk.
inline constexpr size_t kSnapshotChunkBytesDefault = 512 << 10;
// Read-index requests waiting on one leader.
inline constexpr size_t kMaxPendingReadsDefault = 4096;
// Proposals a follower forwards to the leader per Ready (bounded by the
// messages a follower queues).
inline constexpr size_t kMaxForwardedProposals = 4096;

// --- Wire ---
inline constexpr size_t kMaxMessageBytes = 64 << 20;
inline constexpr size_t kMaxEntriesPerMessage = 1 << 16;

// --- Simulator ---
inline constexpr uint32_t kMaxSimNodes = 9;
inline constexpr uint32_t kMaxSimClients = 64;
// Once clients stop, replicas must converge within this much simulated time.
inline constexpr int64_t kSimConvergeUs = 30'000'000;
// Search steps the linearizability check may take per key in a simulated run.
inline constexpr uint64_t kSimLinearizabilitySteps = 20'000'000;
// More events than this waiting in the simulator is a message storm.
inline constexpr size_t kMaxSimPendingEvents = 1'000'000;

static_assert(kSnapshotChunkBytesDefault <= kMaxMessageBytes / 2);
static_assert(kMaxAppendBytesDefault <= kMaxMessageBytes / 2);
static_assert(kMaxInflightBytesDefault >= kMaxAppendBytesDefault);
static_assert(kHeartbeatTicksDefault < kElectionTicksDefault);

}  // namespace bw::limits
