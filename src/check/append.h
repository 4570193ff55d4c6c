// The multi-key transaction checker (append workload): each write txn
// appends its id to the list held by each of its keys, atomically (a
// compare on every key's mod revision, then a put of each); each read txn
// reads several lists in one snapshot. From the final lists and every read,
// it decides whether the txns were atomic, applied at most once, not lost,
// and serializable — a small relative of Jepsen's Elle for list-append.
//
// Pure: the chaos txn workload and the unit tests feed it observations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "check/history.h"
#include "core/status.h"

namespace bw::check {

struct AppendTxn {
  uint64_t id = 0;
  std::vector<std::string> keys;  // the keys it appends `id` to
  // kOk: acknowledged; kFailed: known not applied; kUnknown: may have been.
  Outcome outcome = Outcome::kUnknown;
};

// One acknowledged read txn: the list it saw at each key it read.
using ListRead = std::map<std::string, std::vector<uint64_t>>;

struct AppendSummary {
  uint64_t appends = 0;  // ids found in the final lists
  uint64_t unknown_applied = 0;
  uint64_t unknown_absent = 0;
  uint64_t reads = 0;
  uint64_t order_edges = 0;  // precedence edges in the serialization graph
};

// OK, or FAILED_PRECONDITION with the first anomaly: an id twice in a list
// (applied twice); an id in a list its txn did not write, or from a txn
// known to have failed; an acknowledged txn missing from a list (lost); a
// txn in some of its lists but not all (not atomic); a read that is not a
// prefix of the final list (it saw a state that never became history); a
// read that saw a txn on one key but not on another key it also read
// (fractured); or a cycle in the order the lists put the txns in (not
// serializable).
[[nodiscard]] absl::Status CheckAppends(const std::vector<AppendTxn>& txns,
                                        const std::vector<ListRead>& reads,
                                        const std::map<std::string, std::vector<uint64_t>>& lists,
                                        AppendSummary* summary);

}  // namespace bw::check
