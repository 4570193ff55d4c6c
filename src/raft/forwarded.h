// The proposals a leader placed for followers that forwarded them, kept so
// that a copy of a forwarded proposal is never placed twice.
//
// A follower forwards a proposal to the leader once (Raft::ForwardToLeader)
// and never again, but the network under Raft may deliver a message twice
// (env::Network promises nothing about copies, and the simulator makes
// them). Raft itself shrugs off copies of every other message; a copy of a
// proposal, though, would be a second entry, and a request that is not
// idempotent (a permission revoked, then an old grant applied again) would
// take effect twice. The dissertation (§6.3) leaves duplicates to client
// sessions in the state machine; bulwark has those for keyed requests
// (idempotency keys) and this for the copies the network makes.
//
// Bounded: the last `capacity` forwarded entries. A copy is recognised by
// its sender and a checksum of its bytes, then confirmed against the log at
// the remembered index: the same term there means the same entry (Raft's
// log matching); a different term — the original was cut from the log by a
// later leader — means the copy is placed: it is then the only one. An
// original already compacted out of the log counts as placed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "core/types.h"
#include "raft/types.h"

namespace bw::raft {

class RaftLog;

class ForwardedWindow {
 public:
  explicit ForwardedWindow(size_t capacity) : capacity_(capacity) {}

  // What identifies a forwarded entry: its sender and a checksum of it.
  struct Key {
    uint64_t from = 0;
    uint64_t bytes = 0;
    uint32_t crc = 0;
    uint8_t type = 0;
    bool operator==(const Key& o) const {
      return from == o.from && bytes == o.bytes && crc == o.crc && type == o.type;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.from, k.bytes, k.crc, k.type);
    }
  };
  static Key KeyOf(NodeId from, const Entry& e);

  // Whether the entry forwarded as `key` is a copy of an entry this leader
  // already placed in `log`.
  bool IsCopy(const Key& key, const RaftLog& log) const;
  // Remembers the entry forwarded as `key` as placed at `index` in `term`.
  void Remember(const Key& key, LogIndex index, Term term);
  size_t size() const { return order_.size(); }

 private:
  size_t capacity_;
  struct Placed {
    LogIndex index;
    Term term;
  };
  absl::flat_hash_map<Key, Placed> placed_;
  std::deque<Key> order_;
};

}  // namespace bw::raft
