// The registers workload (Workload::kRegisters): linearizable reads, puts
// and compare-and-sets of a few keys through the member's own request paths,
// checked by the linearizability checker (check::History) and, at the end,
// against every member's history of the keys. With SimOptions::sdk_clients
// every operation is one call of the C++ SDK's resilience pipeline.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

env::TimerId ClientTime::Schedule(int64_t delay_us, std::function<void()> fn) {
  const env::TimerId id = ++next_;
  pending_.insert(id);
  world_.At(delay_us, [this, id, fn = std::move(fn)] {
    if (pending_.erase(id) > 0) fn();
  });
  return id;
}

bulwark::internal::Request Simulation::RegisterOp::Keyed(const std::string& k) const {
  bulwark::internal::Request req;
  absl::Status attached;
  if (kind == check::OpKind::kCas) {
    *req.mutable_txn() = txn;
    attached = kv::AttachIdempotencyKey("Txn", txn, "sim", k, &req);
  } else {
    *req.mutable_put() = put;
    attached = kv::AttachIdempotencyKey("Put", put, "sim", k, &req);
  }
  BW_ASSERT_MSG(attached.ok(), attached.ToString());
  return req;
}

Simulation::RegisterOp Simulation::NextRegisterOp(Client& c) {
  RegisterOp op;
  op.key = absl::StrCat("k", rng().Below(o_.keys));
  const double dice = rng().Uniform();
  if (dice < 0.45) return op;  // a read
  op.kind = check::OpKind::kWrite;
  op.value = absl::StrCat("c", c.id, ".", ++c.seq);
  op.put.set_key(op.key);
  op.put.set_value(op.value);
  if (dice > 0.85) {
    op.kind = check::OpKind::kCas;
    // Guess a value this client may have written recently, or another's.
    uint64_t back = 1 + rng().Below(3);
    op.expected =
        c.seq > back ? absl::StrCat("c", rng().Below(clients_.size()) + 1, ".", c.seq - back) : "";
    etcdserverpb::Compare* cmp = op.txn.add_compare();
    cmp->set_key(op.key);
    cmp->set_target(etcdserverpb::Compare::VALUE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_value(op.expected);
    *op.txn.add_success()->mutable_request_put() = op.put;
  }
  return op;
}

void Simulation::RegistersClientStep(Client& c) {
  RegisterOp reg = NextRegisterOp(c);
  if (o_.sdk_clients) {
    RegistersSdkCall(c, std::move(reg));
    return;
  }
  member::Member* m = LiveMember(c.target);
  uint64_t serial = ++c.op_serial;
  Client* cp = &c;
  c.busy = true;
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
  if (reg.kind == check::OpKind::kRead) {
    // A linearizable Range of one key, as the KV service serves it.
    ++result_.stats.reads;
    size_t op = history_.Invoke(c.id, check::OpKind::kRead, reg.key, "", "", Stamp());
    world_.At(o_.client_timeout_us,
              [finish, op] { finish(op, check::Outcome::kUnknown, "", false, false); });
    if (m == nullptr) {
      finish(op, check::Outcome::kFailed, "", false, false);
      return;
    }
    m->Read(
        /*linearizable=*/true, /*token=*/"", [] { return bulwark::internal::Request(); },
        [m, key = reg.key, finish, op](absl::StatusOr<std::string> user) {
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
  size_t op = history_.Invoke(c.id, reg.kind, reg.key, reg.value, reg.expected, Stamp());
  world_.At(o_.client_timeout_us,
            [finish, op] { finish(op, check::Outcome::kUnknown, "", false, false); });
  if (m == nullptr) {
    finish(op, check::Outcome::kFailed, "", false, false);
    return;
  }
  ProposeAsMember(
      c.target, reg.Keyed(reg.value), kv::MakeRequestId(c.id, c.seq),
      [this, finish, op, value = reg.value, kind = reg.kind](absl::StatusOr<std::any> r) {
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

// --- SDK clients ---

void Simulation::RegistersSdkCall(Client& c, RegisterOp op) {
  if (c.pipeline == nullptr) {
    client::PipelineOptions po;
    po.default_timeout_us = o_.client_timeout_us;
    // A member that does not answer (cut off, or waiting for a quorum it
    // cannot reach) holds one attempt, not the whole call.
    po.attempt_timeout_us = o_.client_timeout_us / 3;
#ifdef BW_PLANTED_BUGS
    po.planted_unknown_as_failed = o_.planted_sdk_unknown_as_failed;
#endif
    c.pipeline = std::make_unique<client::Pipeline>(po, static_cast<int>(universe_.size()),
                                                    client_time_, client_time_, rng());
  }
  const bool read = op.kind == check::OpKind::kRead;
  ++(read ? result_.stats.reads : result_.stats.writes);
  const size_t hop = history_.Invoke(c.id, op.kind, op.key, op.value, op.expected, Stamp());
  Client* cp = &c;
  c.busy = true;
  // What the attempt that succeeded saw; whether the call has ended.
  struct Answer {
    std::string value;
    bool found = false;
    bool cas_ok = false;
    bool ended = false;
  };
  auto answer = std::make_shared<Answer>();
  client::CallSpec spec;
  spec.kind = read ? client::CallKind::kRead : client::CallKind::kWrite;
  spec.idempotent = true;  // reads, and writes with an idempotency key
  spec.deadline_us = world_.now_us() + o_.client_timeout_us;
  for (size_t i = 0; i < universe_.size(); ++i) {
    if (universe_[i] == c.target) spec.preferred_endpoint = static_cast<int>(i);
  }
  // The pipeline must end every call by its deadline, once.
  world_.At(o_.client_timeout_us + 1'000'000, [this, answer, hop] {
    if (!answer->ended) {
      Fail(absl::StrCat("sdk: call ", hop, " did not end within 1 s after its deadline"));
    }
  });
  auto shared_op = std::make_shared<const RegisterOp>(std::move(op));
  c.pipeline->Execute(
      spec,
      [this, cp, shared_op, answer](const client::Attempt& a, client::Pipeline::AttemptDone done) {
        RegistersSdkAttempt(*cp, *shared_op, a, std::move(done),
                            [answer](std::string value, bool found, bool cas_ok) {
                              answer->value = std::move(value);
                              answer->found = found;
                              answer->cas_ok = cas_ok;
                            });
      },
      [this, cp, shared_op, answer, hop](client::CallResult r) {
        if (answer->ended) {
          Fail(absl::StrCat("sdk: call ", hop, " ended twice"));
          return;
        }
        answer->ended = true;
        cp->busy = false;
        if (failed()) return;
        check::Outcome outcome = check::Outcome::kOk;
        if (r.outcome == client::Outcome::kOk) {
          ++result_.stats.ops_ok;
          cp->target = universe_[static_cast<size_t>(r.endpoint)];
          if (shared_op->kind != check::OpKind::kRead && answer->cas_ok) {
            acked_values_.insert(shared_op->value);
          }
        } else if (r.outcome == client::Outcome::kFailed) {
          outcome = check::Outcome::kFailed;
          ++result_.stats.ops_failed;
          cp->target = kNoNode;
        } else {
          outcome = check::Outcome::kUnknown;
          ++result_.stats.ops_unknown;
          cp->target = kNoNode;
        }
        if (outcome == check::Outcome::kOk) {
          history_.Complete(hop, Stamp(), outcome, answer->value, answer->found, answer->cas_ok);
        } else {
          history_.Complete(hop, Stamp(), outcome, "", false, false);
        }
        ScheduleClient(*cp, static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1)));
      });
}

void Simulation::RegistersSdkAttempt(Client& c, const RegisterOp& op, const client::Attempt& a,
                                     client::Pipeline::AttemptDone done,
                                     std::function<void(std::string, bool, bool)> answer) {
  const NodeId id = universe_[static_cast<size_t>(a.endpoint)];
  member::Member* m = LiveMember(id);
  if (m == nullptr) {
    // Connection refused: nothing was sent.
    done(client::AttemptResult{
        absl::UnavailableError(absl::StrCat("member ", id.value(), " is down")), false,
        std::nullopt});
    return;
  }
  if (op.kind == check::OpKind::kRead) {
    m->Read(
        /*linearizable=*/true, /*token=*/"", [] { return bulwark::internal::Request(); },
        [m, key = op.key, done = std::move(done),
         answer = std::move(answer)](absl::StatusOr<std::string> user) {
          etcdserverpb::RangeRequest rr;
          rr.set_key(key);
          etcdserverpb::RangeResponse out;
          if (!user.ok()) {
            // The member's answer (no leader, a barrier that timed out).
            done(client::AttemptResult{absl::UnavailableError(user.status().message()), false,
                                       std::nullopt, /*answered=*/true});
            return;
          }
          absl::Status read = m->mvcc().Range(rr, &out);
          if (!read.ok()) {
            done(client::AttemptResult{read, false, std::nullopt, true});
            return;
          }
          if (out.kvs_size() == 0) {
            answer("", false, false);
          } else {
            answer(out.kvs(0).value(), true, false);
          }
          done(client::AttemptResult{});
        });
    return;
  }
  // The key is the call's, made before its first attempt (the SDK's
  // rule): every retry is the same write.
  std::string key = op.value;
#ifdef BW_PLANTED_BUGS
  if (o_.planted_sdk_key_per_attempt) key = absl::StrCat(op.value, "#", a.number);
#endif
  // Each attempt is a proposal of its own: request ids from the top half
  // of the client's range, apart from the plain workloads' sequence.
  const uint64_t rid =
      kv::MakeRequestId(c.id, (uint64_t{1} << (kv::kRequestSeqBits - 1)) + ++c.sdk_attempts);
  ProposeAsMember(id, op.Keyed(key), rid,
                  [kind = op.kind, done = std::move(done),
                   answer = std::move(answer)](absl::StatusOr<std::any> r) {
                    if (!r.ok()) {
                      // Timed out in the member: it may have been applied. Any other
                      // refusal came before it was proposed.
                      const bool maybe = absl::IsDeadlineExceeded(r.status());
                      done(client::AttemptResult{absl::UnavailableError(r.status().message()),
                                                 maybe, std::nullopt, /*answered=*/!maybe});
                      return;
                    }
                    const kv::MvccResult& res = std::any_cast<const kv::MvccResult&>(*r);
                    if (!res.status.ok()) {
                      // Refused where it was applied (the quota): not applied.
                      done(client::AttemptResult{res.status, false, std::nullopt, true});
                      return;
                    }
                    answer("", false,
                           kind != check::OpKind::kCas || res.response.response_txn().succeeded());
                    done(client::AttemptResult{});
                  });
}

void Simulation::CollectSdkStats() {
  SimStats& s = result_.stats;
  for (const Client& c : clients_) {
    if (c.pipeline == nullptr) continue;
    const client::PipelineMetrics& m = c.pipeline->metrics();
    s.sdk_calls += m.calls;
    s.sdk_attempts += m.attempts;
    s.sdk_unknown += m.unknown;
    s.sdk_retries += m.count(client::EventType::kRetry);
    s.sdk_breaker_opened += m.count(client::EventType::kBreakerOpened);
    s.sdk_ejections += m.count(client::EventType::kEjected);
    s.sdk_budget_exhausted += m.count(client::EventType::kBudgetExhausted);
  }
}

}  // namespace bw::sim::detail
