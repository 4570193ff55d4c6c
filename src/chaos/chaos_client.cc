#include "chaos/chaos_client.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "env/real/real_env.h"

namespace bw::chaos {

bulwark::ClientOptions ChaosClientOptions(std::vector<std::string> endpoints,
                                          int64_t op_timeout_us) {
  bulwark::ClientOptions co;
  co.endpoints = std::move(endpoints);
  co.policies.default_timeout_us = op_timeout_us;
  co.policies.attempt_timeout_us = std::min<int64_t>(op_timeout_us, 500'000);
  co.policies.backoff = bulwark::BackoffOptions{10'000, 200'000, 2.0};
  co.connect_timeout = std::chrono::milliseconds(10'000);
  return co;
}

absl::Status ReadAll(bulwark::Client& c, const std::string& key, const std::string& range_end,
                     std::vector<mvccpb::KeyValue>* out) {
  etcdserverpb::RangeRequest rr;
  rr.set_key(key);
  rr.set_range_end(range_end);
  rr.set_limit(5000);
  bulwark::CallOptions co;
  co.timeout = std::chrono::seconds(30);
  for (;;) {
    auto page = c.Range(rr, co);
    // Reading back measures the run, it does not test availability: a
    // cluster just healed may still be electing, so keep asking (each try
    // ends within 30 s; three of them).
    for (int again = 0; again < 2 && !page.ok(); ++again) {
      env::SleepMicros(2'000'000);
      page = c.Range(rr, co);
    }
    if (!page.ok()) {
      return absl::UnavailableError(
          absl::StrCat("could not read ", key, "..", range_end, " back: ", page.status.message()));
    }
    for (const auto& kv : page.value.kvs())
      out->push_back(kv);
    if (!page.value.more() || page.value.kvs_size() == 0) return absl::OkStatus();
    rr.set_revision(page.value.header().revision());
    rr.set_key(page.value.kvs(page.value.kvs_size() - 1).key() + std::string(1, '\0'));
  }
}

absl::Status Workers::Start(int n, const std::function<bulwark::ClientOptions(int)>& options,
                            std::function<void(int)> run) {
  for (int w = 0; w < n; ++w) {
    auto c = bulwark::Client::Connect(options(w));
    if (!c.ok()) return c.status();
    clients_.push_back(std::move(*c));
  }
  for (int w = 0; w < n; ++w)
    threads_.emplace_back([run, w] { run(w); });
  return absl::OkStatus();
}

void Workers::Stop() {
  stop_ = true;
  for (std::thread& t : threads_)
    t.join();
  threads_.clear();
}

}  // namespace bw::chaos
