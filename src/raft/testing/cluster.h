// A scripted in-memory cluster of Raft cores for scenario tests: messages
// sit in one queue until the test delivers them; links can be cut; storage is
// an in-memory copy of what each Ready asked to persist, so a "restart"
// rebuilds a core from exactly its durable state. No I/O, no time.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/assert.h"
#include "raft/codec.h"
#include "raft/raft.h"

namespace bw::raft::testing {

struct Durable {
  HardState hs;
  Snapshot snapshot;
  std::vector<Entry> entries;  // following snapshot.meta.index
};

class Cluster {
 public:
  // Nodes 1..n are voters; extra ids in `spare` start empty (to be added).
  explicit Cluster(int n, std::function<void(Config&)> tweak = nullptr,
                   std::vector<uint64_t> spare = {})
      : tweak_(std::move(tweak)) {
    std::vector<NodeId> voters;
    for (int i = 1; i <= n; ++i)
      voters.push_back(NodeId(i));
    Restored boot = BootstrapState(voters);
    for (int i = 1; i <= n; ++i) {
      Durable& d = durable_[NodeId(i)];
      d.hs = boot.hard_state;
      d.entries = boot.entries;
      Restart(i);
    }
    for (uint64_t s : spare) {
      durable_[NodeId(s)];
      Restart(s);
    }
    Flush();  // applies the bootstrap configuration
  }

  Raft& node(uint64_t id) { return *nodes_.at(NodeId(id)); }
  bool up(uint64_t id) const { return nodes_.count(NodeId(id)) > 0; }
  std::vector<std::string>& applied(uint64_t id) { return applied_[NodeId(id)]; }
  Durable& durable(uint64_t id) { return durable_[NodeId(id)]; }

  // Processes every Ready of every node (persist, queue messages, apply).
  void Flush() {
    for (auto& [id, r] : nodes_) {
      while (r->HasReady()) {
        Ready rd = r->GetReady();
        Persist(id, rd);
        for (Message& m : rd.messages) {
          // Every message crosses the wire codec, as in production.
          absl::StatusOr<Message> dec = DecodeMessage(EncodeMessage(m));
          BW_ASSERT(dec.ok());
          queue_.push_back(std::move(*dec));
        }
        if (!rd.snapshot.Empty()) {
          applied_[id].clear();
          applied_[id].push_back("snapshot@" + std::to_string(rd.snapshot.meta.index.value()));
        }
        for (const Entry& e : rd.committed) {
          if (e.type == EntryType::kConfChange) {
            absl::StatusOr<ConfChange> cc = DecodeConfChange(e.data);
            BW_ASSERT(cc.ok());
            r->ApplyConfChange(*cc);
          } else if (!e.data.empty()) {
            applied_[id].push_back(e.data);
          }
        }
        for (const ReadState& rs : rd.read_states)
          reads_[id].push_back(rs);
        r->Advance(rd);
      }
    }
  }

  // Delivers queued messages (and the ones they cause) until quiet.
  void Deliver(int max_rounds = 1000) {
    Flush();
    for (int round = 0; round < max_rounds && !queue_.empty(); ++round) {
      std::deque<Message> q = std::move(queue_);
      queue_.clear();
      for (Message& m : q) {
        if (!nodes_.count(m.to) || Cut(m.from, m.to)) continue;
        if (drop_ && drop_(m)) continue;
        if (transform_) transform_(m);
        if (duplicate_ && duplicate_(m)) (void)nodes_.at(m.to)->Step(Message(m));
        (void)nodes_.at(m.to)->Step(std::move(m));
      }
      Flush();
    }
  }

  void Tick(uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i)
      node(id).Tick();
    Flush();
  }
  void TickAll(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, r] : nodes_)
        r->Tick();
      Deliver();
    }
  }

  // Runs node `id`'s election to completion.
  void Elect(uint64_t id) {
    node(id).Campaign();
    Deliver();
  }

  void Propose(uint64_t id, const std::string& data) {
    BW_ASSERT(node(id).Propose(data).ok());
    Deliver();
  }

  void Isolate(uint64_t id) {
    for (auto& [other, r] : durable_) {
      if (other != NodeId(id)) {
        cut_.insert({NodeId(id), other});
        cut_.insert({other, NodeId(id)});
      }
    }
  }
  void CutLink(uint64_t a, uint64_t b) {
    cut_.insert({NodeId(a), NodeId(b)});
    cut_.insert({NodeId(b), NodeId(a)});
  }
  void CutOneWay(uint64_t from, uint64_t to) { cut_.insert({NodeId(from), NodeId(to)}); }
  void Heal() { cut_.clear(); }
  void SetDrop(std::function<bool(const Message&)> drop) { drop_ = std::move(drop); }
  // Messages for which `dup` answers true are delivered twice.
  void SetDuplicate(std::function<bool(const Message&)> dup) { duplicate_ = std::move(dup); }
  // Rewrites messages in flight (after the drop filter).
  void SetTransform(std::function<void(Message&)> t) { transform_ = std::move(t); }
  std::deque<Message>& queue() { return queue_; }
  std::vector<ReadState>& reads(uint64_t id) { return reads_[NodeId(id)]; }

  void Crash(uint64_t id) { nodes_.erase(NodeId(id)); }
  void Restart(uint64_t id) {
    const Durable& d = durable_[NodeId(id)];
    Restored r;
    r.hard_state = d.hs;
    r.snapshot = d.snapshot;
    r.entries = d.entries;
    r.applied = d.snapshot.meta.index;
    r.conf = d.snapshot.meta.conf;
    applied_[NodeId(id)].clear();
    auto created = Raft::Create(MakeConfig(NodeId(id)), std::move(r));
    BW_ASSERT(created.ok());
    nodes_[NodeId(id)] = std::move(*created);
  }

  // Snapshots node `id`'s applied state and compacts its log, keeping
  // `keep` entries behind the snapshot.
  void Compact(uint64_t id, uint64_t keep = 0) {
    std::string data;
    for (const std::string& s : applied_[NodeId(id)])
      data += s + ";";
    node(id).Compact(data, keep);
    Durable& d = durable_[NodeId(id)];
    d.snapshot = node(id).snapshot();
    LogIndex first = node(id).log().first_index();
    std::vector<Entry> kept;
    for (const Entry& e : d.entries) {
      if (e.index >= first) kept.push_back(e);
    }
    // The durable log restarts after the snapshot.
    d.entries.clear();
    for (const Entry& e : kept) {
      if (e.index > d.snapshot.meta.index) d.entries.push_back(e);
    }
  }

  uint64_t Leader() {
    for (auto& [id, r] : nodes_) {
      if (r->role() == Role::kLeader) return id.value();
    }
    return 0;
  }

 private:
  Config MakeConfig(NodeId id) {
    Config c;
    c.id = id;
    c.random_seed = 42;
    if (tweak_) tweak_(c);
    return c;
  }

  void Persist(NodeId id, const Ready& rd) {
    Durable& d = durable_[id];
    if (rd.hard_state) d.hs = *rd.hard_state;
    if (!rd.snapshot.Empty()) {
      d.snapshot = rd.snapshot;
      d.entries.clear();
    }
    for (const Entry& e : rd.entries) {
      LogIndex first = d.snapshot.meta.index + 1;
      BW_ASSERT_GE(e.index, first);
      size_t pos = e.index - first;
      if (pos < d.entries.size()) d.entries.resize(pos);
      d.entries.push_back(e);
    }
  }

  bool Cut(NodeId from, NodeId to) const { return cut_.count({from, to}) > 0; }

  std::function<void(Config&)> tweak_;
  std::map<NodeId, std::unique_ptr<Raft>> nodes_;
  std::map<NodeId, Durable> durable_;
  std::map<NodeId, std::vector<std::string>> applied_;
  std::map<NodeId, std::vector<ReadState>> reads_;
  std::deque<Message> queue_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::function<bool(const Message&)> drop_;
  std::function<bool(const Message&)> duplicate_;
  std::function<void(Message&)> transform_;
};

}  // namespace bw::raft::testing
