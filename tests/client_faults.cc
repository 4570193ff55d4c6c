// The C++ client (libbulwark) under faults, driven by tests/client_test.py,
// which kills or pauses members while this runs. One mode per run; the
// last line printed is a JSON summary the test checks.
//
//   --mode reads            linearizable (or --serializable) Gets of one key
//                           from --concurrency threads until --duration-s
//   --mode keyed-writes     Puts of fresh keys (one per write), each with the
//                           client's UUIDv7 idempotency key; at the end every
//                           key's version counts how often it was applied
//   --mode unkeyed-writes   the same without idempotency keys
//   --mode watch-lease      one writer puts fresh keys while a Watch on their
//                           prefix must see each exactly once, in revision
//                           order; and a leased key kept alive by a keeper
//                           must outlive the faults
//   --drop-replies P        lose each answer with chance P after the server
//                           sent it (an injected fault in the client)
//   --blind-retry           (unkeyed) retry a write whose outcome is unknown,
//                           as a naive client would: the version count must
//                           then show double applies (the check can fail)
//   --user U --password P   authenticate as U (ClientOptions::user)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "bulwark/client.h"

namespace {

struct Flags {
  std::vector<std::string> endpoints;
  std::string mode = "reads";
  std::string prefix = "cf/";
  double duration_s = 8;
  int concurrency = 8;
  int timeout_ms = 2000;
  bool serializable = false;
  bool blind_retry = false;
  double drop_replies = 0;
  std::string user;
  std::string password;
  // TLS, as etcdctl's --cacert, --cert and --key.
  std::string cacert, cert, key;
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "client_faults: %s\nusage: client_faults --endpoints H:P,... --mode "
               "reads|keyed-writes|unkeyed-writes|watch-lease [--duration-s S] [--concurrency C] "
               "[--timeout-ms T] [--prefix P] [--serializable] [--drop-replies P] [--blind-retry] "
               "[--cacert F --cert F --key F]\n"
               "       [--user U --password P]\n",
               why);
  return 2;
}

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Watch and lease keeper through the faults (see the file comment).
int WatchLease(bulwark::Client& c, const Flags& f) {
  auto grant = c.LeaseGrant(5);
  if (!grant.ok()) {
    std::fprintf(stderr, "client_faults: lease grant: %s\n",
                 std::string(grant.status.message()).c_str());
    return 1;
  }
  int64_t lease = grant.value.id();
  std::unique_ptr<bulwark::LeaseKeeper> keeper = c.KeepAlive(lease);
  etcdserverpb::PutRequest leased;
  leased.set_key(f.prefix + "leased");
  leased.set_value("v");
  leased.set_lease(lease);
  if (!c.Put(leased).ok()) {
    std::fprintf(stderr, "client_faults: leased put failed\n");
    return 1;
  }
  // The watch opens on the leader (the member the test kills first), once
  // the client knows it, so the stream must resume.
  for (int i = 0; i < 100 && c.metrics().leader < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::mutex mu;
  std::vector<std::pair<int64_t, std::string>> events;
  bulwark::WatchOptions w;
  w.key = f.prefix + "e/";
  w.range_end = f.prefix + "e0";
  bool canceled = false;
  std::unique_ptr<bulwark::Watcher> watcher = c.Watch(w, [&](const etcdserverpb::WatchResponse& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.canceled()) canceled = true;
    for (const auto& e : r.events())
      events.emplace_back(e.kv().mod_revision(), e.kv().key());
  });
  const Clock::time_point end =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(f.duration_s * 1000));
  uint64_t puts = 0, failed = 0;
  for (int i = 0; Clock::now() < end; ++i) {
    auto r = c.Put(absl::StrFormat("%se/%08d", f.prefix, i), "v");
    (r.ok() ? puts : failed)++;
  }
  // Every key the store holds must reach the watcher (bounded wait).
  etcdserverpb::RangeRequest rr;
  rr.set_key(w.key);
  rr.set_range_end(w.range_end);
  rr.set_keys_only(true);
  auto all = c.Range(rr);
  if (!all.ok()) {
    std::fprintf(stderr, "client_faults: final range failed\n");
    return 1;
  }
  size_t stored = static_cast<size_t>(all.value.kvs_size());
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (events.size() >= stored) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  watcher->Cancel();
  std::set<std::string> seen;
  uint64_t duplicates = 0, out_of_order = 0;
  int64_t last = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [rev, key] : events) {
      if (rev <= last) ++out_of_order;
      last = std::max(last, rev);
      if (!seen.insert(key).second) ++duplicates;
    }
  }
  uint64_t missing = 0;
  for (const auto& kv : all.value.kvs())
    missing += seen.count(kv.key()) ? 0 : 1;
  auto still = c.Get(f.prefix + "leased");
  bool leased_present = still.ok() && still.value.kvs_size() == 1;
  bulwark::ClientMetrics m = c.metrics();
  std::printf(
      "{\"mode\":\"watch-lease\",\"puts\":%llu,\"failed\":%llu,\"stored\":%zu,"
      "\"events\":%zu,\"missing\":%llu,\"duplicates\":%llu,\"out_of_order\":%llu,"
      "\"canceled\":%s,\"leased_key_present\":%s,\"keeper_ttl\":%lld,\"retries\":%llu,\"watch_"
      "resumes\":%llu}\n",
      (unsigned long long)puts, (unsigned long long)failed, stored, seen.size(),
      (unsigned long long)missing, (unsigned long long)duplicates, (unsigned long long)out_of_order,
      canceled ? "true" : "false", leased_present ? "true" : "false", (long long)keeper->ttl(),
      (unsigned long long)m.pipeline.count(bulwark::EventType::kRetry),
      (unsigned long long)m.watch_resumes);
  keeper->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "client_faults: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoints") {
      f.endpoints = absl::StrSplit(value("--endpoints"), ',', absl::SkipEmpty());
    } else if (a == "--mode") {
      f.mode = value("--mode");
    } else if (a == "--prefix") {
      f.prefix = value("--prefix");
    } else if (a == "--duration-s") {
      f.duration_s = std::stod(value("--duration-s"));
    } else if (a == "--concurrency") {
      f.concurrency = std::stoi(value("--concurrency"));
    } else if (a == "--timeout-ms") {
      f.timeout_ms = std::stoi(value("--timeout-ms"));
    } else if (a == "--serializable") {
      f.serializable = true;
    } else if (a == "--drop-replies") {
      f.drop_replies = std::stod(value("--drop-replies"));
    } else if (a == "--user") {
      f.user = value("--user");
    } else if (a == "--password") {
      f.password = value("--password");
    } else if (a == "--cacert") {
      f.cacert = value("--cacert");
    } else if (a == "--cert") {
      f.cert = value("--cert");
    } else if (a == "--key") {
      f.key = value("--key");
    } else if (a == "--blind-retry") {
      f.blind_retry = true;
    } else {
      return Usage(("unknown flag " + a).c_str());
    }
  }
  if (f.endpoints.empty()) return Usage("--endpoints is required");
  if (f.mode != "reads" && f.mode != "keyed-writes" && f.mode != "unkeyed-writes" &&
      f.mode != "watch-lease") {
    return Usage("--mode must be reads, keyed-writes, unkeyed-writes or watch-lease");
  }

  bulwark::ClientOptions o;
  o.endpoints = f.endpoints;
  o.policies.default_timeout_us = int64_t{f.timeout_ms} * 1000;
  o.policies.attempt_timeout_us = std::min<int64_t>(o.policies.default_timeout_us, 700'000);
  o.drop_reply_chance = f.drop_replies;
  o.user = f.user;
  o.password = f.password;
  o.tls_ca_file = f.cacert;
  o.tls_cert_file = f.cert;
  o.tls_key_file = f.key;
  std::atomic<uint64_t> breaker_opened{0}, ejected{0};
  const auto t_start = std::chrono::steady_clock::now();
  o.on_event = [&](const bulwark::Event& e) {
    if (e.type == bulwark::EventType::kBreakerOpened) ++breaker_opened;
    if (e.type == bulwark::EventType::kEjected) ++ejected;
    if (getenv("CLIENT_FAULTS_EVENTS") != nullptr && e.type != bulwark::EventType::kHedge) {
      std::fprintf(
          stderr, "%.3f %s endpoint %d\n",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(),
          bulwark::EventTypeName(e.type), e.endpoint);
    }
  };
  auto client = bulwark::Client::Connect(o);
  if (!client.ok()) {
    std::fprintf(stderr, "client_faults: %s\n", std::string(client.status().message()).c_str());
    return 1;
  }
  bulwark::Client& c = **client;

  if (f.mode == "watch-lease") return WatchLease(c, f);
  if (f.mode == "reads") {
    auto put = c.Put(f.prefix + "r", "v");
    if (!put.ok()) {
      std::fprintf(stderr, "client_faults: setup put: %s\n",
                   std::string(put.status.message()).c_str());
      return 1;
    }
  }

  std::atomic<uint64_t> calls{0}, ok{0}, failed{0}, unknown{0}, late{0}, next_key{0};
  std::atomic<uint64_t> wrong{0}, retried_unknown{0};
  std::mutex mu;
  double max_ms = 0;
  std::vector<std::string> acknowledged;
  std::string first_error, first_unknown;
  const Clock::time_point end =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(f.duration_s * 1000));
  std::vector<std::thread> threads;
  for (int t = 0; t < f.concurrency; ++t) {
    threads.emplace_back([&] {
      while (Clock::now() < end) {
        Clock::time_point t0 = Clock::now();
        bulwark::Outcome outcome;
        absl::Status status;
        std::string key;
        if (f.mode == "reads") {
          auto r = c.Get(f.prefix + "r", f.serializable);
          outcome = r.outcome;
          status = r.status;
          if (r.ok() && (r.value.kvs_size() != 1 || r.value.kvs(0).value() != "v")) ++wrong;
        } else {
          key = absl::StrFormat("%sw/%08d", f.prefix, next_key.fetch_add(1));
          bulwark::CallOptions co;
          co.no_idempotency_key = f.mode == "unkeyed-writes";
          auto r = c.Put(key, "v", co);
          while (f.blind_retry && r.outcome == bulwark::Outcome::kUnknown) {
            ++retried_unknown;
            r = c.Put(key, "v", co);
          }
          outcome = r.outcome;
          status = r.status;
        }
        double ms = Ms(Clock::now() - t0);
        ++calls;
        std::lock_guard<std::mutex> lock(mu);
        max_ms = std::max(max_ms, ms);
        // The deadline plus scheduling slack on a busy 2-core machine.
        if (ms > f.timeout_ms + 250) ++late;
        switch (outcome) {
          case bulwark::Outcome::kOk:
            ++ok;
            if (!key.empty()) acknowledged.push_back(key);
            break;
          case bulwark::Outcome::kFailed:
            ++failed;
            if (first_error.empty()) first_error = std::string(status.message());
            break;
          case bulwark::Outcome::kUnknown:
            ++unknown;
            if (first_unknown.empty()) first_unknown = std::string(status.message());
            break;
        }
      }
    });
  }
  for (std::thread& t : threads)
    t.join();

  // Writes: every key's version is the number of times a Put on it was applied.
  uint64_t double_applied = 0, lost = 0, keys = 0;
  if (f.mode != "reads") {
    etcdserverpb::RangeRequest rr;
    rr.set_key(f.prefix + "w/");
    rr.set_range_end(f.prefix + "w0");  // '/' + 1
    bulwark::CallOptions co;
    co.timeout = std::chrono::seconds(20);
    auto all = c.Range(rr, co);
    if (!all.ok()) {
      std::fprintf(stderr, "client_faults: final range: %s\n",
                   std::string(all.status.message()).c_str());
      return 1;
    }
    std::vector<std::string> present;
    for (const auto& kv : all.value.kvs()) {
      ++keys;
      if (kv.version() > 1) ++double_applied;
      present.push_back(kv.key());
    }
    std::sort(present.begin(), present.end());
    for (const std::string& k : acknowledged) {
      if (!std::binary_search(present.begin(), present.end(), k)) ++lost;
    }
  }
  bulwark::ClientMetrics m = c.metrics();
  std::printf(
      "{\"mode\":\"%s\",\"calls\":%llu,\"ok\":%llu,\"failed\":%llu,\"unknown\":%llu,"
      "\"late\":%llu,\"max_ms\":%.1f,\"wrong\":%llu,\"keys\":%llu,\"double_applied\":%llu,"
      "\"lost\":%llu,\"retried_unknown\":%llu,\"attempts\":%llu,\"retries\":%llu,"
      "\"hedges\":%llu,\"replayed\":%llu,\"breaker_opened\":%llu,\"ejected\":%llu,"
      "\"leader_changes\":%llu,\"first_error\":\"%s\",\"first_unknown\":\"%s\"}\n",
      f.mode.c_str(), (unsigned long long)calls.load(), (unsigned long long)ok.load(),
      (unsigned long long)failed.load(), (unsigned long long)unknown.load(),
      (unsigned long long)late.load(), max_ms, (unsigned long long)wrong.load(),
      (unsigned long long)keys, (unsigned long long)double_applied, (unsigned long long)lost,
      (unsigned long long)retried_unknown.load(), (unsigned long long)m.pipeline.attempts,
      (unsigned long long)m.pipeline.count(bulwark::EventType::kRetry),
      (unsigned long long)m.pipeline.count(bulwark::EventType::kHedge),
      (unsigned long long)m.replayed, (unsigned long long)breaker_opened.load(),
      (unsigned long long)ejected.load(), (unsigned long long)m.leader_changes,
      absl::StrReplaceAll(first_error, {{"\"", "'"}, {"\\", "/"}}).c_str(),
      absl::StrReplaceAll(first_unknown, {{"\"", "'"}, {"\\", "/"}}).c_str());
  return 0;
}
