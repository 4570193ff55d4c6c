// The exactly-once workload of a chaos run: clients put fresh keys through
// libbulwark, each write carrying the client's UUIDv7 idempotency key and
// retried with it through every fault (the client also loses a share of the
// replies on purpose, so retries of applied writes happen in every run).
// Each write has a value no other write has. Afterwards the store's data
// says how often each one was applied (a key's version counts its puts),
// and check::CheckExactlyOnce judges: never applied twice, nothing answered
// lost, every answer naming the revision where it was applied.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/client.h"
#include "chaos/chaos_client.h"
#include "check/exactly_once.h"

namespace bw::chaos {

struct ExactlyOnceOptions {
  int clients = 4;
  int think_ms = 20;
  int64_t op_timeout_us = 2'000'000;
  // Replies the clients drop after the server acted (forcing retries).
  double drop_reply_chance = 0.02;
};

class ExactlyOnceWorkload final : public Workload {
 public:
  ExactlyOnceWorkload(std::vector<std::string> endpoints, ExactlyOnceOptions o, env::Clock& clock,
                      int64_t epoch_us);
  ~ExactlyOnceWorkload() override { Stop(); }

  const char* name() const override { return "exactly-once"; }
  const char* checker() const override {
    return "exactly-once (keyed writes, versions in the store)";
  }
  [[nodiscard]] absl::Status Start() override;
  void Stop() override;
  // Reads back every key written and runs the checker.
  [[nodiscard]] absl::Status Check(std::string* summary) override;
  uint64_t ops() const override { return ops_.load(); }
  const OpLog* log() const override { return &log_; }

 private:
  void Run(int worker);

  std::vector<std::string> endpoints_;
  ExactlyOnceOptions o_;
  Workers workers_;
  OpLog log_;
  std::atomic<uint64_t> ops_{0};
  std::mutex mu_;
  std::vector<check::KeyedRequest> requests_;
  uint64_t ok_ = 0, failed_ = 0, unknown_ = 0, replayed_ = 0;
};

}  // namespace bw::chaos
