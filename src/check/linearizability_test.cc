// Proves that CheckLinearizable accepts exactly the linearizable key-value
// histories. Hand-written histories pin each rule: real-time order with
// touching intervals, stale and lost reads, values never written, CAS, the
// three outcomes, the step budget, and per-key independence. Property tests
// simulate a real register under random concurrent clients (each operation
// takes effect at a random point inside its interval, or, if its outcome is
// unknown, later or never) and require "ok"; then they plant one provably
// impossible read (a value written only after the read completed, or one
// overwritten by a known write before the read began) and require "not
// linearizable". Finally, thousands of tiny random histories are judged both
// by the checker and by an exhaustive search over every permutation of every
// admissible subset of operations; the two must agree on every one.

#include "check/linearizability.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "check/history.h"

namespace bw::check {
namespace {

// --- Building histories by hand ---

size_t Write(History& h, uint64_t client, const std::string& key, const std::string& value,
             int64_t invoke_us, int64_t complete_us, Outcome outcome = Outcome::kOk) {
  const size_t id = h.Invoke(client, OpKind::kWrite, key, value, "", invoke_us);
  h.Complete(id, complete_us, outcome);
  return id;
}

// A write whose client never heard back.
size_t WriteNeverCompleted(History& h, uint64_t client, const std::string& key,
                           const std::string& value, int64_t invoke_us) {
  return h.Invoke(client, OpKind::kWrite, key, value, "", invoke_us);
}

// `result` nullopt: the key was not found.
size_t Read(History& h, uint64_t client, const std::string& key,
            const std::optional<std::string>& result, int64_t invoke_us, int64_t complete_us) {
  const size_t id = h.Invoke(client, OpKind::kRead, key, "", "", invoke_us);
  h.Complete(id, complete_us, Outcome::kOk, result.value_or(""), result.has_value());
  return id;
}

size_t Cas(History& h, uint64_t client, const std::string& key, const std::string& expected,
           const std::string& value, bool applied, int64_t invoke_us, int64_t complete_us,
           Outcome outcome = Outcome::kOk) {
  const size_t id = h.Invoke(client, OpKind::kCas, key, value, expected, invoke_us);
  h.Complete(id, complete_us, outcome, "", false, applied);
  return id;
}

Verdict Check(const History& h) {
  return CheckLinearizable(h).verdict;
}

// --- History ---

TEST(LinearizabilityHistoryTest, UncompletedOperationIsUnknownAndNeverCompletes) {
  History h;
  const size_t id = h.Invoke(4, OpKind::kCas, "k", "new", "old", 10);
  EXPECT_EQ(h.ops()[id].outcome, Outcome::kUnknown);
  EXPECT_EQ(h.ops()[id].complete_us, kNeverCompletedUs);
  EXPECT_EQ(h.Describe(id), "#0 client 4 cas \"k\" \"old\" -> \"new\" [10us, never] unknown");
}

TEST(LinearizabilityHistoryTest, DescribeShowsWhatWasRead) {
  History h;
  const size_t a = Read(h, 1, "k", "v\n", 10, 25);
  const size_t b = Read(h, 2, "k", std::nullopt, 30, 31);
  const size_t c = Cas(h, 3, "k", "x", "y", false, 40, 45);
  EXPECT_EQ(h.Describe(a), "#0 client 1 read \"k\" -> \"v\\n\" [10us, 25us] ok");
  EXPECT_EQ(h.Describe(b), "#1 client 2 read \"k\" -> not found [30us, 31us] ok");
  EXPECT_EQ(h.Describe(c), "#2 client 3 cas \"k\" \"x\" -> \"y\" not applied [40us, 45us] ok");
}

// --- Real-time order and reads ---

TEST(LinearizabilityTest, EmptyHistoryIsLinearizable) {
  EXPECT_EQ(Check(History()), Verdict::kOk);
}

TEST(LinearizabilityTest, SequentialHistoryIsLinearizable) {
  History h;
  Read(h, 1, "k", std::nullopt, 0, 5);
  Write(h, 1, "k", "a", 10, 20);
  Read(h, 2, "k", "a", 30, 40);
  Write(h, 2, "k", "b", 50, 60);
  Read(h, 1, "k", "b", 70, 80);
  const LinearizabilityResult r = CheckLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kOk) << r.explanation;
  EXPECT_TRUE(r.explanation.empty());
}

TEST(LinearizabilityTest, ReadOfMissingKeyAfterCompletedWriteIsCaught) {
  History h;
  Write(h, 1, "k", "a", 0, 10);
  Read(h, 2, "k", std::nullopt, 20, 30);
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, LostWriteIsCaught) {
  // The read begins after b's write completed and no other write follows, yet
  // it returns the older a: the write of b was lost.
  History h;
  const size_t wa = Write(h, 1, "k", "a", 0, 10);
  const size_t wb = Write(h, 2, "k", "b", 20, 30);
  const size_t read = Read(h, 3, "k", "a", 40, 50);
  const LinearizabilityResult r = CheckLinearizable(h);
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.longest_prefix, (std::vector<size_t>{wa, wb}));
  EXPECT_EQ(r.unplaced, (std::vector<size_t>{read}));
  EXPECT_NE(r.explanation.find("Longest linearizable prefix: 2 operations"), std::string::npos)
      << r.explanation;
  EXPECT_NE(r.explanation.find(h.Describe(read)), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("read \"a\" but the register holds \"b\""), std::string::npos)
      << r.explanation;
}

TEST(LinearizabilityTest, ReadOverlappingAWriteMaySeeEitherValue) {
  for (const char* seen : {"a", "b"}) {
    History h;
    Write(h, 1, "k", "a", 0, 10);
    Write(h, 1, "k", "b", 20, 40);
    Read(h, 2, "k", seen, 25, 35);
    EXPECT_EQ(Check(h), Verdict::kOk) << "read saw " << seen;
  }
}

TEST(LinearizabilityTest, ReadsMustNotSeeAWriteUndone) {
  // Both reads overlap the write of b, but once one read has returned b, a
  // read that starts later cannot return a again.
  History h;
  Write(h, 1, "k", "a", 0, 10);
  Write(h, 1, "k", "b", 20, 40);
  Read(h, 2, "k", "b", 21, 25);
  Read(h, 3, "k", "a", 26, 30);
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, IntervalsThatTouchOverlap) {
  // The write completes at 10 and the read is invoked at 10: they overlap,
  // so the read may take effect first.
  History touching;
  Write(touching, 1, "k", "a", 0, 10);
  Read(touching, 2, "k", std::nullopt, 10, 20);
  EXPECT_EQ(Check(touching), Verdict::kOk);

  History apart;
  Write(apart, 1, "k", "a", 0, 10);
  Read(apart, 2, "k", std::nullopt, 11, 20);
  EXPECT_EQ(Check(apart), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, ReadOfValueNeverWrittenIsCaught) {
  History h;
  Write(h, 1, "k", "a", 0, 100);
  Read(h, 2, "k", "z", 10, 20);
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, ReadOfValueWrittenOnlyLaterIsCaught) {
  History h;
  Read(h, 1, "k", "a", 0, 10);
  Write(h, 2, "k", "a", 11, 20);
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
}

// --- CAS ---

TEST(LinearizabilityTest, CasAppliesOnlyWhenThePresentValueMatches) {
  {
    History h;  // Applied on a match, and a later read sees the new value.
    Write(h, 1, "k", "a", 0, 10);
    Cas(h, 2, "k", "a", "b", true, 20, 30);
    Read(h, 3, "k", "b", 40, 50);
    EXPECT_EQ(Check(h), Verdict::kOk);
  }
  {
    History h;  // Reported applied, yet a later read sees the old value.
    Write(h, 1, "k", "a", 0, 10);
    Cas(h, 2, "k", "a", "b", true, 20, 30);
    Read(h, 3, "k", "a", 40, 50);
    EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
  }
  {
    History h;  // Applied although the register held something else.
    Write(h, 1, "k", "a", 0, 10);
    Cas(h, 2, "k", "x", "b", true, 20, 30);
    EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
  }
  {
    History h;  // Applied on a missing key, even with expected "".
    Cas(h, 2, "k", "", "b", true, 0, 10);
    EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
  }
  {
    History h;  // Not applied on a mismatch or a missing key: fine.
    Cas(h, 1, "k", "", "b", false, 0, 10);
    Write(h, 1, "k", "a", 20, 30);
    Cas(h, 2, "k", "x", "b", false, 40, 50);
    Read(h, 3, "k", "a", 60, 70);
    EXPECT_EQ(Check(h), Verdict::kOk);
  }
  {
    History h;  // Not applied although the register held the expected value.
    Write(h, 1, "k", "a", 0, 10);
    Cas(h, 2, "k", "a", "b", false, 20, 30);
    const LinearizabilityResult r = CheckLinearizable(h);
    ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
    EXPECT_NE(r.explanation.find("CAS did not apply"), std::string::npos) << r.explanation;
  }
}

TEST(LinearizabilityTest, ConcurrentCasesLinearizeInSomeOrder) {
  // Two overlapping CASes from a: exactly one may win.
  History one_wins;
  Write(one_wins, 1, "k", "a", 0, 10);
  Cas(one_wins, 2, "k", "a", "b", false, 20, 40);
  Cas(one_wins, 3, "k", "a", "c", true, 20, 40);
  Read(one_wins, 1, "k", "c", 50, 60);
  EXPECT_EQ(Check(one_wins), Verdict::kOk);

  History both_win;
  Write(both_win, 1, "k", "a", 0, 10);
  Cas(both_win, 2, "k", "a", "b", true, 20, 40);
  Cas(both_win, 3, "k", "a", "c", true, 20, 40);
  EXPECT_EQ(Check(both_win), Verdict::kNotLinearizable);
}

// --- Outcomes ---

TEST(LinearizabilityTest, UnknownWriteThatShowsUpLaterIsAccepted) {
  History h;
  Write(h, 1, "k", "a", 0, 10);
  Write(h, 2, "k", "b", 20, 30, Outcome::kUnknown);  // Timed out at 30.
  Read(h, 3, "k", "a", 40, 50);                      // Not applied yet...
  Read(h, 3, "k", "b", 60, 70);                      // ...and then it was.
  EXPECT_EQ(Check(h), Verdict::kOk);
}

TEST(LinearizabilityTest, UnknownWriteTakesEffectOnceAndNotBeforeItsInvocation) {
  History h;
  Write(h, 1, "k", "a", 0, 10);
  WriteNeverCompleted(h, 2, "k", "b", 20);
  Read(h, 3, "k", "b", 40, 50);
  Read(h, 3, "k", "a", 60, 70);  // a is back, but nothing wrote it again.
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);

  History early;
  Read(early, 3, "k", "b", 0, 10);
  WriteNeverCompleted(early, 2, "k", "b", 20);
  EXPECT_EQ(Check(early), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, UnknownWriteThatNeverAppearsIsAccepted) {
  History h;
  Write(h, 1, "k", "a", 0, 10);
  WriteNeverCompleted(h, 2, "k", "b", 20);
  Write(h, 2, "k", "c", 30, 40, Outcome::kUnknown);
  Read(h, 3, "k", "a", 50, 60);
  Read(h, 3, "k", "a", 1000, 1010);
  EXPECT_EQ(Check(h), Verdict::kOk);
}

TEST(LinearizabilityTest, UnknownCasMayHaveAppliedOrNot) {
  for (const char* seen : {"a", "b"}) {
    History h;
    Write(h, 1, "k", "a", 0, 10);
    Cas(h, 2, "k", "a", "b", false, 20, 30, Outcome::kUnknown);
    Read(h, 3, "k", seen, 40, 50);
    EXPECT_EQ(Check(h), Verdict::kOk) << "read saw " << seen;
  }
  // It can only apply if the register held its expected value.
  History h;
  Write(h, 1, "k", "a", 0, 10);
  Cas(h, 2, "k", "x", "b", false, 20, 30, Outcome::kUnknown);
  Read(h, 3, "k", "b", 40, 50);
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, UnknownWriteCanExplainAFailedCas) {
  // The CAS from a failed, which is only possible if the unknown write of x
  // landed first, although nobody ever read x.
  History h;
  Write(h, 1, "k", "a", 0, 10);
  WriteNeverCompleted(h, 2, "k", "x", 20);
  Cas(h, 3, "k", "a", "b", false, 30, 40);
  EXPECT_EQ(Check(h), Verdict::kOk);
}

TEST(LinearizabilityTest, FailedWriteThatAppearsInAReadIsCaught) {
  History h;
  Write(h, 1, "k", "a", 0, 10);
  Write(h, 2, "k", "b", 20, 30, Outcome::kFailed);
  Read(h, 3, "k", "b", 40, 50);
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, FailedAndUnknownReadsConstrainNothing) {
  History h;
  Write(h, 1, "k", "a", 0, 10);
  const size_t failed = h.Invoke(2, OpKind::kRead, "k", "", "", 20);
  h.Complete(failed, 30, Outcome::kFailed, "zzz", true);
  const size_t unknown = h.Invoke(2, OpKind::kRead, "k", "", "", 40);
  h.Complete(unknown, 50, Outcome::kUnknown, "zzz", true);
  h.Invoke(2, OpKind::kRead, "k", "", "", 60);  // Never completed.
  EXPECT_EQ(Check(h), Verdict::kOk);
}

// --- Budget and keys ---

// `writers` writes of distinct values, all concurrent, then a read that
// cannot be satisfied: the search must try orders of the writes before it
// can say no.
History ManyConcurrentWritesThenImpossibleRead(int writers) {
  History h;
  for (int i = 0; i < writers; ++i)
    Write(h, i, "k", "v" + std::to_string(i), 0, 100);
  Read(h, 99, "k", "v0", 200, 210);
  Read(h, 99, "k", "never written", 220, 230);
  return h;
}

TEST(LinearizabilityTest, ExhaustedBudgetGivesUp) {
  const History h = ManyConcurrentWritesThenImpossibleRead(16);
  const LinearizabilityResult r = CheckLinearizable(h, CheckOptions{.max_steps = 10'000});
  EXPECT_EQ(r.verdict, Verdict::kGaveUp);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.steps, 10'000u);
  EXPECT_NE(r.explanation.find("gave up"), std::string::npos) << r.explanation;

  const History small = ManyConcurrentWritesThenImpossibleRead(6);
  EXPECT_EQ(CheckLinearizable(small, CheckOptions{.max_steps = 10'000}).verdict,
            Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, KeysAreIndependentRegisters) {
  {
    History h;  // One register would forbid this; two allow it.
    Write(h, 1, "x", "a", 0, 10);
    Write(h, 1, "y", "b", 20, 30);
    Read(h, 2, "x", "a", 40, 50);
    Read(h, 2, "y", std::nullopt, 5, 15);
    EXPECT_EQ(Check(h), Verdict::kOk);
  }
  {
    History h;  // A value written to x does not satisfy a read of y.
    Write(h, 1, "x", "a", 0, 10);
    Read(h, 2, "y", "a", 20, 30);
    Read(h, 2, "x", "a", 20, 30);
    const LinearizabilityResult r = CheckLinearizable(h);
    EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
    EXPECT_EQ(r.key, "y");
  }
}

TEST(LinearizabilityTest, ViolationOnOneKeyIsReportedEvenIfAnotherGivesUp) {
  History h = ManyConcurrentWritesThenImpossibleRead(16);  // Key "k".
  Write(h, 1, "z", "a", 0, 10);
  Read(h, 2, "z", "b", 20, 30);
  const LinearizabilityResult r = CheckLinearizable(h, CheckOptions{.max_steps = 10'000});
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "z");
}

// --- Simulated register ---

struct SimConfig {
  uint64_t seed = 1;
  int clients = 3;
  int keys = 1;
  int ops_per_client = 10;
  int unknown_percent = 5;
  int failed_percent = 5;
};

struct SimOp {
  Operation op;
  bool takes_effect = false;
  int64_t effect_us = 0;         // Meaningful if takes_effect.
  bool never_completes = false;  // A kUnknown op left without a Complete.
};

// Runs clients, each one operation at a time, against one in-memory map.
// Every operation that takes effect does so atomically at effect_us: inside
// its interval if its outcome is known, at or after its invocation (possibly
// after the client gave up) if unknown. Written values are unique, so a value
// names the one operation that wrote it.
std::vector<SimOp> SimulateRegister(const SimConfig& cfg) {
  std::mt19937_64 rng(cfg.seed);
  auto uniform = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto some_value = [&] {
    return "c" + std::to_string(uniform(0, cfg.clients - 1)) + "-" +
           std::to_string(uniform(0, cfg.ops_per_client - 1));
  };
  std::vector<SimOp> sim;
  for (int c = 0; c < cfg.clients; ++c) {
    int64_t t = uniform(0, 10);
    for (int i = 0; i < cfg.ops_per_client; ++i) {
      SimOp s;
      Operation& op = s.op;
      op.client = c;
      const int64_t kind = uniform(0, 9);
      op.kind = kind < 4 ? OpKind::kRead : kind < 8 ? OpKind::kWrite : OpKind::kCas;
      op.key = "k" + std::to_string(uniform(0, cfg.keys - 1));
      if (op.kind != OpKind::kRead) op.value = "c" + std::to_string(c) + "-" + std::to_string(i);
      op.invoke_us = t;
      op.complete_us = t + uniform(0, 20);
      const int64_t roll = uniform(0, 99);
      if (roll < cfg.failed_percent) {
        op.outcome = Outcome::kFailed;
      } else if (roll < cfg.failed_percent + cfg.unknown_percent) {
        op.outcome = Outcome::kUnknown;
        s.takes_effect = op.kind != OpKind::kRead && uniform(0, 1) == 1;
        s.effect_us = op.invoke_us + uniform(0, op.complete_us - op.invoke_us + 50);
        s.never_completes = uniform(0, 1) == 1;
      } else {
        op.outcome = Outcome::kOk;
        s.takes_effect = true;
        s.effect_us = uniform(op.invoke_us, op.complete_us);
      }
      if (op.kind == OpKind::kCas) op.expected = some_value();
      t = op.complete_us + uniform(0, 10);
      sim.push_back(std::move(s));
    }
  }

  std::vector<size_t> order;
  for (size_t i = 0; i < sim.size(); ++i) {
    if (sim[i].takes_effect) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&sim](size_t a, size_t b) {
    return std::tie(sim[a].effect_us, sim[a].op.invoke_us, a) <
           std::tie(sim[b].effect_us, sim[b].op.invoke_us, b);
  });
  std::map<std::string, std::string> store;
  for (size_t i : order) {
    Operation& op = sim[i].op;
    auto it = store.find(op.key);
    switch (op.kind) {
      case OpKind::kRead:
        op.found = it != store.end();
        if (op.found) op.result = it->second;
        break;
      case OpKind::kWrite:
        store[op.key] = op.value;
        break;
      case OpKind::kCas:
        // Clients mostly swap what they last saw.
        if (it != store.end() && uniform(0, 2) > 0) op.expected = it->second;
        op.cas_ok = it != store.end() && it->second == op.expected;
        if (op.cas_ok) it->second = op.value;
        break;
    }
  }
  return sim;
}

History Record(const std::vector<SimOp>& sim) {
  History h;
  for (const SimOp& s : sim) {
    const Operation& op = s.op;
    const size_t id = h.Invoke(op.client, op.kind, op.key, op.value, op.expected, op.invoke_us);
    if (!s.never_completes)
      h.Complete(id, op.complete_us, op.outcome, op.result, op.found, op.cas_ok);
  }
  return h;
}

bool IsKnownRead(const Operation& op) {
  return op.kind == OpKind::kRead && op.outcome == Outcome::kOk;
}

SimConfig GenSimConfig(int min_clients, int min_ops_per_client) {
  SimConfig cfg;
  cfg.seed = *rc::gen::arbitrary<uint64_t>();
  cfg.clients = *rc::gen::inRange(min_clients, 7);
  cfg.keys = *rc::gen::inRange(1, 4);
  cfg.ops_per_client = *rc::gen::inRange(min_ops_per_client, 16);
  cfg.unknown_percent = *rc::gen::inRange(0, 21);
  cfg.failed_percent = *rc::gen::inRange(0, 11);
  return cfg;
}

RC_GTEST_PROP(LinearizabilityProperty, SimulatedRegisterHistoriesAreLinearizable, ()) {
  const History h = Record(SimulateRegister(GenSimConfig(1, 1)));
  const LinearizabilityResult r = CheckLinearizable(h);
  RC_LOG() << r.explanation;
  RC_ASSERT(r.verdict == Verdict::kOk);
}

RC_GTEST_PROP(LinearizabilityProperty, ReadOfAValueWrittenOnlyAfterItIsCaught, ()) {
  std::vector<SimOp> sim = SimulateRegister(GenSimConfig(2, 4));
  // (read, writer) with the writer invoked strictly after the read completed;
  // the writer's value is unique, so no linearization lets the read see it.
  std::vector<std::pair<size_t, size_t>> candidates;
  for (size_t r = 0; r < sim.size(); ++r) {
    if (!IsKnownRead(sim[r].op)) continue;
    for (size_t w = 0; w < sim.size(); ++w) {
      if (sim[w].op.kind != OpKind::kRead && sim[w].op.key == sim[r].op.key &&
          sim[w].op.invoke_us > sim[r].op.complete_us) {
        candidates.emplace_back(r, w);
      }
    }
  }
  RC_PRE(!candidates.empty());
  const auto [r, w] = candidates[*rc::gen::inRange<size_t>(0, candidates.size())];
  sim[r].op.found = true;
  sim[r].op.result = sim[w].op.value;

  const LinearizabilityResult result = CheckLinearizable(Record(sim));
  RC_LOG() << result.explanation;
  RC_ASSERT(result.verdict == Verdict::kNotLinearizable);
  RC_ASSERT(result.key == sim[r].op.key);
}

RC_GTEST_PROP(LinearizabilityProperty, ReadOfAnOverwrittenValueIsCaught, ()) {
  std::vector<SimOp> sim = SimulateRegister(GenSimConfig(2, 4));
  // (old, newer, read) on one key: `newer` is known to have written after
  // `old` completed and before `read` began, so `read` cannot return old's
  // (unique) value.
  std::vector<std::tuple<size_t, size_t, size_t>> candidates;
  auto known_writer = [&sim](size_t i) {
    const Operation& op = sim[i].op;
    return op.outcome == Outcome::kOk &&
           (op.kind == OpKind::kWrite || (op.kind == OpKind::kCas && op.cas_ok));
  };
  for (size_t newer = 0; newer < sim.size(); ++newer) {
    if (!known_writer(newer)) continue;
    const Operation& n = sim[newer].op;
    for (size_t old = 0; old < sim.size(); ++old) {
      const Operation& o = sim[old].op;
      if (!known_writer(old) || o.key != n.key || o.complete_us >= n.invoke_us) continue;
      for (size_t read = 0; read < sim.size(); ++read) {
        const Operation& r = sim[read].op;
        if (IsKnownRead(r) && r.key == n.key && n.complete_us < r.invoke_us) {
          candidates.emplace_back(old, newer, read);
        }
      }
    }
  }
  RC_PRE(!candidates.empty());
  const auto [old, newer, read] = candidates[*rc::gen::inRange<size_t>(0, candidates.size())];
  sim[read].op.found = true;
  sim[read].op.result = sim[old].op.value;

  const LinearizabilityResult result = CheckLinearizable(Record(sim));
  RC_LOG() << result.explanation;
  RC_ASSERT(result.verdict == Verdict::kNotLinearizable);
  RC_ASSERT(result.key == sim[read].op.key);
}

TEST(LinearizabilityTest, LargeSimulatedHistoryIsCheckedQuickly) {
  // ~2,000 operations over 20 keys from 8 concurrent clients.
  SimConfig cfg{.seed = 7, .clients = 8, .keys = 20, .ops_per_client = 250};
  std::vector<SimOp> sim = SimulateRegister(cfg);
  const History h = Record(sim);
  const auto start = std::chrono::steady_clock::now();
  const LinearizabilityResult r = CheckLinearizable(h);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.verdict, Verdict::kOk) << r.explanation;
  EXPECT_LT(r.steps, 100'000u);
  // Generous, so sanitizer builds pass; a release build takes a few ms.
  EXPECT_LT(elapsed, std::chrono::seconds(2));

  // Plant a read of a value never written late in the run: it must be found.
  for (size_t i = sim.size(); i-- > 0;) {
    if (IsKnownRead(sim[i].op) && sim[i].op.found) {
      sim[i].op.result = "never written";
      break;
    }
  }
  EXPECT_EQ(CheckLinearizable(Record(sim)).verdict, Verdict::kNotLinearizable);
}

// --- Cross-check against exhaustive search ---

// Whether some subset of the operations that may have taken effect, in some
// order that respects real time, is a legal sequential register history.
bool BruteForceLinearizable(const std::vector<Operation>& ops) {
  std::vector<size_t> must;
  std::vector<size_t> may;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].outcome == Outcome::kOk) must.push_back(i);
    if (ops[i].outcome == Outcome::kUnknown && ops[i].kind != OpKind::kRead) may.push_back(i);
  }
  auto complete_us = [&ops](size_t i) {
    return ops[i].outcome == Outcome::kOk ? ops[i].complete_us : kNeverCompletedUs;
  };
  auto legal = [&](const std::vector<size_t>& order) {
    for (size_t a = 0; a < order.size(); ++a) {
      for (size_t b = a + 1; b < order.size(); ++b) {
        if (complete_us(order[b]) < ops[order[a]].invoke_us) return false;
      }
    }
    std::optional<std::string> reg;
    for (size_t i : order) {
      const Operation& op = ops[i];
      const bool match = reg.has_value() && *reg == op.expected;
      switch (op.kind) {
        case OpKind::kRead:
          if (op.found ? reg != op.result : reg.has_value()) return false;
          break;
        case OpKind::kWrite:
          reg = op.value;
          break;
        case OpKind::kCas:
          if (op.outcome == Outcome::kOk && op.cas_ok != match) return false;
          if (match) reg = op.value;
          break;
      }
    }
    return true;
  };
  for (uint32_t subset = 0; subset < (1u << may.size()); ++subset) {
    std::vector<size_t> order = must;
    for (size_t j = 0; j < may.size(); ++j) {
      if (subset & (1u << j)) order.push_back(may[j]);
    }
    std::sort(order.begin(), order.end());
    do {
      if (legal(order)) return true;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  return false;
}

TEST(LinearizabilityTest, AgreesWithExhaustiveSearchOnSmallHistories) {
  constexpr int kCases = 20'000;
  std::mt19937_64 rng(12345);
  auto uniform = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const std::string values[] = {"a", "b"};
  int linearizable = 0;
  for (int c = 0; c < kCases; ++c) {
    History h;
    const int64_t n = uniform(0, 7);
    for (int64_t i = 0; i < n; ++i) {
      const OpKind kind = static_cast<OpKind>(uniform(0, 2));
      const int64_t invoke_us = uniform(0, 8);
      const size_t id =
          h.Invoke(i, kind, "k", values[uniform(0, 1)], values[uniform(0, 1)], invoke_us);
      const int64_t roll = uniform(0, 9);
      const Outcome outcome = roll < 7   ? Outcome::kOk
                              : roll < 9 ? Outcome::kUnknown
                                         : Outcome::kFailed;
      if (outcome == Outcome::kUnknown && uniform(0, 1) == 0) continue;  // Never completes.
      h.Complete(id, invoke_us + uniform(0, 4), outcome, values[uniform(0, 1)], uniform(0, 2) > 0,
                 uniform(0, 1) == 1);
    }
    const bool expected = BruteForceLinearizable(h.ops());
    const LinearizabilityResult r = CheckLinearizable(h);
    ASSERT_NE(r.verdict, Verdict::kGaveUp);
    if (r.ok() != expected) {
      std::string dump;
      for (size_t id = 0; id < h.size(); ++id)
        dump += h.Describe(id) + "\n";
      FAIL() << "case " << c << ": exhaustive search says " << expected << ", checker says "
             << VerdictName(r.verdict) << "\n"
             << dump << r.explanation;
    }
    linearizable += expected;
  }
  // Both answers must be common, or the agreement proves little.
  EXPECT_GT(linearizable, kCases / 5);
  EXPECT_LT(linearizable, kCases * 4 / 5);
}

}  // namespace
}  // namespace bw::check
