#include "chaos/register_workload.h"

#include "chaos/chaos_client.h"

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "env/seeded_random.h"

namespace bw::chaos {

RegisterWorkload::RegisterWorkload(std::vector<std::string> endpoints, RegisterOptions o,
                                   env::Clock& clock, int64_t epoch_us)
    : endpoints_(std::move(endpoints)), o_(o), clock_(clock), epoch_us_(epoch_us) {}

absl::Status RegisterWorkload::Start() {
  return workers_.Start(
      o_.clients,
      [this](int w) {
        return ChaosClientOptions({endpoints_[w % endpoints_.size()]}, o_.op_timeout_us);
      },
      [this](int w) { Run(w); });
}

void RegisterWorkload::Stop() {
  workers_.Stop();
}

check::History RegisterWorkload::history() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

std::vector<Sample> RegisterWorkload::samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

void RegisterWorkload::Run(int w) {
  bulwark::Client& c = workers_.client(w);
  env::SeededRandom random(o_.seed * 7919 + static_cast<uint64_t>(w));
  // The last value this client saw on each key: what its CAS expects.
  std::map<std::string, std::string> last_seen;
  uint64_t seq = 0;
  while (!workers_.stopping()) {
    int64_t generation = static_cast<int64_t>(Now() / (o_.key_lifetime_s * 1e6));
    std::string key = absl::StrCat("r/", generation, "/", random.Below(o_.keys));
    uint64_t dice = random.Below(100);
    check::OpKind kind = dice < 50                            ? check::OpKind::kRead
                         : dice < 80 || !last_seen.count(key) ? check::OpKind::kWrite
                                                              : check::OpKind::kCas;
    std::string value = absl::StrCat("c", w, "-", ++seq);
    std::string expected = kind == check::OpKind::kCas ? last_seen[key] : "";
    size_t id;
    int64_t invoke;
    {
      std::lock_guard<std::mutex> lock(mu_);
      invoke = Now();
      id = history_.Invoke(static_cast<uint64_t>(w), kind, key,
                           kind == check::OpKind::kRead ? "" : value, expected, invoke);
    }
    check::Outcome outcome;
    std::string result;
    bool found = false;
    bool cas_ok = false;
    if (kind == check::OpKind::kRead) {
      auto r = c.Get(key);
      outcome = ToCheck(r.outcome);
      if (r.ok() && r.value.kvs_size() > 0) {
        found = true;
        result = r.value.kvs(0).value();
        last_seen[key] = result;
      }
    } else if (kind == check::OpKind::kWrite) {
      auto r = c.Put(key, value);
      outcome = ToCheck(r.outcome);
      if (r.ok()) last_seen[key] = value;
    } else {
      etcdserverpb::TxnRequest t;
      etcdserverpb::Compare* cmp = t.add_compare();
      cmp->set_key(key);
      cmp->set_target(etcdserverpb::Compare::VALUE);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_value(expected);
      etcdserverpb::PutRequest* put = t.add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(value);
      auto r = c.Txn(t);
      outcome = ToCheck(r.outcome);
      cas_ok = r.ok() && r.value.succeeded();
      if (cas_ok) last_seen[key] = value;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      int64_t done = Now();
      history_.Complete(id, done, outcome, result, found, cas_ok);
      samples_.push_back(Sample{invoke, done - invoke, kind, outcome});
    }
    ++ops_;
    env::SleepMicros(int64_t{o_.think_ms} * 1000);
  }
}

}  // namespace bw::chaos
