#include "payment_service.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace payment {

const char* KindName(ChargeResult::Kind k) {
  switch (k) {
    case ChargeResult::Kind::kCharged:
      return "charged";
    case ChargeResult::Kind::kReplayed:
      return "replayed";
    case ChargeResult::Kind::kInProgress:
      return "in progress";
    case ChargeResult::Kind::kFailed:
      return "failed";
    case ChargeResult::Kind::kUnknown:
      return "outcome unknown";
  }
  return "?";
}

PaymentService::PaymentService(bulwark::Client& store, std::shared_ptr<grpc::Channel> gateway,
                               PaymentOptions o)
    : store_(store),
      gateway_(Gateway::NewStub(std::move(gateway))),
      o_(std::move(o)),
      guard_(o_.gateway_policies, 1, [this](const bulwark::Event& e) {
        if (e.type == bulwark::EventType::kBreakerOpened) ++breaker_trips_;
      }) {}

bulwark::CallResult PaymentService::CallGateway(const ChargeRequest& req, bool idempotent,
                                                ChargeReply* reply) {
  bulwark::CallSpec spec;
  spec.kind = bulwark::CallKind::kWrite;
  // With the key the gateway deduplicates, so a retry cannot charge twice.
  spec.idempotent = idempotent;
  spec.deadline_us = guard_.DeadlineAfter(o_.gateway_timeout);
  return guard_.Run(spec, [&](const bulwark::Attempt& a) {
    ++gateway_attempts_;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + guard_.Remaining(a));
    ChargeReply r;
    grpc::Status s = gateway_->Charge(&ctx, req, &r);
    bulwark::AttemptResult out;
    if (s.ok()) {
      *reply = std::move(r);
      return out;
    }
    out.status = absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    // The gateway's own refusals ("gateway: ...") charged nothing; a
    // timeout or a broken connection may have.
    out.maybe_applied = !absl::StartsWith(s.error_message(), "gateway:") &&
                        !absl::StrContains(s.error_message(), "failed to connect");
    return out;
  });
}

ChargeResult PaymentService::Charge(const std::string& order, int64_t amount_cents,
                                    const std::string& key) {
  ChargeRequest req;
  req.set_order(order);
  req.set_amount_cents(amount_cents);
  ChargeResult out;
  if (!o_.use_keys) {
    ChargeReply reply;
    bulwark::CallResult r = CallGateway(req, /*idempotent=*/false, &reply);
    out.kind = r.outcome == bulwark::Outcome::kOk        ? ChargeResult::Kind::kCharged
               : r.outcome == bulwark::Outcome::kUnknown ? ChargeResult::Kind::kUnknown
                                                         : ChargeResult::Kind::kFailed;
    out.charge_id = reply.charge_id();
    out.error = std::string(r.status.message());
    return out;
  }

  // 1. Claim the key (or find its answer).
  bulwark::v1::BeginRequest begin;
  begin.set_scope(o_.scope);
  begin.set_key(key);
  begin.set_fingerprint(absl::StrCat(order, "|", amount_cents));
  begin.set_lock_ttl_ms(o_.lock_ttl_ms);
  auto b = store_.Begin(begin);
  if (!b.ok()) {
    out.kind = ChargeResult::Kind::kUnknown;  // nothing charged yet, but retry the same way
    out.error = absl::StrCat("begin: ", b.status.message());
    return out;
  }
  switch (b.value.outcome()) {
    case bulwark::v1::BeginResponse::COMPLETED:
      out.kind = ChargeResult::Kind::kReplayed;
      out.charge_id = b.value.response();
      return out;
    case bulwark::v1::BeginResponse::IN_PROGRESS:
      out.kind = ChargeResult::Kind::kInProgress;
      out.retry_after_ms = b.value.lock_remaining_ms();
      return out;
    case bulwark::v1::BeginResponse::MISMATCH:
      out.kind = ChargeResult::Kind::kFailed;
      out.error = "idempotency key reused for a different charge";
      return out;
    default:
      break;
  }
  const uint64_t token = b.value.token();
  auto release = [&] {
    bulwark::v1::ReleaseRequest rel;
    rel.set_scope(o_.scope);
    rel.set_key(key);
    rel.set_token(token);
    store_.Release(rel);  // best effort: the lock expires anyway
  };

  // 2. Charge, unless a stalled predecessor already did (its recovery point).
  std::string charge_id;
  if (b.value.recovery_point() == "charged") {
    charge_id = b.value.checkpoint_data();
  } else {
    req.set_idempotency_key(key);
    ChargeReply reply;
    bulwark::CallResult r = CallGateway(req, /*idempotent=*/true, &reply);
    if (r.outcome != bulwark::Outcome::kOk) {
      // Not charged, or not known: either way the next call with this key
      // may try again (the gateway deduplicates on it).
      release();
      out.kind = r.outcome == bulwark::Outcome::kUnknown ? ChargeResult::Kind::kUnknown
                                                         : ChargeResult::Kind::kFailed;
      out.error = absl::StrCat("gateway: ", r.status.message());
      return out;
    }
    charge_id = reply.charge_id();
    bulwark::v1::CheckpointRequest cp;
    cp.set_scope(o_.scope);
    cp.set_key(key);
    cp.set_token(token);
    cp.set_recovery_point("charged");
    cp.set_data(charge_id);
    auto c = store_.Checkpoint(cp);
    if (c.status.code() == absl::StatusCode::kFailedPrecondition) {
      out.kind = ChargeResult::Kind::kInProgress;  // fenced: a successor took over
      return out;
    }
  }

  // 3. Record the answer.
  bulwark::v1::CompleteRequest done;
  done.set_scope(o_.scope);
  done.set_key(key);
  done.set_token(token);
  done.set_response(charge_id);
  done.set_status(200);
  auto c = store_.Complete(done);
  if (c.status.code() == absl::StatusCode::kFailedPrecondition) {
    out.kind = ChargeResult::Kind::kInProgress;
    return out;
  }
  if (!c.ok()) {
    // Charged, but the record is not complete: a retry takes over after the
    // lock and finds the "charged" recovery point.
    out.kind = ChargeResult::Kind::kUnknown;
    out.error = absl::StrCat("complete: ", c.status.message());
    return out;
  }
  out.kind = ChargeResult::Kind::kCharged;
  out.charge_id = charge_id;
  return out;
}

}  // namespace payment
