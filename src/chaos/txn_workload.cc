#include "chaos/txn_workload.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "env/real/real_env.h"
#include "env/seeded_random.h"

namespace bw::chaos {

namespace {

std::vector<uint64_t> ParseList(const std::string& value) {
  std::vector<uint64_t> out;
  for (absl::string_view part : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
    uint64_t id = 0;
    if (absl::SimpleAtoi(part, &id)) out.push_back(id);
  }
  return out;
}

// One snapshot of `keys`: each key's list and mod revision (0: absent).
struct Snapshot {
  std::vector<std::string> values;
  std::vector<int64_t> mod;
};

etcdserverpb::TxnRequest ReadTxn(const std::vector<std::string>& keys) {
  etcdserverpb::TxnRequest t;
  for (const std::string& k : keys)
    t.add_success()->mutable_request_range()->set_key(k);
  return t;
}

Snapshot FromResponse(const etcdserverpb::TxnResponse& r) {
  Snapshot s;
  for (const auto& op : r.responses()) {
    const auto& kvs = op.response_range().kvs();
    s.values.push_back(kvs.empty() ? "" : kvs[0].value());
    s.mod.push_back(kvs.empty() ? 0 : kvs[0].mod_revision());
  }
  return s;
}

}  // namespace

TxnWorkload::TxnWorkload(std::vector<std::string> endpoints, TxnOptions o, env::Clock& clock,
                         int64_t epoch_us)
    : endpoints_(std::move(endpoints)), o_(o), log_(clock, epoch_us) {}

absl::Status TxnWorkload::Start() {
  return workers_.Start(
      o_.clients,
      [this](int w) {
        bulwark::ClientOptions co =
            ChaosClientOptions(RotatedEndpoints(endpoints_, w), o_.op_timeout_us);
        co.drop_reply_chance = o_.drop_reply_chance;
        return co;
      },
      [this](int w) { Run(w); });
}

void TxnWorkload::Stop() {
  workers_.Stop();
}

void TxnWorkload::Run(int w) {
  bulwark::Client& c = workers_.client(w);
  env::SeededRandom random(o_.seed * 104729 + static_cast<uint64_t>(w));
  for (uint64_t seq = 1; !workers_.stopping(); ++seq) {
    const int64_t generation = static_cast<int64_t>(log_.Now() / (o_.key_lifetime_s * 1e6));
    std::set<uint64_t> picked;
    const size_t want = 2 + random.Below(2);
    while (picked.size() < want)
      picked.insert(random.Below(static_cast<uint64_t>(o_.keys)));
    std::vector<std::string> keys;
    for (uint64_t k : picked)
      keys.push_back(absl::StrCat("t/", generation, "/", k));
    // One txn call, logged: what it read or wrote, and how it ended.
    auto call = [&](const etcdserverpb::TxnRequest& t, absl::string_view op, std::string detail) {
      const int64_t invoke = log_.Now();
      auto r = c.Txn(t);
      ++ops_;
      if (r.ok()) {
        Snapshot s = FromResponse(r.value);
        absl::StrAppend(&detail, ",\"succeeded\":", r.value.succeeded() ? "true" : "false",
                        ",\"revision\":", r.value.header().revision());
        if (op != "append") {
          // Each list's length and last id: a valid read is the first
          // `length` ids of the key's final list, so this is enough to
          // rebuild it (and keeps a five-minute log in megabytes).
          std::string lengths, last;
          for (size_t i = 0; i < s.values.size(); ++i) {
            std::vector<uint64_t> list = ParseList(s.values[i]);
            absl::StrAppend(&lengths, i ? "," : "", list.size());
            absl::StrAppend(&last, i ? "," : "", list.empty() ? 0 : list.back());
          }
          absl::StrAppend(&detail, ",\"lengths\":[", lengths, "],\"last\":[", last, "]");
        }
      }
      log_.Add(w, op, detail, invoke, r.outcome == bulwark::Outcome::kUnknown ? -1 : log_.Now(),
               ToCheck(r.outcome));
      return r;
    };
    std::string keys_json = "\"keys\":[";
    for (size_t i = 0; i < keys.size(); ++i)
      absl::StrAppend(&keys_json, i ? "," : "", JsonString(keys[i]));
    keys_json += "]";
    if (random.Chance(0.3)) {
      auto r = call(ReadTxn(keys), "read", keys_json);
      if (r.ok()) {
        Snapshot s = FromResponse(r.value);
        check::ListRead read;
        for (size_t i = 0; i < keys.size() && i < s.values.size(); ++i)
          read[keys[i]] = ParseList(s.values[i]);
        std::lock_guard<std::mutex> lock(mu_);
        reads_.push_back(std::move(read));
      }
    } else {
      check::AppendTxn txn;
      txn.id = (static_cast<uint64_t>(w) + 1) * 1'000'000'000 + seq;
      txn.keys = keys;
      txn.outcome = check::Outcome::kFailed;  // until an attempt may have applied it
      for (int attempt = 0; attempt < 5 && !workers_.stopping(); ++attempt) {
        auto before = call(ReadTxn(keys), "read-before-append", keys_json);
        if (!before.ok()) break;
        Snapshot s = FromResponse(before.value);
        if (s.values.size() != keys.size()) break;
        etcdserverpb::TxnRequest t;
        for (size_t i = 0; i < keys.size(); ++i) {
          etcdserverpb::Compare* cmp = t.add_compare();
          cmp->set_key(keys[i]);
          cmp->set_target(etcdserverpb::Compare::MOD);
          cmp->set_result(etcdserverpb::Compare::EQUAL);
          cmp->set_mod_revision(s.mod[i]);
          etcdserverpb::PutRequest* put = t.add_success()->mutable_request_put();
          put->set_key(keys[i]);
          put->set_value(absl::StrCat(s.values[i], s.values[i].empty() ? "" : " ", txn.id));
        }
        auto r = call(t, "append", absl::StrCat(keys_json, ",\"id\":", txn.id));
        if (r.ok() && r.value.succeeded()) {
          txn.outcome = check::Outcome::kOk;
          break;
        }
        if (r.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          ++conflicts_;  // another txn got there first; read again
          continue;
        }
        if (r.outcome == bulwark::Outcome::kUnknown) txn.outcome = check::Outcome::kUnknown;
        break;
      }
      std::lock_guard<std::mutex> lock(mu_);
      txns_.push_back(std::move(txn));
    }
    env::SleepMicros(int64_t{o_.think_ms} * 1000);
  }
}

absl::Status TxnWorkload::Check(std::string* summary) {
  std::vector<mvccpb::KeyValue> kvs;
  absl::Status read = ReadAll(workers_.client(0), "t/", "t0", &kvs);
  if (!read.ok()) return absl::UnavailableError(absl::StrCat("txn: ", read.message()));
  std::map<std::string, std::vector<uint64_t>> lists;
  for (const auto& kv : kvs)
    lists[kv.key()] = ParseList(kv.value());
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t ok = 0, unknown = 0;
  for (const auto& t : txns_) {
    ok += t.outcome == check::Outcome::kOk;
    unknown += t.outcome == check::Outcome::kUnknown;
  }
  check::AppendSummary s;
  absl::Status st = check::CheckAppends(txns_, reads_, lists, &s);
  *summary = absl::StrCat(txns_.size(), " append txns (", ok, " ok, ", unknown,
                          " unknown: ", s.unknown_applied, " applied, ", s.unknown_absent,
                          " not), ", reads_.size(), " read txns, ", conflicts_,
                          " compare conflicts retried, ", lists.size(), " keys, ", s.appends,
                          " appends, ", s.order_edges, " order edges, no cycle");
  if (!st.ok()) *summary = absl::StrCat(txns_.size(), " append txns, ", reads_.size(), " reads");
  return st;
}

}  // namespace bw::chaos
