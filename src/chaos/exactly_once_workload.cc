#include "chaos/exactly_once_workload.h"

#include "chaos/chaos_client.h"

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "env/real/real_env.h"

namespace bw::chaos {

ExactlyOnceWorkload::ExactlyOnceWorkload(std::vector<std::string> endpoints, ExactlyOnceOptions o,
                                         env::Clock& clock, int64_t epoch_us)
    : endpoints_(std::move(endpoints)), o_(o), log_(clock, epoch_us) {}

absl::Status ExactlyOnceWorkload::Start() {
  return workers_.Start(
      o_.clients,
      [this](int) {
        bulwark::ClientOptions co = ChaosClientOptions(endpoints_, o_.op_timeout_us);
        co.idempotency_scope = "chaos";
        co.drop_reply_chance = o_.drop_reply_chance;
        return co;
      },
      [this](int w) { Run(w); });
}

void ExactlyOnceWorkload::Stop() {
  workers_.Stop();
}

void ExactlyOnceWorkload::Run(int w) {
  bulwark::Client& c = workers_.client(w);
  for (uint64_t seq = 0; !workers_.stopping(); ++seq) {
    check::KeyedRequest req;
    std::string key = absl::StrCat("eo/", w, "/", seq);
    req.value = absl::StrCat("v", w, "-", seq);
    const int64_t invoke = log_.Now();
    auto r = c.Put(key, req.value);
    log_.Add(w, "put",
             absl::StrCat("\"key\":", JsonString(key), ",\"value\":", JsonString(req.value),
                          ",\"idempotency_key\":", JsonString(r.idempotency_key), ",\"attempts\":",
                          r.attempts, ",\"replayed\":", r.replayed ? "true" : "false",
                          ",\"revision\":", r.ok() ? r.value.header().revision() : 0),
             invoke, r.outcome == bulwark::Outcome::kUnknown ? -1 : log_.Now(), ToCheck(r.outcome));
    // The key the client made before its first attempt (and used on every retry).
    req.key = r.idempotency_key;
    req.answered = r.ok();
    if (r.ok()) req.answers.emplace_back("", r.value.header().revision());
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(std::move(req));
      if (r.ok()) ++ok_;
      if (r.outcome == bulwark::Outcome::kFailed) ++failed_;
      if (r.outcome == bulwark::Outcome::kUnknown) ++unknown_;
      if (r.replayed) ++replayed_;
    }
    ++ops_;
    env::SleepMicros(int64_t{o_.think_ms} * 1000);
  }
}

absl::Status ExactlyOnceWorkload::Check(std::string* summary) {
  // The store's record of what was applied: every key under eo/, with the
  // revision that created it, the last one and its version (puts applied).
  check::AppliedValues applied;
  std::vector<mvccpb::KeyValue> kvs;
  absl::Status read = ReadAll(workers_.client(0), "eo/", "eo0", &kvs);
  if (!read.ok()) return absl::UnavailableError(absl::StrCat("exactly-once: ", read.message()));
  for (const auto& kv : kvs) {
    // Each value is written by one request only; a key holding it at version
    // N was put N times (revisions between the first and the last are not
    // kept by the store; the checker needs the count and the first).
    std::vector<int64_t>& revs = applied[kv.value()];
    revs.push_back(kv.create_revision());
    for (int64_t v = 2; v <= kv.version(); ++v)
      revs.push_back(kv.mod_revision());
  }
  std::lock_guard<std::mutex> lock(mu_);
  *summary = absl::StrCat(requests_.size(), " keyed writes (", ok_, " ok, ", failed_, " failed, ",
                          unknown_, " unknown), ", replayed_,
                          " answered from the record after a lost reply; ", applied.size(),
                          " values in the store");
  return check::CheckExactlyOnce(requests_, applied);
}

}  // namespace bw::chaos
