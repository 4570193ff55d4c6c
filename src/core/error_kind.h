// What kind of failure a Status is, for code that must react to the kind and
// not to the words: carried as a payload on the absl::Status, so a message
// can say anything and be reworded freely. The layer that knows what
// happened tags the status (raft: no leader; node: stopped, leader changed);
// the etcd API maps kinds to etcd's errors in one table
// (member::EtcdErrorFor). Codes keep their retry meaning; the kind refines it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "core/status.h"

namespace bw::core {

enum class ErrorKind : uint8_t {
  kNoLeader = 1,   // no leader is known: retry after an election
  kLeaderChanged,  // the leader changed under the request: retry
  kStopped,        // the member stopped (halted, removed or shutting down)
  kNoSpace,        // the NOSPACE alarm: writes refused until space is freed
  // Raft refused a configuration change because the last one is not yet
  // applied: retry after it is.
  kConfChangePending,
  // The request's own answer, already in the API's words (kv::etcd_errors):
  // a refusal by the state machine or a service, passed to the client as
  // it is.
  kAnswer,
  kLast_ = kAnswer,
};

inline constexpr char kErrorKindUrl[] = "bulwark.dev/error-kind";

// `s` with `kind` attached. An OK status stays OK.
inline absl::Status WithKind(absl::Status s, ErrorKind kind) {
  if (!s.ok()) {
    s.SetPayload(kErrorKindUrl, absl::Cord(std::string(1, static_cast<char>(kind))));
  }
  return s;
}

// The kind attached to `s`, if any.
inline std::optional<ErrorKind> KindOf(const absl::Status& s) {
  auto p = s.GetPayload(kErrorKindUrl);  // absl::optional in Debian's Abseil
  if (!p.has_value() || p->size() != 1) return std::nullopt;
  const auto k = static_cast<uint8_t>((*p)[0]);
  if (k < static_cast<uint8_t>(ErrorKind::kNoLeader) ||
      k > static_cast<uint8_t>(ErrorKind::kLast_)) {
    return std::nullopt;
  }
  return static_cast<ErrorKind>(k);
}

}  // namespace bw::core
