// The multi-key txn workload of a chaos run (list-append): each write txn
// appends its id to the lists held by two or three keys at once — it reads
// them, then commits only if none changed since (a compare on each key's
// mod revision) — and each read txn reads two or three lists in one
// snapshot. Keys are replaced every `key_lifetime_s` so the lists stay
// short. check::CheckAppends judges atomicity, loss, duplication, fractured
// reads and serializability from the final lists and every read.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "bulwark/client.h"
#include "chaos/chaos_client.h"
#include "check/append.h"
#include "env/env.h"

namespace bw::chaos {

struct TxnOptions {
  int clients = 4;
  int keys = 5;
  double key_lifetime_s = 10;
  int think_ms = 10;
  int64_t op_timeout_us = 1'000'000;
  // Replies dropped after the server acted: a retried txn must get its
  // first answer back, not be applied again.
  double drop_reply_chance = 0.02;
  uint64_t seed = 1;
};

class TxnWorkload final : public Workload {
 public:
  TxnWorkload(std::vector<std::string> endpoints, TxnOptions o, env::Clock& clock,
              int64_t epoch_us);
  ~TxnWorkload() override { Stop(); }

  const char* name() const override { return "txn"; }
  const char* checker() const override {
    return "txn (multi-key list-append: atomic, serializable, nothing lost or doubled)";
  }
  [[nodiscard]] absl::Status Start() override;
  void Stop() override;
  [[nodiscard]] absl::Status Check(std::string* summary) override;
  uint64_t ops() const override { return ops_.load(); }
  const OpLog* log() const override { return &log_; }

 private:
  void Run(int worker);

  std::vector<std::string> endpoints_;
  TxnOptions o_;
  OpLog log_;
  Workers workers_;
  std::atomic<uint64_t> ops_{0};
  std::mutex mu_;
  std::vector<check::AppendTxn> txns_;
  std::vector<check::ListRead> reads_;
  uint64_t conflicts_ = 0;
};

}  // namespace bw::chaos
