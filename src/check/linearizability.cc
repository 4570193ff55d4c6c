#include "check/linearizability.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "core/assert.h"

namespace bw::check {
namespace {

// Register states and operation arguments are interned per key; 0 is "absent".
using ValueId = int32_t;
constexpr ValueId kAbsent = 0;

uint64_t Mix(uint64_t x) {
  // splitmix64 finalizer.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The values seen on one key. Views point into the History, which outlives the check.
class ValueTable {
 public:
  ValueTable() : names_(1) {}

  ValueId Intern(std::string_view v) {
    auto [it, inserted] = ids_.try_emplace(v, static_cast<ValueId>(names_.size()));
    if (inserted) names_.push_back(v);
    return it->second;
  }
  size_t size() const { return names_.size(); }
  std::string Describe(ValueId id) const {
    return id == kAbsent ? std::string("absent") : QuoteValue(names_[id]);
  }

 private:
  std::unordered_map<std::string_view, ValueId> ids_;
  std::vector<std::string_view> names_;
};

// One operation on one key, reduced to what the register model needs.
struct RegisterOp {
  size_t id = 0;  // Index in History::ops().
  OpKind kind = OpKind::kRead;
  // False for a kUnknown write or CAS: it may take effect late, or never.
  bool known = true;
  ValueId value = kAbsent;     // kWrite, kCas: the value stored.
  ValueId expected = kAbsent;  // kCas.
  ValueId read = kAbsent;      // kRead: what was read (kAbsent for "not found").
  bool cas_ok = false;         // kCas, known.
  int64_t invoke_us = 0;
  int64_t complete_us = kNeverCompletedUs;  // kNeverCompletedUs unless known.
};

// The register's sequential specification. Returns whether `op` may take
// effect when the register holds `state`, and sets `*next` to the state after.
// An unknown CAS that would not apply is refused: taking effect as a no-op is
// the same as never taking effect, which the search already allows.
bool Apply(const RegisterOp& op, ValueId state, ValueId* next) {
  *next = state;
  switch (op.kind) {
    case OpKind::kRead:
      return state == op.read;
    case OpKind::kWrite:
      *next = op.value;
      return true;
    case OpKind::kCas:
      if (state == op.expected) {
        if (op.known && !op.cas_ok) return false;
        *next = op.value;
        return true;
      }
      return op.known && !op.cas_ok;
  }
  return false;
}

// Why `op` cannot take effect on `state`; only for operations Apply refuses.
std::string RefusalReason(const RegisterOp& op, ValueId state, const ValueTable& values) {
  const std::string holds = state == kAbsent ? std::string("the key is absent")
                                             : "the register holds " + values.Describe(state);
  switch (op.kind) {
    case OpKind::kRead:
      if (op.read == kAbsent) return "read found nothing but " + holds;
      return "read " + values.Describe(op.read) + " but " + holds;
    case OpKind::kWrite:
      return "a write always applies";
    case OpKind::kCas:
      if (!op.known) return "could only take effect as a no-op: " + holds;
      if (op.cas_ok) return "CAS applied but " + holds;
      return "CAS did not apply but " + holds + ", its expected value";
  }
  return "";
}

// The set of linearized operations of one key, with an order-independent hash
// kept up to date as bits flip.
class OpSet {
 public:
  explicit OpSet(size_t n) : words_((n + 63) / 64, 0) {}

  void Set(size_t i) {
    BW_ASSERT(!Test(i));
    words_[i / 64] |= uint64_t{1} << (i % 64);
    hash_ ^= Mix(i);
  }
  void Clear(size_t i) {
    BW_ASSERT(Test(i));
    words_[i / 64] &= ~(uint64_t{1} << (i % 64));
    hash_ ^= Mix(i);
  }
  bool Test(size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  uint64_t hash() const { return hash_; }
  const std::vector<uint64_t>& words() const { return words_; }

 private:
  std::vector<uint64_t> words_;
  uint64_t hash_ = 0;
};

// Lowe's memo: the configurations (linearized set, register state) already
// explored. The search from a configuration depends on nothing else, so one
// seen before has already failed. Entries live flat in one arena; an
// open-addressing table of entry numbers indexes them.
class ConfigCache {
 public:
  explicit ConfigCache(size_t set_words) : stride_(set_words + 1), slots_(1024, 0) {}

  // Returns true if (set, state) was not in the cache and has been added.
  bool Insert(const OpSet& set, ValueId state) {
    const uint64_t hash = set.hash() ^ Mix(~static_cast<uint64_t>(state));
    if ((hashes_.size() + 1) * 2 > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == 0) {
        BW_ASSERT_LT(hashes_.size(), size_t{UINT32_MAX});
        slots_[i] = static_cast<uint32_t>(hashes_.size() + 1);
        hashes_.push_back(hash);
        arena_.push_back(static_cast<uint64_t>(state));
        arena_.insert(arena_.end(), set.words().begin(), set.words().end());
        return true;
      }
      if (hashes_[slot - 1] == hash && Equals(slot - 1, set, state)) return false;
    }
  }

 private:
  bool Equals(size_t entry, const OpSet& set, ValueId state) const {
    const uint64_t* e = &arena_[entry * stride_];
    return e[0] == static_cast<uint64_t>(state) &&
           std::equal(set.words().begin(), set.words().end(), e + 1);
  }

  void Grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    const size_t mask = slots.size() - 1;
    for (size_t entry = 0; entry < hashes_.size(); ++entry) {
      size_t i = hashes_[entry] & mask;
      while (slots[i] != 0)
        i = (i + 1) & mask;
      slots[i] = static_cast<uint32_t>(entry + 1);
    }
    slots_ = std::move(slots);
  }

  size_t stride_;                 // Words per arena entry: the state, then the set.
  std::vector<uint64_t> arena_;   // Entry k at [k * stride_, (k + 1) * stride_).
  std::vector<uint64_t> hashes_;  // Entry k's hash.
  // Size a power of two, at most half full. 0 = empty, else entry number + 1.
  std::vector<uint32_t> slots_;
};

struct SearchResult {
  Verdict verdict = Verdict::kOk;
  uint64_t steps = 0;
  // kNotLinearizable: the deepest linearization reached (indexes into the
  // key's ops), and the register state after it.
  std::vector<int32_t> longest;
  ValueId longest_state = kAbsent;
};

// The Wing–Gong search over one key's operations. Calls and returns form a
// doubly linked list in time order (at equal times calls first, so touching
// intervals overlap). Walking from the head, a call may be linearized next as
// long as no return has been passed; placing it lifts its call and return out
// of the list and restarts the walk. Reaching a return means its operation
// should already have been placed: undo the last placement and try the call
// after it. Unknown operations have no return, so reaching the end of the list
// means every known operation is placed.
class WglSearch {
 public:
  explicit WglSearch(const std::vector<RegisterOp>& ops) : ops_(ops) { BuildEventList(); }

  SearchResult Run(uint64_t max_steps) {
    SearchResult out;
    OpSet linearized(ops_.size());
    ConfigCache cache(linearized.words().size());
    struct Frame {
      int32_t call;  // The call node lifted out.
      ValueId state_before;
    };
    std::vector<Frame> stack;
    ValueId state = kAbsent;
    int32_t node = nodes_[kHead].next;
    while (node != kNil) {
      if (out.steps == max_steps) {
        out.verdict = Verdict::kGaveUp;
        return out;
      }
      ++out.steps;
      const Node& n = nodes_[node];
      if (n.is_call) {
        ValueId next_state;
        if (Apply(ops_[n.op], state, &next_state)) {
          linearized.Set(n.op);
          if (cache.Insert(linearized, next_state)) {
            stack.push_back({node, state});
            state = next_state;
            Lift(node);
            if (stack.size() > out.longest.size()) {
              out.longest.clear();
              for (const Frame& f : stack)
                out.longest.push_back(nodes_[f.call].op);
              out.longest_state = state;
            }
            node = nodes_[kHead].next;
            continue;
          }
          linearized.Clear(n.op);
        }
        node = n.next;
      } else {
        if (stack.empty()) {
          out.verdict = Verdict::kNotLinearizable;
          return out;
        }
        const Frame f = stack.back();
        stack.pop_back();
        state = f.state_before;
        linearized.Clear(nodes_[f.call].op);
        Unlift(f.call);
        node = nodes_[f.call].next;
      }
    }
    return out;
  }

 private:
  static constexpr int32_t kNil = -1;
  static constexpr int32_t kHead = 0;

  struct Node {
    int32_t prev = kNil;
    int32_t next = kNil;
    int32_t op = -1;       // Index into ops_.
    int32_t ret = kNil;    // A call's return node; kNil for unknown operations.
    bool is_call = false;  // false: a return (and for the head).
  };

  void BuildEventList() {
    // (time, is_return, op): calls sort before returns at equal times.
    std::vector<std::tuple<int64_t, bool, int32_t>> events;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const RegisterOp& op = ops_[i];
      events.emplace_back(op.invoke_us, false, static_cast<int32_t>(i));
      if (op.known) events.emplace_back(op.complete_us, true, static_cast<int32_t>(i));
    }
    std::sort(events.begin(), events.end());
    nodes_.resize(events.size() + 1);
    std::vector<int32_t> call_node(ops_.size(), kNil);
    for (size_t k = 0; k < events.size(); ++k) {
      const int32_t index = static_cast<int32_t>(k + 1);
      Node& n = nodes_[index];
      n.op = std::get<2>(events[k]);
      n.is_call = !std::get<1>(events[k]);
      n.prev = index - 1;
      n.next = k + 1 < events.size() ? index + 1 : kNil;
      if (n.is_call) {
        call_node[n.op] = index;
      } else {
        BW_ASSERT_NE(call_node[n.op], kNil);
        nodes_[call_node[n.op]].ret = index;
      }
    }
    nodes_[kHead].next = events.empty() ? kNil : 1;
  }

  void Unlink(int32_t i) {
    const Node& n = nodes_[i];
    nodes_[n.prev].next = n.next;
    if (n.next != kNil) nodes_[n.next].prev = n.prev;
  }
  void Relink(int32_t i) {
    const Node& n = nodes_[i];
    nodes_[n.prev].next = i;
    if (n.next != kNil) nodes_[n.next].prev = i;
  }
  // Dancing links: Unlift must undo the most recent Lift still in effect.
  void Lift(int32_t call) {
    Unlink(call);
    if (nodes_[call].ret != kNil) Unlink(nodes_[call].ret);
  }
  void Unlift(int32_t call) {
    if (nodes_[call].ret != kNil) Relink(nodes_[call].ret);
    Relink(call);
  }

  const std::vector<RegisterOp>& ops_;
  std::vector<Node> nodes_;  // nodes_[kHead] is the sentinel.
};

// Reduces the operations on one key to the register model. Drops what cannot
// matter: kFailed operations, kUnknown reads, and kUnknown writes and CASes
// that can never change whether a linearization exists:
//  * an unknown CAS whose expected value nothing writes can never apply;
//  * an unknown write or CAS whose value nobody observes (no read returns it,
//    no CAS expects it), on a key with no known failed CAS: once it took
//    effect, the next operation that takes effect must be a plain write (a
//    read or applied CAS would observe it), so removing it from any
//    linearization leaves a linearization.
// Without this, every subset of never-seen unknown writes is a distinct memo
// configuration and the search grows exponentially in their number.
std::vector<RegisterOp> BuildRegisterOps(const History& history, const std::vector<size_t>& ids,
                                         ValueTable* values) {
  std::vector<RegisterOp> ops;
  for (size_t id : ids) {
    const Operation& op = history.ops()[id];
    if (op.outcome == Outcome::kFailed) continue;
    if (op.outcome == Outcome::kUnknown && op.kind == OpKind::kRead) continue;
    RegisterOp r;
    r.id = id;
    r.kind = op.kind;
    r.known = op.outcome == Outcome::kOk;
    r.invoke_us = op.invoke_us;
    r.complete_us = r.known ? op.complete_us : kNeverCompletedUs;
    switch (op.kind) {
      case OpKind::kRead:
        r.read = op.found ? values->Intern(op.result) : kAbsent;
        break;
      case OpKind::kWrite:
        r.value = values->Intern(op.value);
        break;
      case OpKind::kCas:
        r.value = values->Intern(op.value);
        r.expected = values->Intern(op.expected);
        r.cas_ok = op.cas_ok;
        break;
    }
    ops.push_back(r);
  }

  std::vector<bool> observed(values->size(), false);
  std::vector<bool> written(values->size(), false);
  bool known_failed_cas = false;
  for (const RegisterOp& r : ops) {
    if (r.kind == OpKind::kRead) observed[r.read] = true;
    if (r.kind == OpKind::kCas) observed[r.expected] = true;
    if (r.kind == OpKind::kCas && r.known && !r.cas_ok) known_failed_cas = true;
    if (r.kind == OpKind::kWrite || (r.kind == OpKind::kCas && (!r.known || r.cas_ok))) {
      written[r.value] = true;
    }
  }
  std::erase_if(ops, [&](const RegisterOp& r) {
    if (r.known || r.kind == OpKind::kRead) return false;
    if (r.kind == OpKind::kCas && !written[r.expected]) return true;
    return !known_failed_cas && !observed[r.value];
  });
  return ops;
}

constexpr size_t kMaxPrefixLines = 20;

std::string ExplainViolation(const History& history, std::string_view key,
                             const std::vector<RegisterOp>& ops, const ValueTable& values,
                             const SearchResult& search, LinearizabilityResult* result) {
  std::vector<bool> placed(ops.size(), false);
  for (int32_t i : search.longest) {
    placed[i] = true;
    result->longest_prefix.push_back(ops[i].id);
  }
  // Operations that could be next: invoked no later than the earliest
  // completion among known operations not yet placed.
  int64_t deadline_us = kNeverCompletedUs;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!placed[i] && ops[i].known) deadline_us = std::min(deadline_us, ops[i].complete_us);
  }
  std::string unplaced_lines;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (placed[i] || !ops[i].known || ops[i].invoke_us > deadline_us) continue;
    result->unplaced.push_back(ops[i].id);
    unplaced_lines += "  " + history.Describe(ops[i].id) + ": " +
                      RefusalReason(ops[i], search.longest_state, values);
    if (ops[i].complete_us == deadline_us) {
      unplaced_lines += " (earliest completion left: it blocks every longer prefix)";
    }
    unplaced_lines += "\n";
  }

  std::string out = "key " + QuoteValue(key) + " is not linearizable (" +
                    std::to_string(ops.size()) + " operations on it may have taken effect).\n";
  out += "Longest linearizable prefix: " + std::to_string(search.longest.size()) + " operations\n";
  size_t first = 0;
  if (search.longest.size() > kMaxPrefixLines) {
    first = search.longest.size() - kMaxPrefixLines;
    out += "  ... " + std::to_string(first) + " earlier operations\n";
  }
  for (size_t k = first; k < search.longest.size(); ++k) {
    out += "  " + history.Describe(ops[search.longest[k]].id) + "\n";
  }
  out += "Register after the prefix: " + values.Describe(search.longest_state) + "\n";
  out += "Could not be placed next:\n" + unplaced_lines;
  return out;
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kGaveUp:
      return "gave up";
  }
  return "?";
}

LinearizabilityResult CheckLinearizable(const History& history, const CheckOptions& options) {
  std::map<std::string_view, std::vector<size_t>> by_key;
  for (size_t id = 0; id < history.ops().size(); ++id) {
    by_key[history.ops()[id].key].push_back(id);
  }

  LinearizabilityResult result;
  for (const auto& [key, ids] : by_key) {
    ValueTable values;
    const std::vector<RegisterOp> ops = BuildRegisterOps(history, ids, &values);
    const SearchResult search = WglSearch(ops).Run(options.max_steps);
    result.steps += search.steps;
    if (search.verdict == Verdict::kNotLinearizable) {
      result.verdict = Verdict::kNotLinearizable;
      result.key = std::string(key);
      result.longest_prefix.clear();
      result.unplaced.clear();
      result.explanation = ExplainViolation(history, key, ops, values, search, &result);
      return result;
    }
    if (search.verdict == Verdict::kGaveUp && result.verdict == Verdict::kOk) {
      result.verdict = Verdict::kGaveUp;
      result.key = std::string(key);
      result.explanation = "gave up on key " + QuoteValue(key) + " after " +
                           std::to_string(options.max_steps) + " search steps (" +
                           std::to_string(ops.size()) + " operations on it); raise max_steps.\n";
    }
  }
  return result;
}

}  // namespace bw::check
