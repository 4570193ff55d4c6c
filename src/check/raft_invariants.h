// Raft's safety properties, checked incrementally as a cluster runs. Pure:
// it sees plain observations (indexes, terms, hashes), not the core itself,
// so it serves the simulator, the chaos harness and tests alike.
//
//   - Election safety: at most one leader per term.
//   - Log matching: two logs holding an entry with the same index and term
//     hold identical entries up to it (checked by a hash chain per node).
//   - Leader completeness: a new leader's log holds every entry applied
//     anywhere before it took office.
//   - State machine safety: every node applies the same entry at an index,
//     and reaches the same state digest there.
//   - Commit index monotonicity: a node's durable commit index never falls.
//
// The first violation is kept with a description; later ones are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include <vector>
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"

namespace bw::check {

struct EntryObservation {
  uint64_t index;
  uint64_t term;
  uint64_t data_hash;
};

class RaftInvariants {
 public:
  void OnLeader(uint64_t node, uint64_t term);
  // Entries a node made durable, in order (a lower index overwrites).
  void OnLogAppend(uint64_t node, const std::vector<EntryObservation>& entries);
  // The node's log now starts after a snapshot at (index, term); what it
  // held before is gone.
  void OnLogReset(uint64_t node, uint64_t index, uint64_t term);
  // A node's durable hard state commit index, across restarts.
  void OnDurableCommit(uint64_t node, uint64_t commit);
  // A commit index the node wrote without syncing it (Ready::MustSync): it
  // may be lost in a crash, so it is not held to the durable order, but the
  // node has acted on it — what it covers counts as committed.
  void OnCommitWritten(uint64_t node, uint64_t commit);
  void OnApplied(uint64_t node, const EntryObservation& e, uint64_t state_digest);
  // A snapshot installed at `index` with `digest`: it must match what
  // others reached at that index.
  void OnSnapshotApplied(uint64_t node, uint64_t index, uint64_t digest);
  // A node became leader of `term`; `term_at(i)` gives its log's term at i,
  // or nullopt where it has compacted or has no entry.
  void OnBecameLeader(uint64_t node, uint64_t term,
                      const std::function<std::optional<uint64_t>(uint64_t)>& term_at,
                      uint64_t log_offset);

  bool ok() const { return violation_.empty(); }
  const std::string& violation() const { return violation_; }
  uint64_t applied_entries() const { return applied_.size(); }

 private:
  void Fail(std::string what);
  void RecordCommitted(uint64_t node, uint64_t commit);
  static uint64_t Chain(uint64_t prev, const EntryObservation& e);

  std::string violation_;
  std::unordered_map<uint64_t, uint64_t> leader_of_term_;
  struct NodeLog {
    uint64_t base_index = 0;  // chain_[0] is the chain value at base_index
    std::vector<std::optional<uint64_t>> chain;
    std::vector<uint64_t> terms;  // parallel to chain; terms[0] unused
  };
  // Index -> term of every entry some node durably recorded as committed.
  absl::btree_map<uint64_t, uint64_t> committed_;
  std::map<uint64_t, NodeLog> logs_;
  // (index, term) -> chain value, across all nodes.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint64_t> chains_;
  struct Applied {
    uint64_t term;
    uint64_t data_hash;
    uint64_t digest;
  };
  absl::btree_map<uint64_t, Applied> applied_;
  std::map<uint64_t, uint64_t> durable_commit_;
  // The highest commit each node has claimed (durable or not), up to which
  // committed_ holds its log's terms.
  std::map<uint64_t, uint64_t> claimed_commit_;
};

}  // namespace bw::check
