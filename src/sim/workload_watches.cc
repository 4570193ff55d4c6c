// The watches workload (Workload::kWatches): each member's watch hub
// (member::WatchHub) on its MVCC store, as production runs them, watched
// through every fault and checked by check::WatchStreamChecker.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

namespace {

// The revision of the first write: a watcher of every key starts there.
constexpr int64_t kFirstWrite = 2;

std::string Key(uint64_t k) {
  return absl::StrCat("w/", k);
}

}  // namespace

bool Simulation::WatchConnected(const Client& c) {
  if (c.watch_node == kNoNode) return false;
  auto gen = hub_gen_.find(c.watch_node);
  return members_.count(c.watch_node) && gen != hub_gen_.end() && gen->second == c.watch_gen;
}

void Simulation::ConnectWatcher(Client& c, NodeId id) {
  member::WatchHub& hub = members_.at(id)->watch_hub();
  if (WatchConnected(c)) members_.at(c.watch_node)->watch_hub().RemoveStream(c.watch_stream);
  const uint64_t gen = hub_gen_[id];
  c.watch_node = id;
  c.watch_gen = gen;
  const int64_t start = watch_checker_.next(c.id) == 0 ? kFirstWrite : watch_checker_.next(c.id);
  watch_checker_.OnStart(c.id, start);
  Client* cp = &c;
  c.watch_stream = hub.AddStream([this, cp, gen](member::WatchReply r) {
    OnWatchReply(*cp, gen, r.Full());
    return true;
  });
  etcdserverpb::WatchRequest req;
  etcdserverpb::WatchCreateRequest* create = req.mutable_create_request();
  create->set_key(std::string(1, '\0'));  // every key
  create->set_range_end(std::string(1, '\0'));
  create->set_start_revision(start);
  hub.OnRequest(c.watch_stream, req);
}

void Simulation::OnWatchReply(Client& c, uint64_t gen, const etcdserverpb::WatchResponse& r) {
  if (failed() || c.watch_gen != gen) return;
  if (r.canceled()) {
    if (r.compact_revision() > 0) {
      ++result_.stats.watch_compactions;
      // As etcd's documentation tells a client, it watches again from the
      // compaction point (whose own events must all still be there): the
      // checker's next revision for it.
      watch_checker_.OnCompacted(c.id, r.compact_revision());
    }
    c.watch_node = kNoNode;  // reconnects on its next step
  } else if (r.events_size() > 0) {
    std::vector<check::WatchStreamChecker::Event> events;
    for (const mvccpb::Event& e : r.events()) {
      events.push_back({e.kv().mod_revision(),
                        absl::StrCat(e.type() == mvccpb::Event::PUT ? "PUT " : "DEL ", e.kv().key(),
                                     "=", e.kv().value(), " v", e.kv().version())});
    }
    result_.stats.watch_events += events.size();
    watch_checker_.OnEvents(c.id, events);
  }
  if (!watch_checker_.ok()) {
    Fail(absl::StrCat(watch_checker_.violation(), " (through node ", c.watch_node.value(), ")"));
  }
}

void Simulation::WatchesClientStep(Client& c) {
  // The first half of the clients watch, the rest write.
  c.watcher = c.id <= static_cast<uint64_t>(std::max(1, o_.clients / 2));
  if (!c.watcher) {
    WriterStep(c);
    return;
  }
  // A watcher whose member went away resumes on another (or the same one,
  // restarted); now and then one moves on its own, to a member that may be
  // behind the one it left.
  std::vector<NodeId> live;
  for (NodeId id : Members()) {
    if (Live(id) != nullptr) live.push_back(id);
  }
  const bool connected = WatchConnected(c);
  if (!live.empty() && (!connected || rng().Chance(0.05))) {
    if (connected) ++result_.stats.watch_resumes;
    ConnectWatcher(c, live[rng().Below(live.size())]);
  }
  ScheduleClient(c, 100'000 + static_cast<int64_t>(rng().Below(400'000)));
}

void Simulation::WriterStep(Client& c) {
  // The store of a live node only: a crashed node's went with it.
  auto found = stores_.find(c.target);
  kv::MvccStore* store =
      Live(c.target) != nullptr && found != stores_.end() ? found->second : nullptr;
  bulwark::internal::Request r;
  const uint64_t dice = rng().Below(100);
  const uint64_t k = rng().Below(static_cast<uint64_t>(std::max(1, o_.keys)));
  if (dice < 60) {
    r.mutable_put()->set_key(Key(k));
    r.mutable_put()->set_value(absl::StrCat(c.id, ".", c.seq + 1));
  } else if (dice < 75) {
    r.mutable_delete_range()->set_key(Key(k));
  } else if (dice < 95) {
    // Two keys in one revision: a watcher gets them together.
    etcdserverpb::TxnRequest* t = r.mutable_txn();
    for (uint64_t key : {k, k + 1000}) {
      etcdserverpb::PutRequest* p = t->add_success()->mutable_request_put();
      p->set_key(Key(key));
      p->set_value(absl::StrCat(c.id, ".", c.seq + 1));
    }
  } else if (store != nullptr && store->revision() > 5) {
    // Compaction a little behind the head: watchers that are behind (on a
    // lagging member, or resuming) find their history gone.
    r.mutable_compaction()->set_revision(store->revision() - static_cast<int64_t>(rng().Below(5)));
  } else {
    r.mutable_put()->set_key(Key(k));
  }
  Finish finish = StartOp(c, [this](Client&, bool) {
    return o_.client_think_us +
           static_cast<int64_t>(rng().Below(static_cast<uint64_t>(o_.client_think_us)));
  });
  ++result_.stats.writes;
  ProposeAsMember(c.target, std::move(r), kv::MakeRequestId(c.id, ++c.seq),
                  [finish](absl::StatusOr<std::any> res) { finish(res.ok()); });
}

void Simulation::CheckWatchesCaughtUp(NodeId leader) {
  // Every watcher, on the leader's hub, must get everything up to the
  // leader's revision (a compaction may send it further along first).
  const int64_t head = stores_.at(leader)->revision();
  for (Client& c : clients_) {
    if (!c.watcher) continue;
    for (int tries = 0; tries < 3 && !failed() && watch_checker_.next(c.id) <= head; ++tries)
      ConnectWatcher(c, leader);
    if (failed()) return;
    if (watch_checker_.next(c.id) != head + 1) {
      Fail(absl::StrCat("liveness: watcher ", c.id, " on the leader got revisions up to ",
                        watch_checker_.next(c.id) - 1, ", the leader is at ", head));
      return;
    }
  }
  if (o_.clients > 1 && result_.stats.watch_events == 0) {
    Fail("watches: no watcher saw an event");
  }
}

}  // namespace bw::sim::detail
