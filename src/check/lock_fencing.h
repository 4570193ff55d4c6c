// The lock checker: judges the writes that lock holders made to a resource
// guarded by the etcd lock recipe with fencing. A holder's token is the
// create revision of its lock key; each guarded write is a txn that succeeds
// only while that key still exists with that revision (etcd's IsOwner
// compare). Leases expire under pauses and partitions, so two clients can
// each *believe* they hold the lock; what must never happen is that the
// resource accepts a write from an older holder after a newer one wrote.
//
// Pure: the chaos lock workload and the unit tests feed it observations.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace bw::check {

// A guarded write the server acknowledged as applied.
struct FencedWrite {
  uint64_t client = 0;
  int64_t token = 0;     // the create revision of the writer's lock key
  int64_t revision = 0;  // the revision the write was applied at
  int64_t invoke_us = 0;
  int64_t complete_us = 0;
};

// OK, or FAILED_PRECONDITION naming the first pair of writes that shows two
// holders at once: in revision order a token smaller than one already seen
// (an older holder wrote after a newer one), one token used by two clients,
// two writes at one revision, or a write that completed before another was
// invoked but was applied after it (the writes are not linearizable).
[[nodiscard]] absl::Status CheckLockFencing(std::vector<FencedWrite> writes);

}  // namespace bw::check
