#include "chaos/chaos_client.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "env/real/real_env.h"

namespace bw::chaos {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

check::Outcome ToCheck(bulwark::Outcome o) {
  switch (o) {
    case bulwark::Outcome::kOk:
      return check::Outcome::kOk;
    case bulwark::Outcome::kFailed:
      return check::Outcome::kFailed;
    case bulwark::Outcome::kUnknown:
      return check::Outcome::kUnknown;
  }
  return check::Outcome::kUnknown;
}

std::vector<std::string> RotatedEndpoints(const std::vector<std::string>& endpoints, size_t w) {
  std::vector<std::string> out;
  for (size_t k = 0; k < endpoints.size(); ++k)
    out.push_back(endpoints[(w + k) % endpoints.size()]);
  return out;
}

void OpLog::Add(int client, absl::string_view op, absl::string_view detail, int64_t invoke_us,
                int64_t complete_us, check::Outcome outcome) {
  std::string line =
      absl::StrCat("{\"client\":", client, ",\"op\":", JsonString(op), detail.empty() ? "" : ",",
                   detail, ",\"invoke_us\":", invoke_us, ",\"complete_us\":", complete_us,
                   ",\"outcome\":", JsonString(std::string(check::OutcomeName(outcome))), "}\n");
  std::lock_guard<std::mutex> lock(mu_);
  lines_ += line;
  ++n_;
}

absl::Status OpLog::Write(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ofstream f(path);
  f << lines_;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

size_t OpLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_;
}

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
