// Linearizability checking of key-value histories: the Wing–Gong search with
// Lowe's memoization ("Testing for linearizability", 2017), the algorithm
// behind Porcupine and Knossos' WGL mode.
//
// Model: every key is an independent register, absent until first written;
// reads, writes and compare-and-swap (see OpKind). Linearizability is
// compositional, so each key is checked on its own (in key order) and the
// history is linearizable iff every key is.
//
// Real-time order: A precedes B only if A.complete_us < B.invoke_us strictly;
// operations whose intervals touch may take effect in either order.
//
// Outcomes: kFailed operations are dropped (they did not happen). kUnknown
// reads are dropped (they constrain nothing). A kUnknown write or CAS may take
// effect at any point after its invocation, or never; if it takes effect, a
// CAS applies exactly when the register holds its expected value.
//
// Pure code: no I/O, threads or clocks. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check/history.h"

namespace bw::check {

struct CheckOptions {
  // Search steps allowed per key before the checker gives up on that key. A
  // step is one attempt to place or to take back one operation. The memo cache
  // grows by at most one entry per step, about (ops_on_key / 64 + 3) * 8 bytes.
  uint64_t max_steps = 2'000'000;
};

enum class Verdict {
  kOk,               // Every key has a linearization.
  kNotLinearizable,  // Some key has none; `key` names the first such key.
  kGaveUp,           // No key failed, but `key` exhausted max_steps undecided.
};

struct LinearizabilityResult {
  Verdict verdict = Verdict::kOk;
  // kNotLinearizable: the first key (in key order) that has no linearization.
  // kGaveUp: the first key whose search ran out of steps.
  std::string key;
  // kNotLinearizable: the longest order of operations on `key` the search
  // could place, as History ids, and the operations with a known outcome that
  // could not be placed right after it (each one contradicts the register, and
  // one of them had to be placed before its completion).
  std::vector<size_t> longest_prefix;
  std::vector<size_t> unplaced;
  // Multi-line human-readable report; empty when kOk.
  std::string explanation;
  // Steps taken over all keys checked.
  uint64_t steps = 0;

  bool ok() const { return verdict == Verdict::kOk; }
};

std::string_view VerdictName(Verdict verdict);

// Decides whether `history` is linearizable. A key whose search exceeds
// options.max_steps does not stop the others: a violation on any key is still
// reported as kNotLinearizable.
LinearizabilityResult CheckLinearizable(const History& history, const CheckOptions& options = {});

}  // namespace bw::check
