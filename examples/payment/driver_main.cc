// payment_driver: sends --charges customer payments through the payment
// service (examples/payment/payment_service.h), the way customers and
// their apps do: each payment gets an idempotency key (UUIDv7) before its
// first attempt and keeps it through every retry; a payment whose answer is
// unknown is retried until it is known; 5% of customers submit a finished
// payment again (the response never reached their screen).
//
// Meanwhile the cluster's leader may be killed (by whoever runs this: see
// run.py), the gateway fails, stalls, loses replies and has outages, and
// --drop loses that share of requests and replies between the service and
// bulwark (injected in the client).
//
// Progress goes to stderr every second; the last line on stdout is a
// one-line JSON summary. With keys, the exit code is 0 only when every
// payment ended charged and the gateway's books show no double charge and
// as many charges as distinct keys.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bulwark/client.h"
#include "payment_service.h"

namespace {

struct Flags {
  std::vector<std::string> endpoints;
  std::string gateway;
  int charges = 1000;
  int concurrency = 32;
  bool use_keys = true;
  double drop = 0;
  double resubmit = 0.05;
  int max_seconds = 600;
  uint64_t seed = 1;
  std::string run = "run";
};

using Clock = std::chrono::steady_clock;

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "payment_driver: %s\nusage: payment_driver --endpoints H:P,... --gateway H:P "
               "[--charges N] [--concurrency C] [--no-keys] [--drop P] [--resubmit P] "
               "[--max-seconds S] [--seed N] [--run NAME]\n",
               why.c_str());
  return 2;
}

struct Counters {
  std::atomic<uint64_t> charged{0}, replayed{0}, gave_up{0}, service_calls{0}, retries{0};
  std::atomic<uint64_t> in_progress{0}, unknown{0}, failed{0}, resubmitted{0}, done{0};
};

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-keys") {
      f.use_keys = false;
      continue;
    }
    if (i + 1 >= argc) return Usage(a + " needs a value");
    std::string v = argv[++i];
    try {
      if (a == "--endpoints") {
        f.endpoints = absl::StrSplit(v, ',', absl::SkipEmpty());
      } else if (a == "--gateway") {
        f.gateway = v;
      } else if (a == "--charges") {
        f.charges = std::stoi(v);
      } else if (a == "--concurrency") {
        f.concurrency = std::stoi(v);
      } else if (a == "--drop") {
        f.drop = std::stod(v);
      } else if (a == "--resubmit") {
        f.resubmit = std::stod(v);
      } else if (a == "--max-seconds") {
        f.max_seconds = std::stoi(v);
      } else if (a == "--seed") {
        f.seed = std::stoull(v);
      } else if (a == "--run") {
        f.run = v;
      } else {
        return Usage("unknown flag " + a);
      }
    } catch (const std::exception&) {
      return Usage("bad value for " + a + ": " + v);
    }
  }
  if (f.endpoints.empty() || f.gateway.empty())
    return Usage("--endpoints and --gateway are required");
  if (f.charges < 1 || f.concurrency < 1 || f.drop < 0 || f.drop > 0.5) {
    return Usage("--charges and --concurrency at least 1, --drop in [0, 0.5]");
  }

  bulwark::ClientOptions co;
  co.endpoints = f.endpoints;
  co.idempotency_scope = "payment-service";
  co.policies.default_timeout_us = 5'000'000;
  co.policies.attempt_timeout_us = 1'000'000;
  co.drop_request_chance = f.drop;
  co.drop_reply_chance = f.drop;
  auto client = bulwark::Client::Connect(co);
  if (!client.ok()) {
    std::fprintf(stderr, "payment_driver: %s\n", std::string(client.status().message()).c_str());
    return 1;
  }
  payment::PaymentOptions po;
  po.use_keys = f.use_keys;
  po.gateway_timeout = std::chrono::milliseconds(3000);
  po.gateway_policies.attempt_timeout_us = 400'000;
  po.gateway_policies.backoff = bulwark::BackoffOptions{20'000, 400'000, 2.0};
  po.gateway_policies.breaker.minimum_calls = 20;
  po.gateway_policies.breaker.window_size = 50;
  po.gateway_policies.breaker.wait_in_open_us = 500'000;
  po.gateway_policies.breaker.half_open_calls = 3;
  po.gateway_policies.bulkhead = bulwark::BulkheadOptions{64, 256, 1'000'000};
  auto channel = grpc::CreateChannel(f.gateway, grpc::InsecureChannelCredentials());
  payment::PaymentService service(**client, channel, po);
  auto gateway = payment::Gateway::NewStub(channel);

  Counters n;
  std::atomic<int> next{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point give_up_at = start + std::chrono::seconds(f.max_seconds);
  std::mutex mu;
  std::string last_error;

  auto pay = [&](int i, std::mt19937_64& rng, const std::string& key, const std::string& order,
                 int64_t amount) {
    // One customer payment: retried until its outcome is known.
    for (int attempt = 0;; ++attempt) {
      ++n.service_calls;
      payment::ChargeResult r = service.Charge(order, amount, key);
      using K = payment::ChargeResult::Kind;
      if (r.kind == K::kCharged || r.kind == K::kReplayed) {
        (r.kind == K::kCharged ? n.charged : n.replayed)++;
        return true;
      }
      (r.kind == K::kInProgress ? n.in_progress : r.kind == K::kUnknown ? n.unknown : n.failed)++;
      if (!r.error.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        last_error = r.error;
      }
      if (Clock::now() > give_up_at || attempt >= 60) return false;
      ++n.retries;
      int64_t ms = r.kind == K::kInProgress
                       ? std::clamp<int64_t>(r.retry_after_ms, 20, 3000)
                       : std::uniform_int_distribution<int64_t>(
                             0, std::min<int64_t>(1000, 50LL << std::min(attempt, 5)))(rng);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  };

  std::vector<std::thread> workers;
  for (int w = 0; w < f.concurrency; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937_64 rng(f.seed * 1000 + w);
      for (int i; (i = next.fetch_add(1)) < f.charges;) {
        std::string order = absl::StrFormat("%s-order-%06d", f.run, i);
        int64_t amount = std::uniform_int_distribution<int64_t>(100, 50'000)(rng);
        // The key exists before the first attempt and never changes.
        std::string key = f.use_keys ? bulwark::NewIdempotencyKey() : "";
        if (!pay(i, rng, key, order, amount)) ++n.gave_up;
        if (std::uniform_real_distribution<double>(0, 1)(rng) < f.resubmit) {
          ++n.resubmitted;
          pay(i, rng, key, order, amount);
        }
        ++n.done;
      }
    });
  }
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    while (!finished) {
      for (int i = 0; i < 10 && !finished; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      bulwark::ClientMetrics m = (**client).metrics();
      std::fprintf(stderr,
                   "  [%5.1fs] %s: %llu/%d payments done, %llu retries, gateway %llu attempts, "
                   "breaker opened %llu, bulwark retries %llu, leader changes %llu\n",
                   std::chrono::duration<double>(Clock::now() - start).count(),
                   f.use_keys ? "keys" : "no keys", (unsigned long long)n.done.load(), f.charges,
                   (unsigned long long)n.retries.load(),
                   (unsigned long long)service.gateway_attempts(),
                   (unsigned long long)service.breaker_trips(),
                   (unsigned long long)m.pipeline.count(bulwark::EventType::kRetry),
                   (unsigned long long)m.leader_changes);
    }
  });
  for (std::thread& t : workers)
    t.join();
  finished = true;
  progress.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  payment::StatsReply books;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s = gateway->Stats(&ctx, payment::StatsRequest(), &books);
    if (!s.ok()) {
      std::fprintf(stderr, "payment_driver: gateway stats: %s\n", s.error_message().c_str());
      return 1;
    }
  }
  bulwark::ClientMetrics m = (**client).metrics();
  bulwark::PipelineMetrics g = service.gateway_metrics();
  bool invariant = books.charges() == books.distinct_keys() && books.double_charges() == 0;
  std::printf(
      "{\"mode\":\"%s\",\"charges_requested\":%d,\"gateway_charges\":%lld,"
      "\"distinct_keys\":%lld,\"double_charges\":%lld,\"double_charged_orders\":%lld,"
      "\"orders_charged\":%lld,\"charged\":%llu,\"replays_served\":%llu,\"gave_up\":%llu,"
      "\"resubmitted\":%llu,\"service_calls\":%llu,\"retries\":%llu,\"outcome_unknown\":%llu,"
      "\"in_progress\":%llu,\"gateway_requests\":%lld,\"gateway_attempts\":%llu,"
      "\"gateway_retries\":%llu,\"breaker_trips\":%llu,\"gateway_failed\":%lld,"
      "\"gateway_stalled\":%lld,\"gateway_replies_lost\":%lld,\"gateway_outage_refusals\":%lld,"
      "\"bulwark_attempts\":%llu,\"bulwark_retries\":%llu,\"bulwark_replayed\":%llu,"
      "\"dropped_requests\":%llu,\"dropped_replies\":%llu,\"leader_changes\":%llu,"
      "\"seconds\":%.1f,\"invariant_holds\":%s}\n",
      f.use_keys ? "keys" : "no-keys", f.charges, (long long)books.charges(),
      (long long)books.distinct_keys(), (long long)books.double_charges(),
      (long long)books.double_charged_orders(), (long long)books.orders_charged(),
      (unsigned long long)n.charged.load(), (unsigned long long)n.replayed.load(),
      (unsigned long long)n.gave_up.load(), (unsigned long long)n.resubmitted.load(),
      (unsigned long long)n.service_calls.load(), (unsigned long long)n.retries.load(),
      (unsigned long long)n.unknown.load(), (unsigned long long)n.in_progress.load(),
      (long long)books.requests(), (unsigned long long)service.gateway_attempts(),
      (unsigned long long)g.count(bulwark::EventType::kRetry),
      (unsigned long long)service.breaker_trips(), (long long)books.failed(),
      (long long)books.stalled(), (long long)books.replies_lost(),
      (long long)books.outage_refusals(), (unsigned long long)m.pipeline.attempts,
      (unsigned long long)m.pipeline.count(bulwark::EventType::kRetry),
      (unsigned long long)m.replayed, (unsigned long long)m.requests_dropped,
      (unsigned long long)m.replies_dropped, (unsigned long long)m.leader_changes, seconds,
      invariant ? "true" : "false");
  if (!f.use_keys) return 0;
  if (n.gave_up > 0) {
    std::lock_guard<std::mutex> lock(mu);
    std::fprintf(stderr, "payment_driver: %llu payments never completed (last error: %s)\n",
                 (unsigned long long)n.gave_up.load(), last_error.c_str());
  }
  return invariant && n.gave_up == 0 ? 0 : 1;
}
