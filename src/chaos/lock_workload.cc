#include "chaos/lock_workload.h"

#include "absl/strings/str_cat.h"
#include "env/real/real_env.h"
#include "env/seeded_random.h"

namespace bw::chaos {

LockWorkload::LockWorkload(std::vector<std::string> endpoints, LockOptions o, env::Clock& clock,
                           int64_t epoch_us)
    : endpoints_(std::move(endpoints)), o_(o), log_(clock, epoch_us) {}

void LockWorkload::Log(int w, absl::string_view op, std::string detail, int64_t invoke,
                       bulwark::Outcome outcome) {
  log_.Add(w, op, detail, invoke, outcome == bulwark::Outcome::kUnknown ? -1 : log_.Now(),
           ToCheck(outcome));
}

absl::Status LockWorkload::Start() {
  const size_t n = endpoints_.size();
  for (int w = 0; w < o_.clients; ++w) {
    auto c = bulwark::Client::Connect(ChaosClientOptions({endpoints_[w % n]}, o_.op_timeout_us));
    if (!c.ok()) return c.status();
    readers_.push_back(std::move(*c));
  }
  return workers_.Start(
      o_.clients,
      [this](int w) {
        // Every member, starting with the one this worker reads from.
        return ChaosClientOptions(RotatedEndpoints(endpoints_, w), o_.op_timeout_us);
      },
      [this](int w) { Run(w); });
}

void LockWorkload::Stop() {
  workers_.Stop();
}

void LockWorkload::Run(int w) {
  bulwark::Client& c = workers_.client(w);
  bulwark::Client& reader = *readers_[w];
  env::SeededRandom random(o_.seed * 15485863 + static_cast<uint64_t>(w));
  while (!workers_.stopping()) {
    int64_t invoke = Now();
    auto grant = c.LeaseGrant(o_.lease_ttl_s);
    ++ops_;
    Log(w, "lease-grant",
        absl::StrCat("\"ttl\":", o_.lease_ttl_s, ",\"lease\":", grant.ok() ? grant.value.id() : 0),
        invoke, grant.outcome);
    if (!grant.ok()) {
      env::SleepMicros(50'000);
      continue;
    }
    const int64_t lease = grant.value.id();
    std::unique_ptr<bulwark::LeaseKeeper> keeper = c.KeepAlive(lease);
    const std::string key = absl::StrCat("lock/", absl::Hex(lease));
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value(absl::StrCat("client ", w));
    put.set_lease(lease);
    invoke = Now();
    auto created = c.Put(put);
    ++ops_;
    Log(w, "put-lock-key",
        absl::StrCat("\"key\":", JsonString(key),
                     ",\"revision\":", created.ok() ? created.value.header().revision() : 0),
        invoke, created.outcome);
    bool held = false;
    int64_t token = 0;
    if (created.ok()) {
      // A new key: the put's revision is its create revision (a replayed
      // answer names the original one).
      token = created.value.header().revision();
      const int64_t wait_from = Now();
      const int64_t give_up_at = wait_from + o_.acquire_timeout_us;
      while (!workers_.stopping() && Now() < give_up_at) {
        etcdserverpb::RangeRequest older;
        older.set_key("lock/");
        older.set_range_end("lock0");
        older.set_max_create_revision(token - 1);
        older.set_limit(1);
        auto r = reader.Range(older);
        ++ops_;
        if (r.ok() && r.value.kvs_size() == 0) {
          held = true;
          break;
        }
        env::SleepMicros(20'000);
      }
      // The wait as one operation: acquired, or given up (nothing applied).
      Log(w, held ? "acquire" : "acquire-gave-up",
          absl::StrCat("\"key\":", JsonString(key), ",\"token\":", token), wait_from,
          held ? bulwark::Outcome::kOk : bulwark::Outcome::kFailed);
    }
    if (held) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++acquired_;
      }
      if (random.Chance(o_.stall_chance)) {
        keeper->Stop();  // a stalled process sends no keep-alives
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stalls_;
        }
        for (int slept = 0; slept < o_.stall_ms && !workers_.stopping(); slept += 50)
          env::SleepMicros(50'000);
      }
      for (int i = 0; i < o_.writes_per_hold && !workers_.stopping(); ++i) {
        etcdserverpb::TxnRequest t;
        etcdserverpb::Compare* owner = t.add_compare();
        owner->set_key(key);
        owner->set_target(etcdserverpb::Compare::CREATE);
        owner->set_result(etcdserverpb::Compare::EQUAL);
        owner->set_create_revision(token);
        etcdserverpb::PutRequest* guarded = t.add_success()->mutable_request_put();
        guarded->set_key("lockres");
        guarded->set_value(absl::StrCat(w, ":", token, ":", i));
        if (o_.unfenced) t.clear_compare();  // the planted bug: trust the lease
        invoke = Now();
        auto r = c.Txn(t);
        const int64_t done = Now();
        ++ops_;
        Log(w, "guarded-write",
            absl::StrCat("\"token\":", token, ",\"value\":", JsonString(guarded->value()),
                         ",\"succeeded\":", r.ok() && r.value.succeeded() ? "true" : "false",
                         ",\"revision\":", r.ok() ? r.value.header().revision() : 0),
            invoke, r.outcome);
        std::lock_guard<std::mutex> lock(mu_);
        if (r.ok() && r.value.succeeded()) {
          writes_.push_back(check::FencedWrite{static_cast<uint64_t>(w), token,
                                               r.value.header().revision(), invoke, done});
        } else if (r.ok()) {
          ++fenced_out_;  // the lease expired and took the key: no longer held
          break;
        } else if (r.outcome == bulwark::Outcome::kUnknown) {
          ++unknown_;
        }
        env::SleepMicros(int64_t{o_.hold_ms} * 1000);
      }
    } else if (created.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++gave_up_;
    }
    // Release: the key, then the lease (either alone would do; both is the
    // recipe's unlock plus the session's close).
    etcdserverpb::DeleteRangeRequest del;
    del.set_key(key);
    invoke = Now();
    auto deleted = c.Delete(del);
    Log(w, "delete-lock-key", absl::StrCat("\"key\":", JsonString(key)), invoke, deleted.outcome);
    keeper->Stop();
    invoke = Now();
    auto revoked = c.LeaseRevoke(lease);
    Log(w, "lease-revoke", absl::StrCat("\"lease\":", lease), invoke, revoked.outcome);
    ops_ += 2;
  }
}

absl::Status LockWorkload::Check(std::string* summary) {
  std::lock_guard<std::mutex> lock(mu_);
  *summary = absl::StrCat(
      acquired_, " acquisitions (", stalls_, " holders stalled past their lease), ", writes_.size(),
      " guarded writes applied, ", fenced_out_, " refused by the fence (the lease had expired), ",
      unknown_, " unknown, ", gave_up_, " waits given up");
  return check::CheckLockFencing(writes_);
}

}  // namespace bw::chaos
