// libFuzzer target: the Raft core (raft/raft.h) driven through whole
// message exchanges. Three nodes, an in-memory durable store per node and a
// message queue; the input is a program of steps: tick a node, deliver,
// drop or duplicate a queued message, propose, propose a configuration
// change, crash and restart a node from its durable state, compact a log,
// campaign, transfer leadership, ask for a read index; and, adversarially,
// deliver a queued message with a field changed, or a message decoded from
// raw fuzz bytes. Every message crosses the wire codec, as in production.
//
// Asserted on every node at every Ready, whatever arrives (these hold
// against any peer, honest or not):
//   - no crash, sanitizer report or failed assertion in the core;
//   - the durable term never goes backward, a vote once cast in a term is
//     never changed, the durable commit index never decreases and never
//     passes the durable log;
//   - persisted entries continue the durable log (no gap); committed entries
//     are handed out in index order, each at most the durable commit index,
//     and a snapshot handed out is past what was applied.
// While every message is one an honest node sent (possibly lost, duplicated,
// reordered or delayed; nodes crashing), the cluster-wide properties too:
//   - election safety: at most one leader per term;
//   - state machine safety: every node applies the same entry at an index
//     and reaches the same state digest there (snapshots included).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "core/splitmix.h"
#include "fuzz/fuzz_util.h"
#include "raft/codec.h"
#include "raft/raft.h"

namespace {

using namespace bw::raft;
using bw::LogIndex;
using bw::NodeId;
using bw::Term;

constexpr int kNodes = 3;
constexpr size_t kMaxQueue = 256;
constexpr int kMaxSteps = 3000;

uint64_t Mix(uint64_t h, std::string_view s) {
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ULL;
  return bw::core::SplitMix64(h);
}

class Harness {
 public:
  explicit Harness(bw::fuzz::Input& in) : in_(in) {
    const uint8_t flags = in.Byte();
    tweak_.pre_vote = (flags & 1) == 0;
    tweak_.check_quorum = (flags & 2) == 0;
    tweak_.lease_reads = tweak_.check_quorum && (flags & 4) != 0;
    tweak_.forward_proposals = (flags & 8) == 0;
    tweak_.max_append_bytes = (flags & 16) ? 64 : tweak_.max_append_bytes;
    tweak_.snapshot_chunk_bytes = (flags & 32) ? 7 : tweak_.snapshot_chunk_bytes;
    tweak_.random_seed = in.Byte() + 1;
    std::vector<NodeId> voters;
    for (int i = 1; i <= kNodes; ++i)
      voters.push_back(NodeId(i));
    const Restored boot = BootstrapState(voters);
    for (int i = 1; i <= kNodes; ++i) {
      nodes_[i].durable_hs = boot.hard_state;
      nodes_[i].entries = boot.entries;
      Restart(i);
    }
  }

  void Run() {
    for (int step = 0; step < kMaxSteps && !in_.empty(); ++step) {
      const int node = 1 + in_.Below(kNodes);
      switch (in_.Below(16)) {
        case 0:
        case 1:
          raft(node).Tick();
          break;
        case 2:
        case 3:
        case 4:
          DeliverAt(in_.Below(256), /*keep=*/false);
          break;
        case 5:
          if (!queue_.empty()) queue_.erase(queue_.begin() + in_.Below(queue_.size()));
          break;
        case 6:
          DeliverAt(in_.Below(256), /*keep=*/true);
          break;
        case 7:
          (void)raft(node).Propose(
              absl::StrCat("p", ++proposals_, ":", std::string(in_.Bytes(16))));
          break;
        case 8:
          ProposeConfChange(node);
          break;
        case 9:
          nodes_[node].raft.reset();
          Restart(node);
          break;
        case 10:
          Compact(node);
          break;
        case 11:
          raft(node).Campaign();
          break;
        case 12:
          (void)raft(node).TransferLeadership(NodeId(1 + in_.Below(kNodes)));
          (void)raft(node).ReadIndex(in_.Byte());
          break;
        case 13:
          DeliverAll();
          break;
        case 14:
          MutateAndDeliver();
          break;
        default:
          InjectRaw(node);
          break;
      }
      for (int i = 1; i <= kNodes; ++i)
        Flush(i);
    }
  }

 private:
  struct Node {
    std::unique_ptr<Raft> raft;
    // What the node made durable.
    HardState durable_hs;
    Snapshot snapshot;
    std::vector<Entry> entries;  // following snapshot.meta.index
    // The state machine: applied index and a digest of what was applied.
    LogIndex applied;
    uint64_t digest = 0;
  };

  Raft& raft(int i) { return *nodes_[i].raft; }

  LogIndex DurableLast(const Node& n) const { return n.snapshot.meta.index + n.entries.size(); }

  void Restart(int i) {
    Node& n = nodes_[i];
    Restored r;
    r.hard_state = n.durable_hs;
    r.snapshot = n.snapshot;
    r.entries = n.entries;
    r.applied = n.snapshot.meta.index;
    r.conf = n.snapshot.meta.conf;
    n.applied = n.snapshot.meta.index;
    n.digest = 0;
    if (!n.snapshot.Empty()) BW_ASSERT(absl::SimpleAtoi(n.snapshot.data, &n.digest));
    Config c = tweak_;
    c.id = NodeId(i);
    absl::StatusOr<std::unique_ptr<Raft>> created = Raft::Create(c, std::move(r));
    BW_ASSERT_MSG(created.ok(), created.status().ToString());
    n.raft = std::move(*created);
  }

  void ProposeConfChange(int node) {
    ConfChange cc;
    const int kind = in_.Below(5);
    if (kind == 0) {
      cc.changes.push_back({ConfChangeType::kAddLearner, NodeId(1 + in_.Below(4))});
    } else if (kind == 1) {
      cc.changes.push_back({ConfChangeType::kRemoveNode, NodeId(1 + in_.Below(4))});
    } else if (kind == 2) {
      cc.changes.push_back({ConfChangeType::kAddVoter, NodeId(1 + in_.Below(4))});
    } else if (kind == 3) {
      cc.transition = static_cast<ConfTransition>(in_.Below(3));
      cc.changes.push_back({ConfChangeType::kAddLearner, NodeId(1 + in_.Below(4))});
      cc.changes.push_back({ConfChangeType::kAddVoter, NodeId(1 + in_.Below(4))});
    }  // else: leave a joint configuration
    (void)raft(node).ProposeConfChange(cc);
  }

  void Compact(int i) {
    Node& n = nodes_[i];
    if (n.applied <= n.snapshot.meta.index) return;
    n.raft->Compact(absl::StrCat(n.digest), in_.Below(4));
    n.snapshot = n.raft->snapshot();
    BW_ASSERT(n.snapshot.meta.index == n.applied);
    std::vector<Entry> kept;
    for (const Entry& e : n.entries) {
      if (e.index > n.snapshot.meta.index) kept.push_back(e);
    }
    n.entries = std::move(kept);
  }

  void Step(Message m) {
    const uint64_t to = m.to.value();
    if (to < 1 || to > kNodes) return;  // a node that does not exist (yet)
    (void)nodes_[to].raft->Step(std::move(m));
  }

  void DeliverAt(size_t pos, bool keep) {
    if (queue_.empty()) return;
    pos %= queue_.size();
    Message m = queue_[pos];
    if (!keep) queue_.erase(queue_.begin() + pos);
    Step(std::move(m));
  }

  void DeliverAll() {
    std::vector<Message> q = std::move(queue_);
    queue_.clear();
    for (Message& m : q)
      Step(std::move(m));
  }

  // A queued message with one field changed: what a faulty or malicious
  // peer could send. From here on only the per-node properties hold.
  void MutateAndDeliver() {
    if (queue_.empty()) return;
    Message m = queue_[in_.Below(queue_.size())];
    const uint64_t delta = in_.Below(5);
    switch (in_.Below(9)) {
      case 0:
        m.term = Term(m.term.value() + delta);
        break;
      case 1:
        m.index = LogIndex(m.index.value() + delta);
        break;
      case 2:
        m.log_term = Term(m.log_term.value() + delta);
        break;
      case 3:
        m.commit = LogIndex(m.commit.value() + delta);
        break;
      case 4:
        m.reject = !m.reject;
        m.reject_hint = LogIndex(in_.Below(8));
        break;
      case 5:
        m.from = NodeId(1 + in_.Below(4));
        break;
      case 6:
        m.type = static_cast<MessageType>(in_.Below(kMessageTypeCount));
        break;
      case 7:
        for (Entry& e : m.entries)
          e.term = Term(e.term.value() + delta);
        break;
      default:
        m.snapshot_offset += delta;
        m.snapshot_meta.index = LogIndex(m.snapshot_meta.index.value() + delta);
        break;
    }
    // Only what the codec can carry reaches a node.
    if (m.entries.size() > bw::limits::kMaxEntriesPerMessage ||
        EncodedMessageSize(m) > bw::limits::kMaxMessageBytes) {
      return;
    }
    absl::StatusOr<Message> wire = DecodeMessage(EncodeMessage(m));
    if (!wire.ok()) return;
    byzantine_ = true;
    Step(std::move(*wire));
  }

  void InjectRaw(int node) {
    absl::StatusOr<Message> m = DecodeMessage(in_.Bytes(200));
    if (!m.ok()) return;
    m->to = NodeId(node);
    byzantine_ = true;
    Step(std::move(*m));
  }

  void Flush(int i) {
    Node& n = nodes_[i];
    while (n.raft->HasReady()) {
      Ready rd = n.raft->GetReady();
      if (rd.soft_state && rd.soft_state->role == Role::kLeader && !byzantine_) {
        auto [it, fresh] = leader_of_term_.emplace(rd.soft_state->term.value(), i);
        BW_ASSERT_MSG(fresh || it->second == i,
                      absl::StrCat("two leaders in term ", rd.soft_state->term.value()));
      }
      // 1. persist
      if (rd.hard_state) {
        const HardState& hs = *rd.hard_state;
        BW_ASSERT_GE(hs.term, n.durable_hs.term);
        if (hs.term == n.durable_hs.term && n.durable_hs.vote != bw::kNoNode) {
          BW_ASSERT(hs.vote == n.durable_hs.vote);
        }
        BW_ASSERT_GE(hs.commit, n.durable_hs.commit);
        n.durable_hs = hs;
      }
      if (!rd.snapshot.Empty()) {
        BW_ASSERT_GT(rd.snapshot.meta.index, n.applied);
        n.snapshot = rd.snapshot;
        n.entries.clear();
      }
      for (const Entry& e : rd.entries) {
        BW_ASSERT_GT(e.index, n.snapshot.meta.index);
        BW_ASSERT_LE(e.index, DurableLast(n) + 1);
        n.entries.resize(e.index - n.snapshot.meta.index - 1);
        n.entries.push_back(e);
      }
      BW_ASSERT_LE(n.durable_hs.commit, DurableLast(n));
      // 2. send
      for (const Message& m : rd.messages) {
        absl::StatusOr<Message> wire = DecodeMessage(EncodeMessage(m));
        BW_ASSERT(wire.ok());
        if (queue_.size() >= kMaxQueue) queue_.erase(queue_.begin());
        queue_.push_back(std::move(*wire));
      }
      // 3. apply
      if (!rd.snapshot.Empty()) {
        BW_ASSERT(absl::SimpleAtoi(rd.snapshot.data, &n.digest));
        n.applied = rd.snapshot.meta.index;
        Observe(n.applied, rd.snapshot.meta.term, nullptr, n.digest);
      }
      for (const Entry& e : rd.committed) {
        BW_ASSERT_EQ(e.index, n.applied + 1);
        BW_ASSERT_LE(e.index, n.durable_hs.commit);
        if (e.type == EntryType::kConfChange) {
          absl::StatusOr<ConfChange> cc = DecodeConfChange(e.data);
          BW_ASSERT(cc.ok());
          n.raft->ApplyConfChange(*cc);
        }
        n.digest = Mix(n.digest ^ e.index.value(), e.data);
        n.applied = e.index;
        Observe(e.index, e.term, &e.data, n.digest);
      }
      n.raft->Advance(rd);
    }
  }

  // State machine safety across nodes (honest runs only).
  void Observe(LogIndex index, Term term, const std::string* data, uint64_t digest) {
    if (byzantine_) return;
    auto [it, fresh] = applied_.emplace(index.value(), Applied{term.value(), digest, {}});
    if (data != nullptr && fresh) it->second.data = *data;
    if (fresh) return;
    BW_ASSERT_MSG(it->second.digest == digest,
                  absl::StrCat("state digests differ at index ", index.value()));
    if (data != nullptr) {
      BW_ASSERT_EQ(it->second.term, term.value());
    }
  }

  struct Applied {
    uint64_t term;
    uint64_t digest;
    std::string data;
  };

  bw::fuzz::Input& in_;
  Config tweak_;
  Node nodes_[kNodes + 1];
  std::vector<Message> queue_;
  bool byzantine_ = false;
  uint64_t proposals_ = 0;
  std::map<uint64_t, int> leader_of_term_;
  std::map<uint64_t, Applied> applied_;
};

std::vector<std::string> Seeds() {
  std::vector<std::string> out;
  // Node choice, then step kind: elect node 1, deliver everything, propose,
  // deliver, tick, compact, crash and restart.
  const std::string elect_and_write = {
      0, 7,                                                // flags, seed
      0, 11,                                               // node 1 campaigns
      0, 13, 0, 13,  0,   13,                              // deliver rounds
      0, 7,  3, 'a', 'b', 'c', 0,  13, 0,  13,             // propose "abc"
      1, 7,  1, 'x', 0,   13,  0,  13, 0,  13,             // propose via node 2 (forwarded)
      0, 0,  0, 0,   0,   13,  0,  13,                     // ticks, heartbeats
      0, 10, 1, 1,   9,   0,   13, 0,  13,                 // compact node 1, restart node 2
      2, 10, 0, 0,   8,   0,   2,  0,  13, 0,  13, 0, 13,  // compact 3; add learner 3
  };
  out.push_back(elect_and_write);
  std::string ticks = {1, 3};
  for (int i = 0; i < 60; ++i) {
    ticks += static_cast<char>(i % 3);
    ticks += static_cast<char>(i % 4 == 0 ? 13 : 0);
  }
  out.push_back(ticks);
  std::string mutate = elect_and_write;
  mutate += {0, 7, 1, 'q', 1, 14, 0, 0, 2};  // propose, then a message with its term raised
  mutate += {0, 13, 2, 15};
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = NodeId(2);
  hb.to = NodeId(3);
  hb.term = Term(9);
  hb.commit = LogIndex(40);
  const std::string raw = EncodeMessage(hb);
  mutate += static_cast<char>(raw.size());
  mutate += raw;
  out.push_back(mutate);
  return out;
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bw::fuzz::Input in(data, size);
  Harness h(in);
  h.Run();
  return 0;
}
