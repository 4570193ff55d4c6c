// The exactly-once workload (Workload::kExactlyOnce): keyed etcd writes on
// the MVCC store, retried with the same idempotency key through every fault.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/assert.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

// --- The exactly-once workload ---

int64_t Simulation::NewKeyedOp(Client& c) {
  KeyedOp op;
  op.client = c.id;
  op.invoke_stamp = Stamp();
  uint64_t n = ++c.keyed_started;
  op.seen.value = absl::StrCat("c", c.id, ".", n);
  op.seen.key = absl::StrCat("c", c.id, "-", n);
  // Now and then a different request under a key already answered (a
  // client bug, or a key generator that repeats): it must be refused.
  std::vector<int64_t> done;
  for (int64_t i = static_cast<int64_t>(keyed_.size()) - 1; i >= 0 && done.size() < 8; --i) {
    const KeyedOp& k = keyed_[i];
    if (k.client == c.id && k.seen.answered && !k.seen.reuse) done.push_back(i);
  }
  if (!done.empty() && rng().Chance(o_.keyed_reuse_chance)) {
    op.seen.key = keyed_[done[rng().Below(done.size())]].seen.key;
    op.seen.reuse = true;
  }
  std::string target = absl::StrCat("eo/k", rng().Below(o_.keys));
  absl::Status s;
  if (rng().Chance(0.6)) {
    etcdserverpb::PutRequest put;
    put.set_key(target);
    put.set_value(op.seen.value);
    put.set_prev_kv(true);
    *op.request.mutable_put() = put;
    s = kv::AttachIdempotencyKey("Put", put, "sim", op.seen.key, &op.request);
  } else {
    // Either branch writes the value: what differs is the response.
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* cmp = txn.add_compare();
    cmp->set_key(target);
    cmp->set_target(etcdserverpb::Compare::VERSION);
    cmp->set_result(etcdserverpb::Compare::GREATER);
    cmp->set_version(0);
    etcdserverpb::PutRequest* yes = txn.add_success()->mutable_request_put();
    yes->set_key(target);
    yes->set_value(op.seen.value);
    yes->set_prev_kv(true);
    etcdserverpb::PutRequest* no = txn.add_failure()->mutable_request_put();
    no->set_key(target);
    no->set_value(op.seen.value);
    *op.request.mutable_txn() = txn;
    s = kv::AttachIdempotencyKey("Txn", txn, "sim", op.seen.key, &op.request);
  }
  BW_ASSERT_MSG(s.ok(), s.ToString());
  ++result_.stats.keyed_requests;
  keyed_.push_back(std::move(op));
  return static_cast<int64_t>(keyed_.size()) - 1;
}

void Simulation::KeyedClientStep(Client& c, const std::vector<NodeId>& members) {
  // A request is retried with the same key until it is answered.
  if (c.keyed_op < 0) c.keyed_op = NewKeyedOp(c);
  uint64_t serial = ++c.op_serial;
  c.busy = true;
  Client* cp = &c;
  world_.At(o_.client_timeout_us, [this, cp, serial] {
    if (cp->op_serial != serial || !cp->busy) return;
    cp->busy = false;
    cp->target = kNoNode;
    ++result_.stats.ops_unknown;
    ScheduleClient(*cp, static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1)));
  });
  node::Node* n = Live(c.target);
  if (n == nullptr) {
    c.busy = false;
    c.target = kNoNode;
    ++result_.stats.ops_failed;
    ScheduleClient(c, static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1)));
    return;
  }
  int64_t op = c.keyed_op;
  SendKeyed(c, op, c.target, /*drives=*/true);
  // Sometimes a copy goes to another member at once: a hedge, or a retry
  // racing its original. Both must get the same answer.
  if (rng().Chance(0.15)) {
    const NodeId other = members[rng().Below(members.size())];
    if (Live(other) != nullptr && other != c.target) SendKeyed(c, op, other, /*drives=*/false);
  }
}

void Simulation::SendKeyed(Client& c, int64_t op, NodeId n, bool drives) {
  ++result_.stats.keyed_attempts;
  bulwark::internal::Request r = keyed_[op].request;
  uint64_t rid = kv::MakeRequestId(c.id, ++c.seq);
  r.set_id(rid);
  uint64_t serial = c.op_serial;
  Client* cp = &c;
  ProposeAsMember(
      n, std::move(r), rid, [this, cp, op, serial, drives](absl::StatusOr<std::any> res) {
        if (failed()) return;
        check::KeyedRequest& k = keyed_[op].seen;
        bool current = drives && cp->op_serial == serial && cp->busy;
        if (res.ok()) {
          const kv::MvccResult& m = std::any_cast<const kv::MvccResult&>(*res);
          if (k.reuse) {
            if (m.status.code() != absl::StatusCode::kFailedPrecondition) {
              Fail(absl::StrCat("exactly-once: key ", k.key,
                                " reused for a different request was not refused (",
                                m.status.ToString(), ")"));
              return;
            }
            ++result_.stats.keyed_refused;
          } else if (!m.status.ok()) {
            Fail(absl::StrCat("exactly-once: request ", k.key, " failed: ", m.status.ToString()));
            return;
          } else {
            k.answers.emplace_back(m.response.SerializeAsString(), m.revision);
            if (m.replayed) ++result_.stats.keyed_replays;
          }
          if (!current) return;
          cp->busy = false;
          k.answered = true;
          cp->keyed_op = -1;
          ++result_.stats.ops_ok;
          ScheduleClient(*cp, static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1)));
          return;
        }
        if (!current) return;
        // Unknown or refused: either way the same request is sent
        // again, with the same key, after a pause.
        cp->busy = false;
        cp->target = kNoNode;
        if (absl::IsDeadlineExceeded(res.status())) {
          ++result_.stats.ops_unknown;
        } else {
          ++result_.stats.ops_failed;
        }
        ScheduleClient(*cp, static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1)));
      });
}

void Simulation::CheckExactlyOnce(node::Node& leader) {
  auto* store = dynamic_cast<kv::MvccStore*>(&leader.state_machine());
  BW_ASSERT(store != nullptr);
  std::vector<mvccpb::Event> events;
  absl::Status s = store->EventsSince("eo/", "eo0", 1, std::numeric_limits<size_t>::max(), &events);
  if (!s.ok()) {
    Fail(absl::StrCat("exactly-once: reading the history failed: ", s.ToString()));
    return;
  }
  // Counted from the data: every request writes a value of its own.
  check::AppliedValues applied;
  for (const mvccpb::Event& e : events) {
    if (e.type() == mvccpb::Event::PUT) applied[e.kv().value()].push_back(e.kv().mod_revision());
  }
  std::vector<check::KeyedRequest> seen;
  bool served = false;
  for (const KeyedOp& k : keyed_) {
    seen.push_back(k.seen);
    served |= k.seen.answered && k.invoke_stamp >= heal_stamp_;
  }
  absl::Status verdict = check::CheckExactlyOnce(seen, applied);
  if (!verdict.ok()) {
    Fail(std::string(verdict.message()));
  } else if (o_.clients > 0 && !served) {
    Fail("liveness: no keyed request invoked after healing was answered");
  }
}

}  // namespace bw::sim::detail
