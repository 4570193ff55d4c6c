#include "chaos/watch_workload.h"

#include "chaos/chaos_client.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "env/real/real_env.h"

namespace bw::chaos {

WatchWorkload::WatchWorkload(std::vector<std::string> endpoints, int watchers)
    : endpoints_(std::move(endpoints)), watchers_(watchers), seen_(watchers) {}

WatchWorkload::~WatchWorkload() {
  for (auto& w : watches_)
    w->Cancel();
  watches_.clear();
}

absl::Status WatchWorkload::Start() {
  for (int i = 0; i < watchers_; ++i) {
    // Each watcher's list starts at a different member.
    std::vector<std::string> eps;
    for (size_t k = 0; k < endpoints_.size(); ++k) {
      eps.push_back(endpoints_[(i + k) % endpoints_.size()]);
    }
    bulwark::ClientOptions co = ChaosClientOptions(eps, 2'000'000);
    auto c = bulwark::Client::Connect(co);
    if (!c.ok()) return c.status();
    // Start after the current revision, so the watcher's span is known.
    auto now = (*c)->Get("eo/");
    if (!now.ok()) return now.status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_[i].start_revision = now.value.header().revision() + 1;
    }
    bulwark::WatchOptions w;
    w.key = "eo/";
    w.range_end = "eo0";
    w.start_revision = now.value.header().revision() + 1;
    w.prev_kv = true;
    watches_.push_back((*c)->Watch(w, [this, i](const etcdserverpb::WatchResponse& r) {
      std::lock_guard<std::mutex> lock(mu_);
      Seen& s = seen_[i];
      if (r.canceled()) s.canceled = true;
      for (const mvccpb::Event& e : r.events()) {
        s.events.emplace_back(e.kv().mod_revision(), e.kv().key());
        s.served_by.push_back(r.header().member_id());
        // Every key is written once: a put never has a previous version.
        if (e.has_prev_kv() && e.prev_kv().version() > 0) s.prev_kv_wrong = true;
      }
    }));
    clients_.push_back(std::move(*c));
  }
  return absl::OkStatus();
}

absl::Status WatchWorkload::Check(std::string* summary) {
  // The committed history of eo/: each key's put, by revision.
  std::map<int64_t, std::string> committed;
  std::vector<mvccpb::KeyValue> kvs;
  absl::Status read = ReadAll(*clients_.front(), "eo/", "eo0", &kvs);
  if (!read.ok()) return absl::UnavailableError(absl::StrCat("watch: ", read.message()));
  for (const auto& kv : kvs)
    committed[kv.mod_revision()] = kv.key();
  int64_t last = committed.empty() ? 0 : committed.rbegin()->first;
  // Bounded wait for every watcher to reach the last revision.
  for (int i = 0; i < 300; ++i) {
    bool all = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const Seen& s : seen_) {
        all = all && (s.canceled || last < s.start_revision ||
                      (!s.events.empty() && s.events.back().first >= last));
      }
    }
    if (all) break;
    env::SleepMicros(50'000);
  }
  for (auto& w : watches_)
    w->Cancel();
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t events = 0;
  for (size_t i = 0; i < seen_.size(); ++i) {
    const Seen& s = seen_[i];
    events += s.events.size();
    std::string who = absl::StrCat("watcher ", i, " (from revision ", s.start_revision, ")");
    if (s.canceled) return absl::FailedPreconditionError(who + " was canceled by the server");
    if (s.prev_kv_wrong) {
      return absl::FailedPreconditionError(who + ": a put of a new key came with a prev_kv");
    }
    for (size_t k = 1; k < s.events.size(); ++k) {
      if (s.events[k].first <= s.events[k - 1].first) {
        return absl::FailedPreconditionError(absl::StrCat(
            who, ": revision ", s.events[k].first, " after ", s.events[k - 1].first,
            s.events[k].first == s.events[k - 1].first ? " (a duplicate)" : " (out of order)"));
      }
    }
    size_t k = 0;
    for (auto it = committed.lower_bound(s.start_revision); it != committed.end(); ++it) {
      if (k < s.events.size() && s.events[k].first < it->first) {
        return absl::FailedPreconditionError(
            absl::StrCat(who, ": an event at revision ", s.events[k].first, " (",
                         s.events[k].second, ") that the store never committed"));
      }
      if (k >= s.events.size() || s.events[k].first != it->first) {
        // Where the events around it came from tells a gap (events after
        // it arrived) from a watch that stopped (none did, within 15 s).
        std::string before =
            k == 0 ? "none before it"
                   : absl::StrCat("the one before it (revision ", s.events[k - 1].first,
                                  ") from member ", absl::Hex(s.served_by[k - 1]));
        std::string after =
            k >= s.events.size()
                ? absl::StrCat("nothing after it arrived: the watch stopped, ",
                               std::distance(it, committed.end()), " puts undelivered")
                : absl::StrCat("the next one received (revision ", s.events[k].first,
                               ") from member ", absl::Hex(s.served_by[k]));
        return absl::FailedPreconditionError(absl::StrCat(who, ": missed the put of ", it->second,
                                                          " at revision ", it->first, " (a gap; ",
                                                          before, "; ", after, ")"));
      }
      ++k;
    }
    if (k < s.events.size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": an event at revision ", s.events[k].first, " beyond the committed history"));
    }
  }
  *summary = absl::StrCat(seen_.size(), " watchers, ", events, " events against ", committed.size(),
                          " committed puts");
  return absl::OkStatus();
}

}  // namespace bw::chaos
