// The exactly-once checker: given every keyed request a workload sent, every
// answer it got, and what the store's history says was applied, decides
// whether each request took effect at most once and every answer to a key
// was the first one. Pure: the simulator, the real-process tests and unit
// tests feed it plain observations.
//
// Each request writes a value no other request writes, so how often it was
// applied is counted from the data itself (the versions holding its value),
// not from anything the server says about itself.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace bw::check {

struct KeyedRequest {
  std::string key;    // the idempotency key
  std::string value;  // what this request writes, and nothing else does
  // A different request sent under a key already answered: it must be
  // refused and never applied.
  bool reuse = false;
  // The client took an answer (and moved on).
  bool answered = false;
  // Every answer that came back, first and replayed, late ones included:
  // the response's bytes and the revision it names.
  std::vector<std::pair<std::string, int64_t>> answers;
};

// For each value written, the revisions at which a version holding it was
// written (from the store's full history).
using AppliedValues = std::map<std::string, std::vector<int64_t>>;

// OK, or FAILED_PRECONDITION naming the first request that was applied twice,
// answered but never applied, answered differently, answered with a revision
// other than the one it was applied at, or applied under a reused key.
[[nodiscard]] absl::Status CheckExactlyOnce(const std::vector<KeyedRequest>& requests,
                                            const AppliedValues& applied);

}  // namespace bw::check
