// The record of a run against the store: every client operation, when it was
// invoked and completed, and what it returned. The linearizability checker
// (check/linearizability.h) judges a History; nothing here interprets one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace bw::check {

enum class OpKind {
  kRead,   // Get(key).
  kWrite,  // Put(key, value).
  kCas,    // Applies only if the key is present and holds `expected`; then sets `value`.
};

enum class Outcome {
  kOk,       // Completed; the result fields hold what the store answered.
  kFailed,   // Definitely not applied (the store refused before doing anything).
  kUnknown,  // May or may not have been applied, e.g. the client's deadline passed.
};

// complete_us of an operation that never completed.
inline constexpr int64_t kNeverCompletedUs = std::numeric_limits<int64_t>::max();

struct Operation {
  uint64_t client = 0;
  OpKind kind = OpKind::kRead;
  std::string key;
  std::string value;     // kWrite: the value written. kCas: the new value.
  std::string expected;  // kCas: the value the key must hold for the swap to apply.
  int64_t invoke_us = 0;
  // Invariant: invoke_us <= complete_us. kNeverCompletedUs until completed.
  int64_t complete_us = kNeverCompletedUs;
  Outcome outcome = Outcome::kUnknown;
  std::string result;   // kRead, kOk and found: the value read.
  bool found = false;   // kRead, kOk: the key was present.
  bool cas_ok = false;  // kCas, kOk: the swap applied.
};

// An append-only log of operations. Ids are dense indexes into ops(), in the
// order Invoke was called. Not thread-safe: one owner records (the simulator,
// or a test driver that serializes its clients' callbacks).
class History {
 public:
  // The unit Describe prints after times ("us" unless the recorder says
  // otherwise; the simulator records finer, strictly increasing stamps).
  void set_time_unit(std::string unit) { time_unit_ = std::move(unit); }

  // Records the start of an operation and returns its id. `value` matters for
  // kWrite and kCas, `expected` for kCas only. Until Complete is called the
  // operation counts as kUnknown and never completed.
  size_t Invoke(uint64_t client, OpKind kind, std::string key, std::string value,
                std::string expected, int64_t invoke_us);

  // Records how operation `id` ended. Each operation completes at most once,
  // at or after its invocation. The result fields matter only for kOk: `result`
  // and `found` for a read, `cas_ok` for a CAS. A kUnknown operation keeps
  // `complete_us` for reports only; the checker lets its effect land at any
  // time after invocation, or never.
  void Complete(size_t id, int64_t complete_us, Outcome outcome, std::string result = {},
                bool found = false, bool cas_ok = false);

  const std::vector<Operation>& ops() const { return ops_; }
  size_t size() const { return ops_.size(); }

  // One line for failure reports, e.g. `#7 client 2 read "k" -> "v" [10us, 25us] ok`.
  std::string Describe(size_t id) const;

 private:
  std::vector<Operation> ops_;
  std::string time_unit_ = "us";
};

std::string_view OpKindName(OpKind kind);
std::string_view OutcomeName(Outcome outcome);

// `s` in double quotes with C escapes, so empty and binary values stay visible.
std::string QuoteValue(std::string_view s);

}  // namespace bw::check
