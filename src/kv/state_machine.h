// The interface between a node and the replicated state machine it drives:
// the etcd MVCC store (mvcc.h) in every member, or the register machine of
// the node's tests (kv_state.h). Apply must be deterministic: the same entries in the same order
// give the same state and digest on every replica.
//
// Thread-safety: none; owned by a node's event loop.
#pragma once

#include <any>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"

namespace bw::kv {

// A request id, as clients of the simulator and the tests make them:
// (client << kRequestSeqBits) | seq, where each client numbers its requests
// 1, 2, 3, ... Id 0: the member assigns one.
inline constexpr int kRequestSeqBits = 40;
inline constexpr uint64_t MakeRequestId(uint64_t client, uint64_t seq) {
  return (client << kRequestSeqBits) | seq;
}

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  struct Applied {
    // The proposer's id for the entry (0: nobody waits for it).
    uint64_t request_id = 0;
    // Handed to the waiting proposer, if it is on this node.
    std::any result;
  };
  // Applies the data of one committed normal entry. Data that does not
  // decode is corruption, not bad input (every proposal was encoded by a
  // node): implementations assert.
  // `time_us` is the entry's stamp (raft::Entry::time_us: the leader's
  // cluster time when it appended the entry; 0 when unstamped). A machine
  // that decides anything by time decides it by this, never by a clock.
  virtual Applied ApplyEntry(LogIndex index, int64_t time_us, std::string_view data) = 0;
  Applied ApplyEntry(LogIndex index, std::string_view data) { return ApplyEntry(index, 0, data); }
  // The latest time the state has seen (0 for a machine without time): the
  // member's cluster clock starts no lower after a restore.
  virtual int64_t log_time_us() const { return 0; }
  // A hash of the whole state, equal on replicas at equal applied index.
  virtual uint64_t digest() const = 0;
  virtual std::string Serialize() const = 0;
  [[nodiscard]] virtual absl::Status Restore(std::string_view snapshot) = 0;
};

}  // namespace bw::kv
