// A register machine: registers with put and compare-and-set, an
// incremental digest of the whole state, and snapshots. The node's own tests
// drive it (node/testing/registers.h); members run the MVCC store (mvcc.h).
// Test support: built into the tests only. A client's request is applied only if
// its seq (MakeRequestId) is past the last one applied. Deterministic: the
// same commands in the same order give the same state and digest on every
// replica.
//
// Thread-safety: none; owned by a node's event loop.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/btree_set.h"
#include "core/status.h"
#include "kv/state_machine.h"

namespace bw::kv {

enum class KvOp : uint8_t { kPut = 1, kCas = 2 };

struct KvCommand {
  KvOp op = KvOp::kPut;
  // See MakeRequestId; also lets the proposer match the applied entry to
  // the waiting caller.
  uint64_t request_id = 0;
  std::string key;
  std::string value;
  std::string expected;  // kCas: applies only if the key holds exactly this
};

struct KvResult {
  uint64_t request_id = 0;
  bool applied = true;     // false for a CAS whose comparison failed
  bool duplicate = false;  // an earlier copy of this request was applied
};

std::string EncodeKvCommand(const KvCommand& cmd);
[[nodiscard]] absl::StatusOr<KvCommand> DecodeKvCommand(std::string_view data);

class KvStateMachine final : public StateMachine {
 public:
  // `track_requests` keeps the id of every applied request (the simulator's
  // "no acknowledged write lost" check); off in production.
  explicit KvStateMachine(bool track_requests = false) : track_requests_(track_requests) {}

  KvResult Apply(const KvCommand& cmd);
  // StateMachine: decodes a KvCommand and applies it; the result is a KvResult.
  using StateMachine::ApplyEntry;
  Applied ApplyEntry(LogIndex index, int64_t time_us, std::string_view data) override;
  std::optional<std::string> Get(const std::string& key) const;
  // Order-independent hash of the whole state (keys, values, tracked ids).
  uint64_t digest() const override { return digest_; }
  size_t size() const { return data_.size(); }
  bool WasApplied(uint64_t request_id) const { return requests_.count(request_id) > 0; }

  std::string Serialize() const override;
  [[nodiscard]] absl::Status Restore(std::string_view snapshot) override;

 private:
  void Set(const std::string& key, std::string value);

  bool track_requests_;
  std::map<std::string, std::string> data_;
  // Per client, the seq of its last applied request.
  std::map<uint64_t, uint64_t> last_seq_;
  absl::btree_set<uint64_t> requests_;
  uint64_t digest_ = 0;
};

}  // namespace bw::kv
