// The registers workload (Workload::kRegisters): linearizable reads, puts
// and compare-and-sets of a few keys through the member's own request paths,
// checked by the linearizability checker (check::History) and, at the end,
// against every member's history of the keys.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

void Simulation::RegistersClientStep(Client& c) {
  member::Member* m = LiveMember(c.target);
  std::string key = absl::StrCat("k", rng().Below(o_.keys));
  uint64_t serial = ++c.op_serial;
  Client* cp = &c;
  c.busy = true;
  double dice = rng().Uniform();
  // Returns whether the answer was taken (not already timed out).
  auto finish = [this, cp, serial](size_t op, check::Outcome outcome, std::string result,
                                   bool found, bool cas_ok) {
    if (cp->op_serial != serial || !cp->busy) return false;  // already timed out
    cp->busy = false;
    history_.Complete(op, Stamp(), outcome, std::move(result), found, cas_ok);
    if (outcome == check::Outcome::kOk) {
      ++result_.stats.ops_ok;
    } else if (outcome == check::Outcome::kFailed) {
      ++result_.stats.ops_failed;
      cp->target = kNoNode;
    } else {
      ++result_.stats.ops_unknown;
      cp->target = kNoNode;
    }
    ScheduleClient(*cp, static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1)));
    return true;
  };
  if (dice < 0.45) {
    // A linearizable Range of one key, as the KV service serves it.
    ++result_.stats.reads;
    size_t op = history_.Invoke(c.id, check::OpKind::kRead, key, "", "", Stamp());
    world_.At(o_.client_timeout_us,
              [finish, op] { finish(op, check::Outcome::kUnknown, "", false, false); });
    if (m == nullptr) {
      finish(op, check::Outcome::kFailed, "", false, false);
      return;
    }
    m->Read(
        /*linearizable=*/true, /*token=*/"", [] { return bulwark::internal::Request(); },
        [m, key, finish, op](absl::StatusOr<std::string> user) {
          etcdserverpb::RangeRequest rr;
          rr.set_key(key);
          etcdserverpb::RangeResponse out;
          if (!user.ok() || !m->mvcc().Range(rr, &out).ok()) {
            finish(op, check::Outcome::kUnknown, "", false, false);
          } else if (out.kvs_size() == 0) {
            finish(op, check::Outcome::kOk, "", false, false);
          } else {
            finish(op, check::Outcome::kOk, out.kvs(0).value(), true, false);
          }
        });
    return;
  }
  // A write carries an idempotency key, as the SDK's writes do: a proposal
  // the network delivered twice, or a retry, is applied once.
  ++result_.stats.writes;
  const std::string value = absl::StrCat("c", c.id, ".", ++c.seq);
  std::string expected;
  check::OpKind kind = check::OpKind::kWrite;
  bulwark::internal::Request req;
  etcdserverpb::PutRequest put;
  put.set_key(key);
  put.set_value(value);
  absl::Status attached;
  if (dice > 0.85) {
    kind = check::OpKind::kCas;
    // Guess a value this client may have written recently, or another's.
    uint64_t back = 1 + rng().Below(3);
    expected =
        c.seq > back ? absl::StrCat("c", rng().Below(clients_.size()) + 1, ".", c.seq - back) : "";
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* cmp = txn.add_compare();
    cmp->set_key(key);
    cmp->set_target(etcdserverpb::Compare::VALUE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_value(expected);
    *txn.add_success()->mutable_request_put() = put;
    *req.mutable_txn() = txn;
    attached = kv::AttachIdempotencyKey("Txn", txn, "sim", value, &req);
  } else {
    *req.mutable_put() = put;
    attached = kv::AttachIdempotencyKey("Put", put, "sim", value, &req);
  }
  BW_ASSERT_MSG(attached.ok(), attached.ToString());
  size_t op = history_.Invoke(c.id, kind, key, value, expected, Stamp());
  world_.At(o_.client_timeout_us,
            [finish, op] { finish(op, check::Outcome::kUnknown, "", false, false); });
  if (m == nullptr) {
    finish(op, check::Outcome::kFailed, "", false, false);
    return;
  }
  ProposeAsMember(c.target, std::move(req), kv::MakeRequestId(c.id, c.seq),
                  [this, finish, op, value, kind](absl::StatusOr<std::any> r) {
                    if (r.ok()) {
                      const kv::MvccResult& res = std::any_cast<const kv::MvccResult&>(*r);
                      if (!res.status.ok()) {
                        // Refused when it was applied (the quota): not applied.
                        finish(op, check::Outcome::kFailed, "", false, false);
                        return;
                      }
                      const bool applied =
                          kind != check::OpKind::kCas || res.response.response_txn().succeeded();
                      if (finish(op, check::Outcome::kOk, "", false, applied) && applied) {
                        acked_values_.insert(value);
                      }
                    } else if (absl::IsDeadlineExceeded(r.status())) {
                      finish(op, check::Outcome::kUnknown, "", false, false);
                    } else {
                      // Refused before it was proposed: certainly not applied.
                      finish(op, check::Outcome::kFailed, "", false, false);
                    }
                  });
}

}  // namespace bw::sim::detail
