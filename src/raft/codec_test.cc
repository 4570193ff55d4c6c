// Proves the Raft codec lossless, canonical, compact and defensive.
//
// Lossless: every message type with every field set, and rapidcheck-generated
// random messages (edge-value integers, contiguous and scattered entries,
// random bytes), decode to what was encoded. Canonical: any byte string that
// decodes re-encodes to the same bytes, checked on byte-flipped encodings.
// Defensive: every strict prefix of an encoding is refused with
// INVALID_ARGUMENT, random byte flips never crash, and each malformation the
// decoder names (unknown version/type, varint overflow, over-long lengths and
// counts, the entry and size limits, trailing bytes) is planted by hand and
// must produce its specific error. Compact: a heartbeat is under 16 bytes.
#include "raft/codec.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "core/limits.h"

namespace bw::raft {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

std::string Show(const std::vector<NodeId>& ids) {
  std::ostringstream os;
  os << "[";
  for (NodeId id : ids)
    os << id << ",";
  os << "]";
  return os.str();
}

std::string Show(const SnapshotMeta& s) {
  std::ostringstream os;
  os << "{index=" << s.index << " term=" << s.term << " voters=" << Show(s.conf.voters)
     << " outgoing=" << Show(s.conf.voters_outgoing) << " learners=" << Show(s.conf.learners)
     << " learners_next=" << Show(s.conf.learners_next) << " auto_leave=" << s.conf.auto_leave
     << "}";
  return os.str();
}

// Describes the first difference between two messages; empty if equal.
// (Message has no operator==.)
std::string MessageDiff(const Message& a, const Message& b) {
  std::ostringstream os;
  auto field = [&os](const char* name, const auto& x, const auto& y) {
    if (x != y && os.tellp() == 0) os << name << ": " << x << " vs " << y;
  };
  field("type", static_cast<int>(a.type), static_cast<int>(b.type));
  field("from", a.from, b.from);
  field("to", a.to, b.to);
  field("term", a.term, b.term);
  field("log_term", a.log_term, b.log_term);
  field("index", a.index, b.index);
  field("entries.size", a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size() && i < b.entries.size(); ++i) {
    const Entry& x = a.entries[i];
    const Entry& y = b.entries[i];
    if (x != y && os.tellp() == 0) {
      os << "entry " << i << ": {" << x.term << "," << x.index << "," << static_cast<int>(x.type)
         << "," << x.data.size() << "B} vs {" << y.term << "," << y.index << ","
         << static_cast<int>(y.type) << "," << y.data.size() << "B}";
    }
  }
  field("commit", a.commit, b.commit);
  field("reject", a.reject, b.reject);
  field("reject_hint", a.reject_hint, b.reject_hint);
  field("snapshot_meta", Show(a.snapshot_meta), Show(b.snapshot_meta));
  field("snapshot_offset", a.snapshot_offset, b.snapshot_offset);
  field("snapshot_size", a.snapshot_size, b.snapshot_size);
  field("data", a.data, b.data);
  field("context", a.context, b.context);
  return os.str();
}

// A message of type `t` with every field set to a non-default value,
// including multi-byte varints and both implicit and explicit entry fields.
Message FullMessage(MessageType t) {
  Message m;
  m.type = t;
  m.from = NodeId(3);
  m.to = NodeId(70000);
  m.term = Term(1234567);
  m.log_term = Term(1234560);
  m.index = LogIndex(99999);
  m.entries = {
      {Term(1234560), LogIndex(100000), EntryType::kNormal, "put a 1"},
      {Term(1234567), LogIndex(100001), EntryType::kNormal, ""},
      {Term(1234567), LogIndex(100002), EntryType::kConfChange,
       EncodeConfChange(
           {ConfTransition::kJointExplicit,
            {{ConfChangeType::kAddVoter, NodeId(4)}, {ConfChangeType::kRemoveNode, NodeId(1)}}})},
      {Term(1), LogIndex(7), EntryType::kNormal, std::string(300, '\xFF')},
  };
  m.commit = LogIndex(99990);
  m.reject = true;
  m.reject_hint = LogIndex(42);
  m.snapshot_meta.index = LogIndex(50000);
  m.snapshot_meta.term = Term(1234000);
  m.snapshot_meta.conf = {{NodeId(1), NodeId(2), NodeId(3)},
                          {NodeId(1), NodeId(2), NodeId(9)},
                          {NodeId(5)},
                          {NodeId(9)},
                          true};
  m.snapshot_offset = 1 << 20;
  m.snapshot_size = kU64Max;
  m.data = std::string("snap\0shot", 9);
  m.context = 0xDEADBEEFCAFEull;
  return m;
}

Message Heartbeat() {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.term = Term(1000);
  m.commit = LogIndex(10'000'000);
  m.context = 5000;
  return m;
}

Message AppendOf(size_t n, size_t data_bytes) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.term = Term(7);
  m.log_term = Term(7);
  m.index = LogIndex(1'000'000);
  m.commit = LogIndex(999'990);
  for (size_t i = 0; i < n; ++i) {
    m.entries.push_back(
        {Term(7), m.index + 1 + i, EntryType::kNormal, std::string(data_bytes, 'x')});
  }
  return m;
}

void ExpectRoundTrip(const Message& m) {
  const std::string bytes = EncodeMessage(m);
  EXPECT_EQ(bytes.size(), EncodedMessageSize(m));
  absl::StatusOr<Message> got = DecodeMessage(bytes);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(MessageDiff(m, *got), "");
}

void ExpectInvalid(std::string_view bytes, const std::string& want) {
  absl::StatusOr<Message> got = DecodeMessage(bytes);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(want));
}

// The comparison every round-trip test relies on must see each field.
TEST(CodecTest, MessageDiffSeesEveryField) {
  const Message base = FullMessage(MessageType::kAppend);
  EXPECT_EQ(MessageDiff(base, base), "");
  std::vector<std::function<void(Message&)>> changes = {
      [](Message& m) { m.type = MessageType::kVote; },
      [](Message& m) { m.from = NodeId(0); },
      [](Message& m) { m.to = NodeId(0); },
      [](Message& m) { m.term = Term(0); },
      [](Message& m) { m.log_term = Term(0); },
      [](Message& m) { m.index = LogIndex(0); },
      [](Message& m) { m.entries.pop_back(); },
      [](Message& m) { m.entries[1].data = "y"; },
      [](Message& m) { m.entries[2].type = EntryType::kNormal; },
      [](Message& m) { m.commit = LogIndex(0); },
      [](Message& m) { m.reject = false; },
      [](Message& m) { m.reject_hint = LogIndex(0); },
      [](Message& m) { m.snapshot_meta.conf.learners_next.clear(); },
      [](Message& m) { m.snapshot_meta.conf.auto_leave = false; },
      [](Message& m) { m.snapshot_offset = 0; },
      [](Message& m) { m.snapshot_size = 0; },
      [](Message& m) { m.data.clear(); },
      [](Message& m) { m.context = 0; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    Message m = base;
    changes[i](m);
    EXPECT_NE(MessageDiff(base, m), "") << i;
  }
}

// ---------------------------------------------------------------- round trips

TEST(CodecTest, RoundTripsEveryTypeWithAllFields) {
  for (int t = 0; t < kMessageTypeCount; ++t) {
    SCOPED_TRACE(t);
    ExpectRoundTrip(FullMessage(static_cast<MessageType>(t)));
  }
}

TEST(CodecTest, RoundTripsDefaultMessage) {
  const Message m;
  EXPECT_EQ(EncodeMessage(m), std::string("\x01\x00\x00", 3));
  ExpectRoundTrip(m);
}

TEST(CodecTest, RoundTripsEachFieldAlone) {
  const Message full = FullMessage(MessageType::kSnapshot);
  std::vector<Message> ms(15);
  ms[0].from = full.from;
  ms[1].to = full.to;
  ms[2].term = full.term;
  ms[3].log_term = full.log_term;
  ms[4].index = full.index;
  ms[5].entries = full.entries;
  ms[6].commit = full.commit;
  ms[7].reject = true;
  ms[8].reject_hint = full.reject_hint;
  ms[9].snapshot_meta = full.snapshot_meta;
  ms[10].snapshot_offset = full.snapshot_offset;
  ms[11].snapshot_size = full.snapshot_size;
  ms[12].data = full.data;
  ms[13].context = full.context;
  ms[14].snapshot_meta.conf.auto_leave = true;  // a meta that differs only in a bool
  for (size_t i = 0; i < ms.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectRoundTrip(ms[i]);
  }
}

TEST(CodecTest, RoundTripsExtremeIntegers) {
  Message m = FullMessage(MessageType::kAppend);
  m.term = Term(kU64Max);
  m.log_term = Term(kU64Max);
  m.index = LogIndex(kU64Max);  // the first entry's implicit index wraps to 0
  m.entries = {{Term(kU64Max), LogIndex(0), EntryType::kNormal, "a"},
               {Term(0), LogIndex(kU64Max), EntryType::kNormal, "b"}};
  m.context = kU64Max;
  ExpectRoundTrip(m);
}

TEST(CodecTest, StandaloneValuesRoundTrip) {
  const Message full = FullMessage(MessageType::kSnapshot);

  const HardState hs{Term(77), NodeId(3), LogIndex(1ull << 40)};
  absl::StatusOr<HardState> hs2 = DecodeHardState(EncodeHardState(hs));
  ASSERT_TRUE(hs2.ok()) << hs2.status();
  EXPECT_EQ(*hs2, hs);
  EXPECT_EQ(*DecodeHardState(EncodeHardState(HardState{})), HardState{});

  for (const ConfChange& cc :
       {ConfChange{}, ConfChange{ConfTransition::kJointImplicit,
                                 {{ConfChangeType::kAddLearner, NodeId(kU64Max)},
                                  {ConfChangeType::kAddVoter, NodeId(0)}}}}) {
    absl::StatusOr<ConfChange> cc2 = DecodeConfChange(EncodeConfChange(cc));
    ASSERT_TRUE(cc2.ok()) << cc2.status();
    EXPECT_EQ(*cc2, cc);
  }

  absl::StatusOr<ConfState> cs = DecodeConfState(EncodeConfState(full.snapshot_meta.conf));
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(*cs, full.snapshot_meta.conf);

  absl::StatusOr<SnapshotMeta> meta = DecodeSnapshotMeta(EncodeSnapshotMeta(full.snapshot_meta));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(*meta, full.snapshot_meta);
}

TEST(CodecTest, EntryRecordsConcatenate) {
  const Message full = FullMessage(MessageType::kAppend);
  std::string buf;
  for (const Entry& e : full.entries)
    AppendEntry(&buf, e);
  AppendEntry(&buf, Entry{Term(0), LogIndex(1), EntryType::kNormal, ""});  // all implicit
  std::string_view in = buf;
  for (const Entry& want : full.entries) {
    absl::StatusOr<Entry> got = DecodeEntry(&in);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want);
  }
  EXPECT_EQ(in.size(), 2u);
  EXPECT_EQ(*DecodeEntry(&in), (Entry{Term(0), LogIndex(1), EntryType::kNormal, ""}));
  EXPECT_TRUE(in.empty());
  // Decoding past the end fails and leaves the input alone.
  EXPECT_FALSE(DecodeEntry(&in).ok());
}

// The leader's stamp (Entry::time_us) is written only when set, so entries
// from before stamping keep their bytes; a stamp of 0 written out is not
// canonical, and a stamp past int64 is refused.
TEST(CodecTest, EntryStampRoundTripsAndIsOptional) {
  Entry plain{Term(3), LogIndex(7), EntryType::kNormal, "v"};
  Entry stamped = plain;
  stamped.time_us = 1'234'567;
  std::string a, b;
  AppendEntry(&a, plain);
  AppendEntry(&b, stamped);
  EXPECT_EQ(b.size(), a.size() + 3);  // 1,234,567 is a 3-byte varint
  EXPECT_EQ(static_cast<uint8_t>(a[0]) & 0x40, 0);
  EXPECT_EQ(static_cast<uint8_t>(b[0]) & 0x40, 0x40);
  std::string_view in = b;
  absl::StatusOr<Entry> got = DecodeEntry(&in);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, stamped);
  in = a;
  EXPECT_EQ(DecodeEntry(&in)->time_us, 0);

  // The stamp bit with a zero stamp: the header says a value follows that
  // the canonical form would have left out.
  std::string zero = a;
  zero[0] = static_cast<char>(static_cast<uint8_t>(zero[0]) | 0x40);
  zero.insert(zero.size() - 2, 1, '\0');  // before data's length byte and byte
  in = zero;
  absl::StatusOr<Entry> bad = DecodeEntry(&in);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("time"));

  std::string huge = a;
  huge[0] = static_cast<char>(static_cast<uint8_t>(huge[0]) | 0x40);
  huge.insert(huge.size() - 2, std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10));
  in = huge;
  bad = DecodeEntry(&in);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("time out of range"));
}

// ---------------------------------------------------------------- sizes

TEST(CodecTest, HeartbeatIsTiny) {
  const Message hb = Heartbeat();
  const std::string bytes = EncodeMessage(hb);
  EXPECT_LT(bytes.size(), 16u);
  std::printf("heartbeat: %zu bytes\n", bytes.size());
  Message resp = hb;
  resp.type = MessageType::kHeartbeatResponse;
  std::swap(resp.from, resp.to);
  resp.commit = LogIndex(0);
  EXPECT_LT(EncodeMessage(resp).size(), 12u);
}

TEST(CodecTest, AppendOverheadIsSmall) {
  const Message m = AppendOf(100, 16);
  const std::string bytes = EncodeMessage(m);
  std::printf("append of 100 16-byte entries: %zu bytes\n", bytes.size());
  // Contiguous entries of one term cost a header byte and a length byte.
  EXPECT_LE(bytes.size(), 100u * (16 + 2) + 32);
  ExpectRoundTrip(m);
}

// ---------------------------------------------------------------- malformed input

TEST(CodecTest, EveryStrictPrefixFails) {
  std::vector<Message> ms = {Heartbeat(), AppendOf(5, 3), Message{}};
  for (int t = 0; t < kMessageTypeCount; ++t)
    ms.push_back(FullMessage(static_cast<MessageType>(t)));
  for (const Message& m : ms) {
    const std::string bytes = EncodeMessage(m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      absl::StatusOr<Message> got = DecodeMessage(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(got.ok()) << "prefix " << n << " of " << bytes.size();
      ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      ASSERT_THAT(std::string(got.status().message()), HasSubstr("truncated"));
    }
  }
}

TEST(CodecTest, StandaloneStrictPrefixesAndTrailingBytesFail) {
  const Message full = FullMessage(MessageType::kSnapshot);
  const std::string hs = EncodeHardState({Term(300), NodeId(2), LogIndex(1 << 30)});
  const std::string cc =
      EncodeConfChange({ConfTransition::kAuto, {{ConfChangeType::kAddVoter, NodeId(400)}}});
  const std::string cs = EncodeConfState(full.snapshot_meta.conf);
  const std::string meta = EncodeSnapshotMeta(full.snapshot_meta);
  std::string entry;
  AppendEntry(&entry, full.entries[3]);
  for (size_t n = 0; n < hs.size(); ++n)
    EXPECT_FALSE(DecodeHardState(hs.substr(0, n)).ok());
  for (size_t n = 0; n < cc.size(); ++n)
    EXPECT_FALSE(DecodeConfChange(cc.substr(0, n)).ok());
  for (size_t n = 0; n < cs.size(); ++n)
    EXPECT_FALSE(DecodeConfState(cs.substr(0, n)).ok());
  for (size_t n = 0; n < meta.size(); ++n)
    EXPECT_FALSE(DecodeSnapshotMeta(meta.substr(0, n)).ok());
  for (size_t n = 0; n < entry.size(); ++n) {
    std::string_view in = std::string_view(entry).substr(0, n);
    EXPECT_FALSE(DecodeEntry(&in).ok());
    EXPECT_EQ(in.size(), n);
  }
  EXPECT_THAT(std::string(DecodeHardState(hs + "x").status().message()),
              HasSubstr("1 trailing bytes"));
  EXPECT_FALSE(DecodeConfChange(cc + "x").ok());
  EXPECT_FALSE(DecodeConfState(cs + "x").ok());
  EXPECT_FALSE(DecodeSnapshotMeta(meta + "x").ok());
}

TEST(CodecTest, NamesWhereATruncationIs) {
  const std::string bytes = EncodeMessage(FullMessage(MessageType::kAppend));
  // The last entry's data is 300 bytes; cut inside it.
  const Message full = FullMessage(MessageType::kAppend);
  const size_t data_end = bytes.find(full.entries[3].data) + 300;
  ExpectInvalid(std::string_view(bytes).substr(0, data_end - 1),
                "truncated (length 300, 299 bytes left) in entry 3 data");
  ExpectInvalid("", "raft message: truncated in version");
  ExpectInvalid(std::string("\x01\x06\x01", 3), "raft message: truncated in from");
}

TEST(CodecTest, RejectsUnknownVersionAndTypes) {
  std::string bytes = EncodeMessage(Heartbeat());
  bytes[0] = 2;
  ExpectInvalid(bytes, "raft message: unknown format version 2");
  bytes[0] = 1;
  bytes[1] = kMessageTypeCount;
  ExpectInvalid(bytes, "raft message: unknown message type 14");

  // Entry header: type 5.
  Message m;
  m.entries = {{Term(0), LogIndex(1), EntryType::kNormal, "x"}};
  bytes = EncodeMessage(m);
  // version, type, mask (2 bytes), count, header.
  ASSERT_EQ(static_cast<uint8_t>(bytes[5]), 0x30);
  bytes[5] = 0x35;
  ExpectInvalid(bytes, "unknown entry type 5 in entry 0 header");
  bytes[5] = static_cast<char>(0xB0);
  ExpectInvalid(bytes, "reserved header bits set in entry 0 header");

  std::string cc =
      EncodeConfChange({ConfTransition::kAuto, {{ConfChangeType::kAddVoter, NodeId(4)}}});
  cc[3] = 3;  // version, transition, count, type
  EXPECT_THAT(std::string(DecodeConfChange(cc).status().message()),
              HasSubstr("conf change: unknown conf change type 3 in change 0 type"));
  cc[3] = 0;
  cc[1] = 3;
  EXPECT_THAT(std::string(DecodeConfChange(cc).status().message()),
              HasSubstr("unknown conf transition 3"));

  std::string cs = EncodeConfState({});
  cs.back() = 2;
  EXPECT_THAT(std::string(DecodeConfState(cs).status().message()),
              HasSubstr("invalid bool 2 in conf auto_leave"));
}

TEST(CodecTest, RejectsBadVarints) {
  // version, type, mask = from, then `from` as the given varint.
  const std::string head("\x01\x06\x01", 3);
  ExpectInvalid(head + std::string(10, '\x80') + "\x01", "raft message: varint overflow in from");
  ExpectInvalid(head + std::string(11, '\xFF'), "varint overflow in from");
  ExpectInvalid(head + std::string(9, '\xFF') + "\x02", "varint overflow in from");
  ExpectInvalid(head + std::string("\x85\x00", 2), "overlong varint in from");
  ExpectInvalid(head + std::string(1, '\0'), "default value encoded in from");
  // The largest value is fine.
  absl::StatusOr<Message> m = DecodeMessage(head + std::string(9, '\xFF') + "\x01");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->from, NodeId(kU64Max));
}

TEST(CodecTest, RejectsNonCanonicalEncodings) {
  ExpectInvalid(std::string("\x01\x00\x80\x80\x01", 5), "unknown fields 0x4000 in field mask");
  // Entry present with count 0.
  ExpectInvalid(std::string("\x01\x00\x80\x04\x00", 5), "default value encoded in entry count");
  // Data present but empty.
  ExpectInvalid(std::string("\x01\x00\x80\x40\x00", 5), "default value encoded in data");
  ExpectInvalid(std::string("\x01\x00\x80\x80\x00\x00", 6), "overlong varint in field mask");
  // Entry index written out although it is the implicit previous + 1.
  ExpectInvalid(std::string("\x01\x00\x80\x04\x01\x20\x01\x00", 8),
                "implicit value encoded in entry 0 index");
  // Entry term written out although it equals the previous term (0).
  ExpectInvalid(std::string("\x01\x00\x80\x04\x01\x10\x00\x00", 8),
                "implicit value encoded in entry 0 term");
  // Snapshot meta present but all default.
  ExpectInvalid(std::string("\x01\x00\x80\x08\x00\x00\x00\x00\x00\x00\x00", 11),
                "default value encoded in snapshot meta");
}

TEST(CodecTest, RejectsLengthsPastTheEnd) {
  // Data of claimed length 2^40 with 3 bytes present: refused before any
  // allocation.
  std::string bytes("\x01\x08\x80\x40", 4);
  bytes += "\x80\x80\x80\x80\x80\x20";
  bytes += "abc";
  ExpectInvalid(bytes, "truncated (length 1099511627776, 3 bytes left) in data");
  // 60000 entries claimed with 10 bytes present.
  bytes = std::string("\x01\x00\x80\x04", 4) + "\xE0\xD4\x03" + std::string(10, '\0');
  ExpectInvalid(bytes, "truncated (count 60000, 10 bytes left) in entry count");
  // A conf state list claiming a billion voters.
  std::string cs("\x01\x80\x94\xEB\xDC\x03", 6);
  EXPECT_THAT(std::string(DecodeConfState(cs).status().message()),
              HasSubstr("conf state: truncated (count 1000000000, 0 bytes left) in conf voters"));
}

TEST(CodecTest, RejectsTrailingBytes) {
  ExpectInvalid(EncodeMessage(Heartbeat()) + "zz", "raft message: 2 trailing bytes");
  ExpectInvalid(EncodeMessage(FullMessage(MessageType::kAppend)) + std::string(1, '\0'),
                "1 trailing bytes");
}

TEST(CodecTest, EnforcesEntryLimit) {
  // Exactly the limit is accepted.
  const Message at_limit = AppendOf(limits::kMaxEntriesPerMessage, 0);
  ExpectRoundTrip(at_limit);
  // One more is refused by the decoder (hand-built: the encoder asserts).
  std::string bytes("\x01\x00\x80\x04", 4);
  uint64_t n = limits::kMaxEntriesPerMessage + 1;
  while (n >= 0x80) {
    bytes.push_back(static_cast<char>(n | 0x80));
    n >>= 7;
  }
  bytes.push_back(static_cast<char>(n));
  for (size_t i = 0; i <= limits::kMaxEntriesPerMessage; ++i)
    bytes += std::string("\x30\x00", 2);
  ExpectInvalid(bytes, "raft message: 65537 entries exceed the limit of 65536");
}

TEST(CodecTest, EnforcesSizeLimit) {
  const std::string huge(limits::kMaxMessageBytes + 1, '\0');
  ExpectInvalid(huge, "raft message: 67108865 bytes exceed the limit of 67108864");
}

TEST(CodecDeathTest, EncoderAssertsLimits) {
  Message m = AppendOf(limits::kMaxEntriesPerMessage + 1, 0);
  EXPECT_DEATH(EncodeMessage(m), "kMaxEntriesPerMessage");
  Message big;
  big.data.assign(limits::kMaxMessageBytes, 'x');
  EXPECT_DEATH(EncodeMessage(big), "kMaxMessageBytes");
}

TEST(CodecTest, RandomByteFlipsNeverCrash) {
  std::mt19937_64 rng(7);
  std::vector<std::string> seeds = {EncodeMessage(Heartbeat()), EncodeMessage(AppendOf(4, 2))};
  for (int t = 0; t < kMessageTypeCount; ++t) {
    seeds.push_back(EncodeMessage(FullMessage(static_cast<MessageType>(t))));
  }
  int decoded = 0;
  for (int iter = 0; iter < 50000; ++iter) {
    std::string bytes = seeds[rng() % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      if (rng() % 4 == 0) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      } else {
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
      }
    }
    absl::StatusOr<Message> got = DecodeMessage(bytes);
    if (!got.ok()) {
      ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ++decoded;
    // Canonical: whatever decodes re-encodes to the same bytes.
    ASSERT_EQ(EncodeMessage(*got), bytes);
  }
  // Flips inside data bytes still decode: the property above was exercised.
  EXPECT_GT(decoded, 1000);
}

// ---------------------------------------------------------------- properties

// Integers biased toward the values that matter to varints: zero (omitted),
// small, each length boundary, and the maximum.
rc::Gen<uint64_t> GenInt() {
  return rc::gen::weightedOneOf<uint64_t>({
      {3, rc::gen::just<uint64_t>(0)},
      {4, rc::gen::inRange<uint64_t>(1, 300)},
      {2, rc::gen::arbitrary<uint64_t>()},
      {2, rc::gen::element<uint64_t>(127, 128, 16383, 16384, (1ull << 56) - 1, 1ull << 63,
                                     kU64Max - 1, kU64Max)},
  });
}

rc::Gen<std::vector<NodeId>> GenNodes() {
  return rc::gen::map(
      rc::gen::container<std::vector<uint64_t>>(GenInt()),
      [](const std::vector<uint64_t>& v) { return std::vector<NodeId>(v.begin(), v.end()); });
}

rc::Gen<SnapshotMeta> GenSnapshotMeta() {
  return rc::gen::exec([] {
    SnapshotMeta s;
    s.index = LogIndex(*GenInt());
    s.term = Term(*GenInt());
    if (*rc::gen::inRange(0, 3) == 0) {
      s.conf.voters = *GenNodes();
      s.conf.voters_outgoing = *GenNodes();
      s.conf.learners = *GenNodes();
      s.conf.learners_next = *GenNodes();
      s.conf.auto_leave = *rc::gen::arbitrary<bool>();
    }
    return s;
  });
}

rc::Gen<std::string> GenBytes() {
  return rc::gen::weightedOneOf<std::string>({
      {1, rc::gen::just(std::string())},
      {3, rc::gen::container<std::string>(rc::gen::arbitrary<char>())},
  });
}

// Entries that mostly follow on from the previous one (the common case the
// format compresses), sometimes jump, and sometimes change term.
rc::Gen<std::vector<Entry>> GenEntries(Term log_term, LogIndex index) {
  return rc::gen::exec([log_term, index] {
    const int n = *rc::gen::weightedOneOf<int>(
        {{2, rc::gen::just(0)}, {4, rc::gen::inRange(1, 12)}, {1, rc::gen::inRange(12, 200)}});
    std::vector<Entry> entries;
    Term term = log_term;
    LogIndex prev = index;
    for (int i = 0; i < n; ++i) {
      Entry e;
      e.index = *rc::gen::inRange(0, 5) == 0 ? LogIndex(*GenInt()) : prev + 1;
      e.term = *rc::gen::inRange(0, 4) == 0 ? Term(*GenInt()) : term;
      e.type = *rc::gen::element(EntryType::kNormal, EntryType::kConfChange);
      e.data = *GenBytes();
      e.time_us = static_cast<int64_t>(*GenInt() >> 1);
      entries.push_back(std::move(e));
      term = entries.back().term;
      prev = entries.back().index;
    }
    return entries;
  });
}

rc::Gen<Message> GenMessage() {
  return rc::gen::exec([] {
    Message m;
    m.type = static_cast<MessageType>(*rc::gen::inRange(0, kMessageTypeCount));
    m.from = NodeId(*GenInt());
    m.to = NodeId(*GenInt());
    m.term = Term(*GenInt());
    m.log_term = Term(*GenInt());
    m.index = LogIndex(*GenInt());
    m.entries = *GenEntries(m.log_term, m.index);
    m.commit = LogIndex(*GenInt());
    m.reject = *rc::gen::arbitrary<bool>();
    m.reject_hint = LogIndex(*GenInt());
    if (*rc::gen::inRange(0, 3) == 0) m.snapshot_meta = *GenSnapshotMeta();
    m.snapshot_offset = *GenInt();
    m.snapshot_size = *GenInt();
    m.data = *GenBytes();
    m.context = *GenInt();
    return m;
  });
}

RC_GTEST_PROP(CodecProperty, MessageRoundTrips, ()) {
  const Message m = *GenMessage();
  const std::string bytes = EncodeMessage(m);
  RC_ASSERT(bytes.size() == EncodedMessageSize(m));
  absl::StatusOr<Message> got = DecodeMessage(bytes);
  RC_ASSERT(got.status().ToString() == std::string("OK"));
  RC_ASSERT(MessageDiff(m, *got) == std::string());
}

RC_GTEST_PROP(CodecProperty, StrictPrefixesFail, ()) {
  const std::string bytes = EncodeMessage(*GenMessage());
  const size_t n = *rc::gen::inRange<size_t>(0, bytes.size());
  const absl::StatusOr<Message> got = DecodeMessage(std::string_view(bytes).substr(0, n));
  RC_ASSERT(!got.ok());
  RC_ASSERT(got.status().code() == absl::StatusCode::kInvalidArgument);
}

RC_GTEST_PROP(CodecProperty, MutationsFailOrReencodeIdentically, ()) {
  std::string bytes = EncodeMessage(*GenMessage());
  const int flips = *rc::gen::inRange(1, 4);
  for (int i = 0; i < flips; ++i) {
    const size_t at = *rc::gen::inRange<size_t>(0, bytes.size());
    bytes[at] = static_cast<char>(*rc::gen::arbitrary<uint8_t>());
  }
  const absl::StatusOr<Message> got = DecodeMessage(bytes);
  if (got.ok()) {
    RC_ASSERT(EncodeMessage(*got) == bytes);
  } else {
    RC_ASSERT(got.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

RC_GTEST_PROP(CodecProperty, StandaloneValuesRoundTrip, ()) {
  const HardState hs{Term(*GenInt()), NodeId(*GenInt()), LogIndex(*GenInt())};
  RC_ASSERT(*DecodeHardState(EncodeHardState(hs)) == hs);

  const SnapshotMeta meta = *GenSnapshotMeta();
  RC_ASSERT(*DecodeSnapshotMeta(EncodeSnapshotMeta(meta)) == meta);
  RC_ASSERT(*DecodeConfState(EncodeConfState(meta.conf)) == meta.conf);

  ConfChange cc;
  cc.transition = *rc::gen::element(ConfTransition::kAuto, ConfTransition::kJointImplicit,
                                    ConfTransition::kJointExplicit);
  const int n = *rc::gen::inRange(0, 6);
  for (int i = 0; i < n; ++i) {
    cc.changes.push_back({*rc::gen::element(ConfChangeType::kAddVoter, ConfChangeType::kAddLearner,
                                            ConfChangeType::kRemoveNode),
                          NodeId(*GenInt())});
  }
  RC_ASSERT(*DecodeConfChange(EncodeConfChange(cc)) == cc);

  const std::vector<Entry> entries = *GenEntries(Term(*GenInt()), LogIndex(*GenInt()));
  std::string buf;
  for (const Entry& e : entries)
    AppendEntry(&buf, e);
  std::string_view in = buf;
  for (const Entry& e : entries) {
    absl::StatusOr<Entry> got = DecodeEntry(&in);
    RC_ASSERT(got.ok());
    RC_ASSERT(*got == e);
  }
  RC_ASSERT(in.empty());
}

}  // namespace
}  // namespace bw::raft
