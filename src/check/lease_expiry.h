// The lease checker: no lease is revoked before its TTL has passed on the
// leader's clock, counted from the moment the client sent the grant or the
// last keep-alive that was answered (the entry's stamp is at or after that
// moment, and the revoking tick's stamp is at least the TTL later).
//
// Times are the observer's (the simulator's true time). Clocks may run at
// different rates; `max_clock_rate` bounds the fastest, so the least a lease
// may live in true time is TTL / max_clock_rate. Unanswered grants and
// keep-alives claim nothing: the lease may or may not have been granted or
// extended by them. Pure; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bw::check {

class LeaseExpiryChecker {
 public:
  explicit LeaseExpiryChecker(double max_clock_rate = 1.0) : max_rate_(max_clock_rate) {}
  void set_max_clock_rate(double r) { max_rate_ = r; }

  // A grant or keep-alive of `lease` with `ttl_s` was answered OK; the
  // client had sent it at `sent_us`.
  void OnExtended(int64_t lease, int64_t ttl_s, int64_t sent_us);
  // The lease was seen revoked (by any replica) at `at_us`.
  void OnRevoked(int64_t lease, int64_t at_us);

  // "" when every revocation so far came late enough; otherwise the first
  // violation, with the lease, the extension and the times.
  const std::string& violation() const { return violation_; }
  bool ok() const { return violation_.empty(); }
  uint64_t revocations() const { return revocations_; }
  // The shortest life seen, as a fraction of what it had to be (>= 1 when
  // ok); 0 before any revocation.
  double tightest() const { return tightest_; }

 private:
  struct Extension {
    int64_t ttl_s;
    int64_t sent_us;
  };
  double max_rate_;
  std::map<int64_t, std::vector<Extension>> extensions_;
  std::string violation_;
  uint64_t revocations_ = 0;
  double tightest_ = 0;
};

}  // namespace bw::check
