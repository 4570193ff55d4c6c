// Proves the register state machine and its command codec. Codec: put and CAS
// commands (with empty, binary and large fields, and request ids up to 2^64-1)
// decode to what was encoded; every strict prefix of an encoding is refused as
// truncated, an unknown op and trailing bytes are refused with their own
// errors. Semantics: put overwrites; CAS applies only when the key exists and
// holds exactly the expected value. Exactly-once: a request whose seq is not
// past its client's last applied seq is a no-op reported as a duplicate that
// leaves the state and digest untouched; clients are independent and id 0 is
// never deduplicated. Digest: two machines fed the same commands agree, any
// differing value, key or dedupe state changes it, and it does not depend on
// the order in which keys were inserted. Snapshots: Serialize/Restore keeps
// the values, digest, dedupe state and tracked request ids, while every
// truncated or garbage snapshot is refused and leaves the machine as it was.
#include "kv/testing/kv_state.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace bw::kv {
namespace {

using ::testing::HasSubstr;

KvCommand Put(std::string key, std::string value, uint64_t request_id = 0) {
  KvCommand cmd;
  cmd.op = KvOp::kPut;
  cmd.request_id = request_id;
  cmd.key = std::move(key);
  cmd.value = std::move(value);
  return cmd;
}

KvCommand Cas(std::string key, std::string expected, std::string value, uint64_t request_id = 0) {
  KvCommand cmd;
  cmd.op = KvOp::kCas;
  cmd.request_id = request_id;
  cmd.key = std::move(key);
  cmd.value = std::move(value);
  cmd.expected = std::move(expected);
  return cmd;
}

void ExpectSameCommand(const KvCommand& got, const KvCommand& want) {
  EXPECT_EQ(got.op, want.op);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.value, want.value);
  EXPECT_EQ(got.expected, want.expected);
}

std::vector<KvCommand> SampleCommands() {
  std::string binary("\0\x01\xFF\x80", 4);
  return {
      Put("", ""),
      Put("k", "v", MakeRequestId(1, 1)),
      Put(binary, binary, std::numeric_limits<uint64_t>::max()),
      Put(std::string(300, 'k'), std::string(70000, 'v'), MakeRequestId(9, 123456)),
      Cas("k", "", "", 0),
      Cas("k", "old", "new", MakeRequestId(2, 7)),
      Cas(binary, std::string(200, 'e'), binary, uint64_t{1} << 63),
  };
}

// --- Codec ---

TEST(KvCommandCodecTest, RoundTrips) {
  for (const KvCommand& cmd : SampleCommands()) {
    absl::StatusOr<KvCommand> got = DecodeKvCommand(EncodeKvCommand(cmd));
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameCommand(*got, cmd);
  }
}

TEST(KvCommandCodecTest, PutDoesNotCarryExpected) {
  KvCommand put = Put("k", "v", 5);
  put.expected = "ignored";
  absl::StatusOr<KvCommand> got = DecodeKvCommand(EncodeKvCommand(put));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->op, KvOp::kPut);
  EXPECT_EQ(got->expected, "");
  EXPECT_EQ(got->value, "v");
}

TEST(KvCommandCodecTest, EveryStrictPrefixIsTruncated) {
  for (const KvCommand& cmd : SampleCommands()) {
    std::string enc = EncodeKvCommand(cmd);
    for (size_t n = 0; n < enc.size(); ++n) {
      absl::StatusOr<KvCommand> got = DecodeKvCommand(std::string_view(enc).substr(0, n));
      ASSERT_FALSE(got.ok()) << "prefix of " << n << " of " << enc.size() << " bytes decoded";
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(got.status().message(), HasSubstr("truncated")) << "prefix " << n;
    }
  }
}

TEST(KvCommandCodecTest, UnknownOpIsRefused) {
  std::string enc = EncodeKvCommand(Put("k", "v", 1));
  for (uint8_t op : {0, 3, 0x7F, 0xFF}) {
    enc[0] = static_cast<char>(op);
    absl::StatusOr<KvCommand> got = DecodeKvCommand(enc);
    ASSERT_FALSE(got.ok()) << "op " << int{op};
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("unknown op")) << "op " << int{op};
  }
}

TEST(KvCommandCodecTest, TrailingBytesAreRefused) {
  for (const KvCommand& cmd : SampleCommands()) {
    for (std::string extra : {std::string(1, '\0'), std::string("xyz")}) {
      absl::StatusOr<KvCommand> got = DecodeKvCommand(EncodeKvCommand(cmd) + extra);
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(got.status().message(), HasSubstr("trailing bytes"));
    }
  }
}

// A CAS encoding cut right after its value is a complete put's length, but
// must not decode as one: the op byte says a CAS follows.
TEST(KvCommandCodecTest, CasWithoutExpectedIsTruncated) {
  std::string put = EncodeKvCommand(Put("k", "v", 3));
  put[0] = static_cast<char>(KvOp::kCas);
  absl::StatusOr<KvCommand> got = DecodeKvCommand(put);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr("truncated"));
}

// --- Put and CAS ---

TEST(KvStateMachineTest, PutCreatesAndOverwrites) {
  KvStateMachine sm;
  EXPECT_EQ(sm.Get("a"), std::nullopt);
  KvResult r = sm.Apply(Put("a", "1"));
  EXPECT_TRUE(r.applied);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(sm.Get("a"), "1");
  EXPECT_TRUE(sm.Apply(Put("a", "2")).applied);
  EXPECT_EQ(sm.Get("a"), "2");
  EXPECT_EQ(sm.size(), 1u);
  EXPECT_TRUE(sm.Apply(Put("b", "")).applied);
  EXPECT_EQ(sm.Get("b"), "");  // present and empty, not missing
  EXPECT_EQ(sm.size(), 2u);
}

TEST(KvStateMachineTest, CasOnMissingKeyFails) {
  KvStateMachine sm;
  uint64_t before = sm.digest();
  // Not even an empty expected value matches a key that does not exist.
  KvResult r = sm.Apply(Cas("a", "", "1"));
  EXPECT_FALSE(r.applied);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(sm.Get("a"), std::nullopt);
  EXPECT_EQ(sm.size(), 0u);
  EXPECT_EQ(sm.digest(), before);
}

TEST(KvStateMachineTest, CasWithWrongExpectedFails) {
  KvStateMachine sm;
  sm.Apply(Put("a", "old"));
  uint64_t before = sm.digest();
  for (std::string wrong : {"", "ol", "old ", "OLD", "new"}) {
    KvResult r = sm.Apply(Cas("a", wrong, "new"));
    EXPECT_FALSE(r.applied) << "expected '" << wrong << "'";
    EXPECT_FALSE(r.duplicate);
  }
  EXPECT_EQ(sm.Get("a"), "old");
  EXPECT_EQ(sm.digest(), before);
}

TEST(KvStateMachineTest, CasWithRightExpectedApplies) {
  KvStateMachine sm;
  sm.Apply(Put("a", "old"));
  KvResult r = sm.Apply(Cas("a", "old", "new", 77));
  EXPECT_TRUE(r.applied);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.request_id, 77u);
  EXPECT_EQ(sm.Get("a"), "new");
  // The old value no longer matches.
  EXPECT_FALSE(sm.Apply(Cas("a", "old", "newer")).applied);
  EXPECT_EQ(sm.Get("a"), "new");
  // Empty values compare like any other.
  sm.Apply(Put("e", ""));
  EXPECT_TRUE(sm.Apply(Cas("e", "", "filled")).applied);
  EXPECT_EQ(sm.Get("e"), "filled");
}

// --- Exactly-once ---

TEST(KvStateMachineTest, DuplicateOrOlderSeqIsANoOp) {
  KvStateMachine sm;
  ASSERT_TRUE(sm.Apply(Put("a", "1", MakeRequestId(1, 1))).applied);
  ASSERT_TRUE(sm.Apply(Put("a", "2", MakeRequestId(1, 2))).applied);
  ASSERT_TRUE(sm.Apply(Put("a", "3", MakeRequestId(1, 3))).applied);
  const uint64_t digest = sm.digest();
  for (uint64_t seq : {3, 2, 1}) {
    KvResult r = sm.Apply(Put("a", "stale" + std::to_string(seq), MakeRequestId(1, seq)));
    EXPECT_TRUE(r.duplicate) << "seq " << seq;
    EXPECT_FALSE(r.applied) << "seq " << seq;
    EXPECT_EQ(r.request_id, MakeRequestId(1, seq));
    EXPECT_EQ(sm.Get("a"), "3");
    EXPECT_EQ(sm.digest(), digest) << "seq " << seq;
  }
  // A duplicate CAS that would succeed now is still not applied.
  KvResult r = sm.Apply(Cas("a", "3", "cas", MakeRequestId(1, 2)));
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(sm.Get("a"), "3");
  // The next seq applies; seqs may skip ahead.
  EXPECT_TRUE(sm.Apply(Put("a", "5", MakeRequestId(1, 5))).applied);
  EXPECT_TRUE(sm.Apply(Put("a", "4", MakeRequestId(1, 4))).duplicate);
  EXPECT_EQ(sm.Get("a"), "5");
}

// A CAS that failed its comparison still used up its seq: a retry of it is a
// duplicate, not a second attempt.
TEST(KvStateMachineTest, FailedCasConsumesItsSeq) {
  KvStateMachine sm;
  KvResult first = sm.Apply(Cas("a", "x", "y", MakeRequestId(3, 1)));
  EXPECT_FALSE(first.applied);
  EXPECT_FALSE(first.duplicate);
  sm.Apply(Put("a", "x"));
  KvResult retry = sm.Apply(Cas("a", "x", "y", MakeRequestId(3, 1)));
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(sm.Get("a"), "x");
}

TEST(KvStateMachineTest, ClientsAreDedupedIndependently) {
  KvStateMachine sm;
  ASSERT_TRUE(sm.Apply(Put("a", "c1", MakeRequestId(1, 10))).applied);
  // Client 2's seq 1 is not shadowed by client 1's seq 10.
  KvResult r = sm.Apply(Put("b", "c2", MakeRequestId(2, 1)));
  EXPECT_TRUE(r.applied);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(sm.Get("b"), "c2");
  // And client 2 advancing does not affect client 1.
  ASSERT_TRUE(sm.Apply(Put("b", "c2b", MakeRequestId(2, 50))).applied);
  EXPECT_TRUE(sm.Apply(Put("a", "old", MakeRequestId(1, 10))).duplicate);
  EXPECT_TRUE(sm.Apply(Put("a", "new", MakeRequestId(1, 11))).applied);
  EXPECT_EQ(sm.Get("a"), "new");
}

TEST(KvStateMachineTest, RequestIdZeroIsNeverDeduped) {
  KvStateMachine sm;
  for (int i = 0; i < 3; ++i) {
    KvResult r = sm.Apply(Put("a", std::to_string(i), 0));
    EXPECT_TRUE(r.applied);
    EXPECT_FALSE(r.duplicate);
    EXPECT_EQ(sm.Get("a"), std::to_string(i));
  }
  EXPECT_TRUE(sm.Apply(Cas("a", "2", "cas", 0)).applied);
  EXPECT_EQ(sm.Get("a"), "cas");
}

// --- Digest ---

TEST(KvDigestTest, SameCommandsSameDigest) {
  std::vector<KvCommand> cmds = {
      Put("a", "1", MakeRequestId(1, 1)),      Put("b", "2", MakeRequestId(2, 1)),
      Cas("a", "1", "3", MakeRequestId(1, 2)), Cas("b", "x", "4", MakeRequestId(2, 2)),
      Put("a", "dup", MakeRequestId(1, 2)),    Put("c", "", 0)};
  KvStateMachine x(true), y(true);
  for (const KvCommand& c : cmds) {
    x.Apply(c);
    y.Apply(c);
    EXPECT_EQ(x.digest(), y.digest());
  }
  EXPECT_NE(x.digest(), KvStateMachine(true).digest());
}

TEST(KvDigestTest, DiffersWhenAValueOrKeyDiffers) {
  auto digest_of = [](const std::vector<KvCommand>& cmds) {
    KvStateMachine sm;
    for (const KvCommand& c : cmds)
      sm.Apply(c);
    return sm.digest();
  };
  uint64_t base = digest_of({Put("a", "1"), Put("b", "2"), Put("c", "3")});
  EXPECT_NE(base, digest_of({Put("a", "1"), Put("b", "X"), Put("c", "3")}));
  EXPECT_NE(base, digest_of({Put("a", "1"), Put("b", "2"), Put("c", "")}));
  EXPECT_NE(base, digest_of({Put("a", "1"), Put("b", "2"), Put("d", "3")}));
  EXPECT_NE(base, digest_of({Put("a", "1"), Put("b", "2")}));
  // Swapping values between keys is a different state.
  EXPECT_NE(base, digest_of({Put("a", "2"), Put("b", "1"), Put("c", "3")}));
  // Moving a byte between key and value is a different state.
  EXPECT_NE(digest_of({Put("ab", "c")}), digest_of({Put("a", "bc")}));
  // Dedupe state is part of the state: the same data with a client's seq
  // recorded differs from it without.
  EXPECT_NE(digest_of({Put("a", "1", MakeRequestId(1, 1))}), digest_of({Put("a", "1")}));
  EXPECT_NE(digest_of({Put("a", "1", MakeRequestId(1, 1))}),
            digest_of({Put("a", "1", MakeRequestId(1, 2))}));
}

TEST(KvDigestTest, IndependentOfInsertionOrder) {
  KvStateMachine ab, ba;
  ab.Apply(Put("a", "1"));
  ab.Apply(Put("b", "2"));
  ba.Apply(Put("b", "2"));
  ba.Apply(Put("a", "1"));
  EXPECT_EQ(ab.digest(), ba.digest());

  // Same final values reached through different histories.
  KvStateMachine x, y;
  x.Apply(Put("a", "tmp"));
  x.Apply(Put("c", "3"));
  x.Apply(Put("b", "2"));
  x.Apply(Put("a", "1"));
  y.Apply(Put("b", "old"));
  y.Apply(Put("a", "1"));
  y.Apply(Put("b", "2"));
  y.Apply(Put("c", "3"));
  EXPECT_EQ(x.digest(), y.digest());

  // Overwriting with the same value changes nothing.
  uint64_t before = x.digest();
  x.Apply(Put("a", "1"));
  EXPECT_EQ(x.digest(), before);
}

// --- Snapshots ---

KvStateMachine Populated(bool track) {
  KvStateMachine sm(track);
  sm.Apply(Put("a", "1", MakeRequestId(1, 1)));
  sm.Apply(Put("b", std::string("\0bin", 4), MakeRequestId(2, 4)));
  sm.Apply(Cas("a", "1", "11", MakeRequestId(1, 2)));
  sm.Apply(Cas("b", "nope", "x", MakeRequestId(3, 9)));  // fails, seq used
  sm.Apply(Put("", "empty key", 0));
  sm.Apply(Put("long", std::string(1000, 'z'), MakeRequestId(1, 3)));
  return sm;
}

TEST(KvSnapshotTest, RoundTripPreservesState) {
  for (bool track : {false, true}) {
    SCOPED_TRACE(track ? "track_requests" : "no tracking");
    KvStateMachine src = Populated(track);
    KvStateMachine dst(track);
    dst.Apply(Put("stale", "gone"));  // replaced wholesale by Restore
    ASSERT_TRUE(dst.Restore(src.Serialize()).ok());
    EXPECT_EQ(dst.digest(), src.digest());
    EXPECT_EQ(dst.size(), src.size());
    for (const char* key : {"a", "b", "", "long", "stale", "missing"}) {
      EXPECT_EQ(dst.Get(key), src.Get(key)) << key;
    }
    EXPECT_EQ(dst.Get("stale"), std::nullopt);
    EXPECT_EQ(dst.Serialize(), src.Serialize());

    // Dedupe state survived: every client's last seq and below is rejected.
    for (uint64_t id :
         {MakeRequestId(1, 3), MakeRequestId(1, 1), MakeRequestId(2, 4), MakeRequestId(3, 9)}) {
      KvResult r = dst.Apply(Put("a", "dup", id));
      EXPECT_TRUE(r.duplicate) << id;
      EXPECT_FALSE(r.applied) << id;
    }
    EXPECT_EQ(dst.Get("a"), "11");
    EXPECT_EQ(dst.digest(), src.digest());
    // The next seq still applies, identically on both.
    EXPECT_TRUE(dst.Apply(Put("a", "next", MakeRequestId(1, 4))).applied);
    src.Apply(Put("a", "next", MakeRequestId(1, 4)));
    EXPECT_EQ(dst.digest(), src.digest());
  }
}

TEST(KvSnapshotTest, RoundTripPreservesWasApplied) {
  KvStateMachine src = Populated(true);
  KvStateMachine dst(true);
  ASSERT_TRUE(dst.Restore(src.Serialize()).ok());
  for (uint64_t id : {MakeRequestId(1, 1), MakeRequestId(1, 2), MakeRequestId(1, 3),
                      MakeRequestId(2, 4), MakeRequestId(3, 9)}) {
    EXPECT_TRUE(src.WasApplied(id)) << id;
    EXPECT_TRUE(dst.WasApplied(id)) << id;
  }
  for (uint64_t id : {MakeRequestId(1, 4), MakeRequestId(2, 3), MakeRequestId(4, 1)}) {
    EXPECT_FALSE(dst.WasApplied(id)) << id;
  }
}

TEST(KvSnapshotTest, EmptyMachineRoundTrips) {
  KvStateMachine src;
  KvStateMachine dst;
  dst.Apply(Put("x", "y", MakeRequestId(1, 1)));
  ASSERT_TRUE(dst.Restore(src.Serialize()).ok());
  EXPECT_EQ(dst.size(), 0u);
  EXPECT_EQ(dst.digest(), src.digest());
  EXPECT_TRUE(dst.Apply(Put("x", "y", MakeRequestId(1, 1))).applied);
}

// Restore either succeeds or leaves every observable part of the machine as
// it was: values, digest, dedupe state and tracked ids.
void ExpectRestoreRefused(std::string_view bytes, const std::string& what) {
  KvStateMachine sm = Populated(true);
  const KvStateMachine before = Populated(true);
  absl::Status st = sm.Restore(bytes);
  ASSERT_FALSE(st.ok()) << what;
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << what;
  EXPECT_EQ(sm.digest(), before.digest()) << what;
  EXPECT_EQ(sm.Serialize(), before.Serialize()) << what;
  EXPECT_EQ(sm.Get("a"), "11") << what;
  EXPECT_TRUE(sm.WasApplied(MakeRequestId(1, 3))) << what;
  EXPECT_TRUE(sm.Apply(Put("a", "dup", MakeRequestId(1, 3))).duplicate) << what;
}

TEST(KvSnapshotTest, TruncatedSnapshotIsRefusedAndChangesNothing) {
  // A snapshot unlike the victim's state, so a partial restore would show.
  KvStateMachine other(true);
  other.Apply(Put("a", "other", MakeRequestId(1, 100)));
  other.Apply(Put("z", "zz", MakeRequestId(7, 1)));
  std::string snap = other.Serialize();
  for (size_t n = 0; n < snap.size(); ++n) {
    ExpectRestoreRefused(std::string_view(snap).substr(0, n), "prefix " + std::to_string(n));
  }
}

TEST(KvSnapshotTest, GarbageSnapshotIsRefusedAndChangesNothing) {
  std::string good = Populated(false).Serialize();
  ExpectRestoreRefused(good + "x", "trailing byte");
  std::string bad_version = good;
  bad_version[0] = 2;
  ExpectRestoreRefused(bad_version, "version 2");
  ExpectRestoreRefused(std::string("\x00", 1), "version 0");
  // Counts far beyond the bytes present.
  ExpectRestoreRefused(std::string("\x01\xFF\xFF\xFF\xFF\x0F", 6), "huge key count");
  ExpectRestoreRefused(std::string("\x01\x00\x00\xFF\xFF\xFF\x7F", 7), "huge id count");
  // A varint that never ends.
  ExpectRestoreRefused(std::string(1, '\x01') + std::string(20, '\x80'), "endless varint");
  std::string noise;
  for (int i = 0; i < 64; ++i)
    noise.push_back(static_cast<char>(i * 37 + 11));
  ExpectRestoreRefused(noise, "noise");
}

}  // namespace
}  // namespace bw::kv
