// The leases workload (Workload::kLeases): the member's lease clock and the
// leader's ticks on the MVCC store, checked by check::LeaseExpiryChecker.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

void Simulation::ProposeAsMember(NodeId id, bulwark::internal::Request r, uint64_t request_id,
                                 node::ProposeCallback done) {
  member::Member* m = LiveMember(id);
  if (m == nullptr) {
    done(absl::UnavailableError("node down"));
    return;
  }
  r.set_id(request_id);
  m->Propose(std::move(r), [done = std::move(done)](absl::StatusOr<kv::MvccResult> res) {
    if (!res.ok()) return done(res.status());
    done(std::any(*std::move(res)));
  });
}

void Simulation::ObserveLeases(NodeId id) {
  auto it = stores_.find(id);
  if (it == stores_.end()) return;
  const kv::MvccStore& store = *it->second;
  for (auto& [lease, t] : leases_) {
    if (t.revoked) continue;
    if (store.GetLease(lease, 0, false).has_value()) {
      t.seen_on.insert(id);
    } else if (t.seen_on.count(id)) {
      t.revoked = true;
      ++result_.stats.lease_revocations;
      lease_checker_.OnRevoked(lease, world_.now_us());
      if (!lease_checker_.ok()) {
        Fail(absl::StrCat("leases: ", lease_checker_.violation(), " (seen on node ", id.value(),
                          ")"));
        return;
      }
    }
  }
}

void Simulation::CheckLeasesExpired() {
  if (o_.clients > 0 && !lease_served_after_heal_) {
    Fail("liveness: no lease grant or keep-alive sent after healing was answered");
    return;
  }
  // A lease expires a little late: its TTL on the slowest clock from when
  // its last extension was answered, then until the leader's next tick and
  // the commit; a leader exists again soon after healing.
  const int64_t healed_us = heal_stamp_ / 1000;
  for (const auto& [lease, t] : leases_) {
    if (t.revoked || t.latest_end_us == 0) continue;
    const int64_t due_us = std::max(t.latest_end_us, healed_us) + 5'000'000;
    if (due_us < world_.now_us()) {
      Fail(
          absl::StrFormat("leases: lease %d was never revoked: its time ran out by %.3f s, "
                          "it is %.3f s now",
                          lease, t.latest_end_us / 1e6, world_.now_us() / 1e6));
      return;
    }
  }
}

void Simulation::LeaseClientStep(Client& c) {
  // A lease the client holds is kept alive now and then, or left to lapse;
  // once it is gone the client grants a new one.
  if (c.lease != 0 && leases_[c.lease].revoked) c.lease = 0;
  bulwark::internal::Request r;
  const bool grant = c.lease == 0;
  int64_t lease = c.lease;
  int64_t ttl_s = c.lease_ttl_s;
  if (grant) {
    lease = static_cast<int64_t>(c.id) * 1'000'000 + static_cast<int64_t>(++c.keyed_started);
    ttl_s = 2 + static_cast<int64_t>(rng().Below(3));
    r.mutable_lease_grant()->set_id(lease);
    r.mutable_lease_grant()->set_ttl(ttl_s);
  } else if (c.keepalives_left > 0) {
    --c.keepalives_left;
    r.mutable_lease_renew()->set_id(lease);
  } else {
    // Left to lapse: look again in a while.
    ScheduleClient(c, 200'000 + static_cast<int64_t>(rng().Below(800'000)));
    return;
  }
  const int64_t sent_us = world_.now_us();
  Client* cp = &c;
  // Answered or not, the client moves on after its timeout.
  Finish finish = StartOp(
      c, [this](Client&, bool) { return 100'000 + static_cast<int64_t>(rng().Below(1'000'000)); });
  ProposeAsMember(c.target, std::move(r), kv::MakeRequestId(c.id, ++c.seq),
                  [this, cp, finish, grant, lease, ttl_s, sent_us](absl::StatusOr<std::any> res) {
                    if (failed()) return;
                    if (!res.ok()) {
                      finish(false);
                      return;
                    }
                    const kv::MvccResult& m = std::any_cast<const kv::MvccResult&>(*res);
                    if (m.status.ok()) {
                      // Granted or extended: it must live ttl_s from when it was sent.
                      lease_checker_.OnExtended(lease, ttl_s, sent_us);
                      LeaseTrack& t = leases_[lease];
                      t.latest_end_us = std::max(
                          t.latest_end_us,
                          world_.now_us() + static_cast<int64_t>(static_cast<double>(ttl_s) * 1e6 /
                                                                 min_clock_rate_));
                      if (heal_stamp_ >= 0 && sent_us * 1000 >= heal_stamp_)
                        lease_served_after_heal_ = true;
                      if (grant) {
                        ++result_.stats.leases_granted;
                        cp->lease = lease;
                        cp->lease_ttl_s = ttl_s;
                        cp->keepalives_left = static_cast<int>(rng().Below(4));
                      } else {
                        ++result_.stats.lease_keepalives;
                      }
                    } else if (!grant && m.status.code() == absl::StatusCode::kNotFound) {
                      cp->lease = 0;  // it lapsed
                    }
                    finish(true);
                  });
}

}  // namespace bw::sim::detail
