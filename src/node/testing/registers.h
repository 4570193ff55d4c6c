// The node's tests drive it with the register machine (kv/kv_state.h):
// these put its calls over Node::Propose and Node::ReadBarrier.
#pragma once

#include <any>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "kv/testing/kv_state.h"
#include "node/node.h"

namespace bw::node::testing {

// NodeOptions::state_machine for the register machine.
inline std::unique_ptr<kv::StateMachine> NewRegisters() {
  return std::make_unique<kv::KvStateMachine>();
}

// The node's register machine.
inline const kv::KvStateMachine& Registers(Node& n) {
  return dynamic_cast<const kv::KvStateMachine&>(n.state_machine());
}

inline void Write(Node& n, kv::KvCommand cmd,
                  std::function<void(absl::StatusOr<kv::KvResult>)> done) {
  const uint64_t id = cmd.request_id;
  n.Propose(id, kv::EncodeKvCommand(cmd), [done = std::move(done)](absl::StatusOr<std::any> r) {
    if (!r.ok()) return done(r.status());
    done(std::any_cast<kv::KvResult>(*r));
  });
}

inline void Read(Node& n, std::string key, bool linearizable,
                 std::function<void(absl::StatusOr<std::optional<std::string>>)> done) {
  n.ReadBarrier(linearizable, [&n, key = std::move(key), done = std::move(done)](absl::Status s) {
    if (!s.ok()) return done(s);
    done(Registers(n).Get(key));
  });
}

}  // namespace bw::node::testing
