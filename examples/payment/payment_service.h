// The payment service of ../shared/SEED.md, made real: charge(amount,
// idempotency_key) that moves money exactly once however often it is called,
// using bulwark's idempotency records and a card gateway that deduplicates
// on the same key.
//
//   Begin(key)           COMPLETED: answer from the record (a replay)
//                        IN_PROGRESS: someone holds it; come back later
//                        STARTED: ours, with a fencing token (and, after a
//                        takeover, the last recovery point)
//   gateway.Charge(key)  through a Guard: deadline, retries with backoff in a
//                        budget, circuit breaker; the key makes retries safe
//   Checkpoint("charged", charge_id)
//   Complete(charge_id)
//
// With keys off (`use_keys = false`) it is the naive service: no record, no
// key to the gateway, so a caller's retry after a lost reply charges again.
//
// Thread-safety: Charge may be called from many threads at once; they share
// the client's and the Guard's policies.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "bulwark/client.h"
#include "bulwark/resilience.h"
#include "payment/gateway.grpc.pb.h"

namespace payment {

struct ChargeResult {
  enum class Kind {
    kCharged,     // charged now
    kReplayed,    // charged earlier; the record's answer
    kInProgress,  // another call holds this key: retry after retry_after_ms
    kFailed,      // not charged (or the key was reused for another charge)
    kUnknown,     // may or may not have been charged: retry with the same key
  };
  Kind kind = Kind::kFailed;
  std::string charge_id;
  std::string error;
  int64_t retry_after_ms = 0;
};

const char* KindName(ChargeResult::Kind k);

struct PaymentOptions {
  bool use_keys = true;
  std::string scope = "payments";
  // How long a Begin holds the key against concurrent calls; a holder that
  // stalls longer is taken over (fenced by its token).
  int64_t lock_ttl_ms = 3000;
  // Each gateway charge, all retries included.
  std::chrono::milliseconds gateway_timeout{3000};
  bulwark::PipelineOptions gateway_policies;
};

class PaymentService {
 public:
  PaymentService(bulwark::Client& store, std::shared_ptr<grpc::Channel> gateway, PaymentOptions o);

  ChargeResult Charge(const std::string& order, int64_t amount_cents, const std::string& key);

  uint64_t gateway_attempts() const { return gateway_attempts_.load(); }
  uint64_t breaker_trips() const { return breaker_trips_.load(); }
  bulwark::PipelineMetrics gateway_metrics() const { return guard_.metrics(); }

 private:
  // One charge at the gateway under the Guard's policies.
  bulwark::CallResult CallGateway(const ChargeRequest& req, bool idempotent, ChargeReply* reply);

  bulwark::Client& store_;
  std::unique_ptr<Gateway::Stub> gateway_;
  PaymentOptions o_;
  std::atomic<uint64_t> gateway_attempts_{0};
  std::atomic<uint64_t> breaker_trips_{0};
  bulwark::Guard guard_;
};

}  // namespace payment
