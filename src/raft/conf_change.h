// Applying configuration changes to a ConfState. Pure.
#pragma once

#include <ostream>
#include <string>

#include "core/status.h"
#include "raft/types.h"

namespace bw::raft {

// The configuration that results from applying `cc` to `cur`, or
// FAILED_PRECONDITION / INVALID_ARGUMENT when the change is not allowed
// (leaving a joint configuration that is not joint, changing a joint one,
// removing every voter, more than one voter changed without joint consensus).
[[nodiscard]] absl::StatusOr<ConfState> ApplyConfChangeTo(const ConfState& cur,
                                                          const ConfChange& cc);

// "voters=(1 2 3) outgoing=() learners=(4) learners_next=() auto_leave=0".
std::string ConfStateString(const ConfState& cs);
inline void PrintTo(const ConfState& cs, std::ostream* os) {
  *os << ConfStateString(cs);
}

}  // namespace bw::raft
