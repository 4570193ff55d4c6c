// The nouns of the Raft paper and of the store, as distinct types.
#pragma once

#include "core/strong_id.h"

namespace bw {

using Term = core::StrongInt<struct TermTag>;
using LogIndex = core::StrongInt<struct LogIndexTag>;
using NodeId = core::StrongInt<struct NodeIdTag>;
using Revision = core::StrongInt<struct RevisionTag, int64_t>;
using RequestId = core::StrongInt<struct RequestIdTag>;

// NodeId 0 means "nobody" (no vote cast, no known leader).
inline constexpr NodeId kNoNode{0};

}  // namespace bw
