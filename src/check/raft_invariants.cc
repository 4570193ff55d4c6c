#include "check/raft_invariants.h"

#include <algorithm>
#include <string>

namespace bw::check {

namespace {
std::string S(uint64_t v) {
  return std::to_string(v);
}
}  // namespace

void RaftInvariants::Fail(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

uint64_t RaftInvariants::Chain(uint64_t prev, const EntryObservation& e) {
  uint64_t h = prev ^ (e.term * 0x9E3779B97F4A7C15ULL) ^ (e.data_hash + 0x632BE59BD9B4E019ULL);
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 29;
  return h + e.index;
}

void RaftInvariants::OnLeader(uint64_t node, uint64_t term) {
  auto [it, inserted] = leader_of_term_.emplace(term, node);
  if (!inserted && it->second != node) {
    Fail("election safety: nodes " + S(it->second) + " and " + S(node) +
         " were both leader in term " + S(term));
  }
}

void RaftInvariants::OnLogAppend(uint64_t node, const std::vector<EntryObservation>& entries) {
  NodeLog& log = logs_[node];
  if (log.chain.empty()) {
    log.chain.push_back(0);  // empty log: index 0 chains to 0
    log.terms.push_back(0);
  }
  for (const EntryObservation& e : entries) {
    if (e.index <= log.base_index) continue;
    uint64_t pos = e.index - log.base_index;
    if (pos > log.chain.size()) {
      Fail("log: node " + S(node) + " appended index " + S(e.index) + " past its end " +
           S(log.base_index + log.chain.size() - 1));
      return;
    }
    // (A node may hold a stale, uncommitted entry where another one was
    // committed; it only matters if it commits or applies it, which
    // OnDurableCommit and OnApplied check.)
    log.chain.resize(pos);
    log.terms.resize(pos);
    std::optional<uint64_t> prev = log.chain[pos - 1];
    std::optional<uint64_t> mine;
    if (prev.has_value()) mine = Chain(*prev, e);
    auto key = std::make_pair(e.index, e.term);
    auto it = chains_.find(key);
    if (it == chains_.end()) {
      if (mine.has_value()) chains_.emplace(key, *mine);
    } else if (mine.has_value() && *mine != it->second) {
      Fail("log matching: node " + S(node) + " holds an entry at index " + S(e.index) + " term " +
           S(e.term) + " whose log prefix differs from another node's");
    } else if (!mine.has_value()) {
      mine = it->second;  // adopt the known chain after a snapshot
    }
    log.chain.push_back(mine);
    log.terms.push_back(e.term);
  }
}

void RaftInvariants::OnLogReset(uint64_t node, uint64_t index, uint64_t term) {
  NodeLog& log = logs_[node];
  log.base_index = index;
  log.chain.clear();
  log.terms.assign(1, term);
  if (index == 0) {
    log.chain.push_back(0);
    return;
  }
  auto it = chains_.find({index, term});
  log.chain.push_back(it == chains_.end() ? std::nullopt : std::optional<uint64_t>(it->second));
}

void RaftInvariants::OnDurableCommit(uint64_t node, uint64_t commit) {
  uint64_t& last = durable_commit_[node];
  if (commit < last) {
    Fail("commit index: node " + S(node) + " persisted commit " + S(commit) + " after " + S(last));
    return;
  }
  last = commit;
  RecordCommitted(node, commit);
}

void RaftInvariants::OnCommitWritten(uint64_t node, uint64_t commit) {
  RecordCommitted(node, commit);
}

void RaftInvariants::RecordCommitted(uint64_t node, uint64_t commit) {
  // Record what this node says is committed, from its own durable log.
  uint64_t& seen = claimed_commit_[node];
  const NodeLog& log = logs_[node];
  for (uint64_t i = std::max(seen, log.base_index) + 1; i <= commit; ++i) {
    uint64_t pos = i - log.base_index;
    if (pos >= log.terms.size()) break;
    auto [it, inserted] = committed_.emplace(i, log.terms[pos]);
    if (!inserted && it->second != log.terms[pos]) {
      Fail("state machine safety: node " + S(node) + " committed term " + S(log.terms[pos]) +
           " at index " + S(i) + " where term " + S(it->second) + " was committed");
      return;
    }
  }
  seen = std::max(seen, commit);
}

void RaftInvariants::OnApplied(uint64_t node, const EntryObservation& e, uint64_t state_digest) {
  auto [it, inserted] = applied_.emplace(e.index, Applied{e.term, e.data_hash, state_digest});
  if (inserted) return;
  const Applied& a = it->second;
  if (a.term != e.term || a.data_hash != e.data_hash) {
    Fail("state machine safety: node " + S(node) + " applied a different entry at index " +
         S(e.index) + " (term " + S(e.term) + " vs " + S(a.term) + ")");
  } else if (a.digest != state_digest) {
    Fail("state divergence: node " + S(node) + " reached a different state digest at index " +
         S(e.index));
  }
}

void RaftInvariants::OnSnapshotApplied(uint64_t node, uint64_t index, uint64_t digest) {
  auto it = applied_.find(index);
  if (it != applied_.end() && it->second.digest != digest) {
    Fail("snapshot: node " + S(node) + " installed a snapshot at index " + S(index) +
         " whose state differs from what others applied there");
  }
}

void RaftInvariants::OnBecameLeader(uint64_t node, uint64_t term,
                                    const std::function<std::optional<uint64_t>(uint64_t)>& term_at,
                                    uint64_t log_offset) {
  OnLeader(node, term);
  for (const auto& [index, t] : committed_) {
    if (index <= log_offset) continue;
    std::optional<uint64_t> mine = term_at(index);
    if (!mine.has_value() || *mine != t) {
      Fail("leader completeness: node " + S(node) + " became leader of term " + S(term) +
           " without the entry committed at index " + S(index) + " (term " + S(t) + ")");
      return;
    }
  }
  for (const auto& [index, a] : applied_) {
    if (index <= log_offset) continue;
    std::optional<uint64_t> t = term_at(index);
    if (!t.has_value() || *t != a.term) {
      Fail("leader completeness: node " + S(node) + " became leader of term " + S(term) +
           " without the entry applied at index " + S(index) + " (term " + S(a.term) + ")");
      return;
    }
  }
}

}  // namespace bw::check
