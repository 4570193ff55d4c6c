// libFuzzer target: the Raft codec (raft/codec.h). Feeds the same bytes to
// every decoder: messages, entry records, hard state, conf change, conf
// state and snapshot meta. The format is canonical, so whatever decodes must
// re-encode to exactly the input and decode again to an equal value; a
// rejection must be INVALID_ARGUMENT. Crashes, sanitizer reports and failed
// assertions are findings.
//
// Run: make fuzz-smoke (briefly) or make fuzz (FUZZ_TIME seconds per target);
// docs/fuzzing.md.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/assert.h"
#include "fuzz/fuzz_util.h"
#include "raft/codec.h"

namespace bw::raft {
namespace {

// Message has no operator==.
bool MessagesEqual(const Message& a, const Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.entries == b.entries &&
         a.commit == b.commit && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.snapshot_meta == b.snapshot_meta && a.snapshot_offset == b.snapshot_offset &&
         a.snapshot_size == b.snapshot_size && a.data == b.data && a.context == b.context;
}

void FuzzMessage(std::string_view in) {
  absl::StatusOr<Message> m = DecodeMessage(in);
  if (!m.ok()) {
    BW_ASSERT(absl::IsInvalidArgument(m.status()));
    return;
  }
  const std::string again = EncodeMessage(*m);
  BW_ASSERT(again == in);
  absl::StatusOr<Message> m2 = DecodeMessage(again);
  BW_ASSERT(m2.ok());
  BW_ASSERT(MessagesEqual(*m, *m2));
}

template <typename T>
void FuzzValue(std::string_view in, absl::StatusOr<T> (*decode)(std::string_view),
               std::string (*encode)(const T&)) {
  absl::StatusOr<T> v = decode(in);
  if (!v.ok()) {
    BW_ASSERT(absl::IsInvalidArgument(v.status()));
    return;
  }
  const std::string again = encode(*v);
  BW_ASSERT(again == in);
  absl::StatusOr<T> v2 = decode(again);
  BW_ASSERT(v2.ok());
  BW_ASSERT(*v == *v2);
}

void FuzzEntries(std::string_view in) {
  const std::string_view whole = in;
  std::string again;
  while (!in.empty()) {
    absl::StatusOr<Entry> e = DecodeEntry(&in);
    if (!e.ok()) {
      BW_ASSERT(absl::IsInvalidArgument(e.status()));
      return;
    }
    AppendEntry(&again, *e);
  }
  BW_ASSERT(again == whole);
}

}  // namespace
}  // namespace bw::raft

namespace {

// One input per value kind, built by the encoders.
std::vector<std::string> Seeds() {
  using namespace bw::raft;
  using bw::LogIndex;
  using bw::NodeId;
  using bw::Term;
  std::vector<std::string> out;
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = NodeId(1);
  hb.to = NodeId(2);
  hb.term = Term(3);
  hb.commit = LogIndex(7);
  out.push_back(EncodeMessage(hb));
  Message app;
  app.type = MessageType::kAppend;
  app.from = NodeId(1);
  app.to = NodeId(3);
  app.term = Term(4);
  app.log_term = Term(3);
  app.index = LogIndex(9);
  app.commit = LogIndex(8);
  app.entries.push_back(Entry{Term(3), LogIndex(10), EntryType::kNormal, "put a=1"});
  app.entries.push_back(Entry{Term(4), LogIndex(11), EntryType::kNormal, ""});
  ConfChange cc;
  cc.changes.push_back(ConfChangeSingle{ConfChangeType::kAddLearner, NodeId(4)});
  app.entries.push_back(Entry{Term(4), LogIndex(12), EntryType::kConfChange, EncodeConfChange(cc)});
  out.push_back(EncodeMessage(app));
  Message rej;
  rej.type = MessageType::kAppendResponse;
  rej.from = NodeId(3);
  rej.to = NodeId(1);
  rej.term = Term(4);
  rej.index = LogIndex(9);
  rej.reject = true;
  rej.reject_hint = LogIndex(5);
  rej.log_term = Term(2);
  out.push_back(EncodeMessage(rej));
  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = NodeId(1);
  snap.to = NodeId(2);
  snap.term = Term(5);
  snap.snapshot_meta.index = LogIndex(100);
  snap.snapshot_meta.term = Term(5);
  snap.snapshot_meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  snap.snapshot_meta.conf.learners = {NodeId(4)};
  snap.snapshot_offset = 0;
  snap.snapshot_size = 6;
  snap.data = "abcdef";
  out.push_back(EncodeMessage(snap));
  Message vote;
  vote.type = MessageType::kPreVote;
  vote.from = NodeId(2);
  vote.to = NodeId(1);
  vote.term = Term(6);
  vote.log_term = Term(5);
  vote.index = LogIndex(100);
  vote.context = 1;
  out.push_back(EncodeMessage(vote));
  out.push_back(EncodeHardState(HardState{Term(5), NodeId(2), LogIndex(99)}));
  ConfChange joint;
  joint.transition = ConfTransition::kJointExplicit;
  joint.changes.push_back(ConfChangeSingle{ConfChangeType::kAddVoter, NodeId(4)});
  joint.changes.push_back(ConfChangeSingle{ConfChangeType::kRemoveNode, NodeId(1)});
  out.push_back(EncodeConfChange(joint));
  ConfState cs;
  cs.voters = {NodeId(1), NodeId(2)};
  cs.voters_outgoing = {NodeId(1), NodeId(3)};
  cs.learners_next = {NodeId(3)};
  cs.auto_leave = true;
  out.push_back(EncodeConfState(cs));
  out.push_back(EncodeSnapshotMeta(snap.snapshot_meta));
  std::string entries;
  AppendEntry(&entries, Entry{Term(1), LogIndex(1), EntryType::kNormal, "x"});
  AppendEntry(&entries, Entry{Term(1), LogIndex(2), EntryType::kNormal, "yy"});
  AppendEntry(&entries, Entry{Term(2), LogIndex(2), EntryType::kNormal, ""});
  out.push_back(entries);
  return out;
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bw::raft;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  FuzzMessage(in);
  FuzzValue<HardState>(in, DecodeHardState, EncodeHardState);
  FuzzValue<ConfChange>(in, DecodeConfChange, EncodeConfChange);
  FuzzValue<ConfState>(in, DecodeConfState, EncodeConfState);
  FuzzValue<SnapshotMeta>(in, DecodeSnapshotMeta, EncodeSnapshotMeta);
  FuzzEntries(in);
  return 0;
}
