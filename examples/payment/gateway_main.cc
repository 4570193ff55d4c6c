// payment_gateway: a fake card gateway for the payment example, as a
// process of its own. It charges like a card processor with idempotency
// keys (a key it has seen returns the first charge) and misbehaves like a
// real one, at random from a seed:
//
//   --fail P        answer UNAVAILABLE at once, charging nothing
//   --stall P       take --stall-ms before charging and answering (the
//                   caller has usually given up: it cannot know the charge
//                   went through)
//   --lose-reply P  charge, then hold the reply for --stall-ms (the reply is
//                   as good as lost)
//   --outage-every-s S --outage-s D   refuse everything for D seconds every S
//
// It counts what it did; `Stats` reports it (the example's ground truth:
// money moved, per order).
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "payment/gateway.grpc.pb.h"

namespace {

struct Flags {
  std::string listen = "127.0.0.1:0";
  double fail = 0.05;
  double stall = 0.03;
  double lose_reply = 0.05;
  int stall_ms = 1500;
  double outage_every_s = 0;
  double outage_s = 0;
  uint64_t seed = 1;
};

using Clock = std::chrono::steady_clock;

class Gateway final : public payment::Gateway::Service {
 public:
  explicit Gateway(const Flags& f) : f_(f), rng_(f.seed), start_(Clock::now()) {}

  grpc::Status Charge(grpc::ServerContext*, const payment::ChargeRequest* req,
                      payment::ChargeReply* reply) override {
    enum { kOk, kFail, kStall, kLose } fate = kOk;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.set_requests(stats_.requests() + 1);
      if (InOutage()) {
        stats_.set_outage_refusals(stats_.outage_refusals() + 1);
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway: outage, try later");
      }
      double roll = std::uniform_real_distribution<double>(0, 1)(rng_);
      if (roll < f_.fail) {
        fate = kFail;
      } else if (roll < f_.fail + f_.stall) {
        fate = kStall;
      } else if (roll < f_.fail + f_.stall + f_.lose_reply) {
        fate = kLose;
      }
    }
    if (fate == kFail) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.set_failed(stats_.failed() + 1);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway: card network unavailable");
    }
    if (fate == kStall) {
      std::this_thread::sleep_for(std::chrono::milliseconds(f_.stall_ms));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fate == kStall) stats_.set_stalled(stats_.stalled() + 1);
      if (fate == kLose) stats_.set_replies_lost(stats_.replies_lost() + 1);
      const std::string& key = req->idempotency_key();
      auto seen = key.empty() ? by_key_.end() : by_key_.find(key);
      if (seen != by_key_.end()) {
        reply->set_charge_id(seen->second);
        reply->set_replayed(true);
      } else {
        std::string id = absl::StrCat("ch_", ++next_charge_);
        reply->set_charge_id(id);
        if (!key.empty()) by_key_[key] = id;
        int& n = per_order_[req->order()];
        ++n;
        stats_.set_charges(stats_.charges() + 1);
        stats_.set_distinct_keys(static_cast<int64_t>(by_key_.size()));
        if (n == 1) stats_.set_orders_charged(stats_.orders_charged() + 1);
        if (n == 2) stats_.set_double_charged_orders(stats_.double_charged_orders() + 1);
        if (n >= 2) stats_.set_double_charges(stats_.double_charges() + 1);
      }
    }
    if (fate == kLose) std::this_thread::sleep_for(std::chrono::milliseconds(f_.stall_ms));
    return grpc::Status::OK;
  }

  grpc::Status Stats(grpc::ServerContext*, const payment::StatsRequest*,
                     payment::StatsReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    *reply = stats_;
    return grpc::Status::OK;
  }

 private:
  bool InOutage() const {
    if (f_.outage_every_s <= 0 || f_.outage_s <= 0) return false;
    double t = std::chrono::duration<double>(Clock::now() - start_).count();
    double phase = std::fmod(t, f_.outage_every_s);
    return t >= f_.outage_every_s && phase < f_.outage_s;
  }

  Flags f_;
  std::mutex mu_;
  std::mt19937_64 rng_;
  Clock::time_point start_;
  uint64_t next_charge_ = 0;
  std::map<std::string, std::string> by_key_;
  std::map<std::string, int> per_order_;
  payment::StatsReply stats_;
};

std::atomic<bool> g_stop{false};

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "payment_gateway: %s\nusage: payment_gateway [--listen HOST:PORT] [--fail P] "
               "[--stall P] [--lose-reply P] [--stall-ms MS] [--outage-every-s S --outage-s D] "
               "[--seed N]\n",
               why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage(a + " needs a value");
    std::string v = argv[++i];
    try {
      if (a == "--listen") {
        f.listen = v;
      } else if (a == "--fail") {
        f.fail = std::stod(v);
      } else if (a == "--stall") {
        f.stall = std::stod(v);
      } else if (a == "--lose-reply") {
        f.lose_reply = std::stod(v);
      } else if (a == "--stall-ms") {
        f.stall_ms = std::stoi(v);
      } else if (a == "--outage-every-s") {
        f.outage_every_s = std::stod(v);
      } else if (a == "--outage-s") {
        f.outage_s = std::stod(v);
      } else if (a == "--seed") {
        f.seed = std::stoull(v);
      } else {
        return Usage("unknown flag " + a);
      }
    } catch (const std::exception&) {
      return Usage("bad value for " + a + ": " + v);
    }
  }
  if (f.fail < 0 || f.stall < 0 || f.lose_reply < 0 || f.fail + f.stall + f.lose_reply > 1) {
    return Usage("--fail, --stall and --lose-reply are chances that add up to at most 1");
  }
  Gateway service(f);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(f.listen, grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "payment_gateway: cannot listen on %s\n", f.listen.c_str());
    return 1;
  }
  std::string host = f.listen.substr(0, f.listen.rfind(':'));
  // The first line says where it listens (a port of 0 picks a free one).
  std::printf("payment_gateway listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  while (!g_stop)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
