// The authorization checker: judges what users saw of their permissions
// against an administrator's history of granting and revoking them. Its
// promise: a revoked permission is never honoured once the revocation was
// acknowledged. An operation of a user that was honoured (a read answered
// with data, a write acknowledged) and invoked after a revocation of that
// user's permission was answered OK is a violation, unless some grant may
// have taken effect between the two: one invoked before the operation
// completed whose effect may follow the revocation's (it was answered after
// the revocation was invoked, or never answered).
//
// Times are the observer's (true time); changes that were refused claim
// nothing, changes never answered may take effect at any later time. Pure;
// single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bw::check {

class AuthRevocationChecker {
 public:
  // The administrator sent a grant (or a revoke) of `user`'s permission at
  // `invoked_us`; the id names it for OnChangeAnswered.
  uint64_t OnChangeInvoked(const std::string& user, bool grant, int64_t invoked_us);
  // Change `id` was answered at `answered_us`: applied (`ok`), or refused
  // (it never took effect).
  void OnChangeAnswered(uint64_t id, bool ok, int64_t answered_us);
  // An operation of `user` (described by `what`) invoked at `invoked_us`
  // was honoured, answered at `done_us`.
  void OnHonoured(const std::string& user, const std::string& what, int64_t invoked_us,
                  int64_t done_us);

  const std::string& violation() const { return violation_; }
  bool ok() const { return violation_.empty(); }
  uint64_t revocations_acknowledged() const { return revocations_; }

 private:
  struct Change {
    std::string user;
    bool grant = false;
    int64_t invoked_us = 0;
    int64_t answered_us = -1;  // -1: not answered (yet, or ever)
    bool refused = false;
  };
  std::map<uint64_t, Change> changes_;
  uint64_t next_id_ = 1;
  uint64_t revocations_ = 0;
  std::string violation_;
};

}  // namespace bw::check
