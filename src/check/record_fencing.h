// The idempotency-record checker: judges what workers saw of the
// bulwark.v1.Idempotency service (Begin, Checkpoint, Complete), against its
// promises:
//  - fencing tokens never go backwards and are never given twice: a Begin
//    invoked after another was answered STARTED gets a larger token;
//  - only the current holder is honoured: once a newer holder's STARTED was
//    answered, a Checkpoint or Complete with an older token invoked after
//    that must be refused;
//  - an operation completes once: after a Complete was answered OK, every
//    Begin invoked later gets COMPLETED with that response, and no other
//    Complete succeeds;
//  - a lock is taken over only when it has expired: the takeover is applied
//    no sooner than the lock's TTL (on the fastest clock) after the holder
//    sent its last answered Begin or Checkpoint — unless the holder released
//    it (a Release answered OK) and the takeover was applied after that
//    Release was sent (from then on it may have been applied).
// Times are the observer's (true time); outcomes not answered claim nothing.
// Pure; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace bw::check {

class RecordFencingChecker {
 public:
  explicit RecordFencingChecker(double max_clock_rate = 1.0) : max_rate_(max_clock_rate) {}
  void set_max_clock_rate(double r) { max_rate_ = r; }

  // A Begin on `key` sent at `sent_us` was answered at `answered_us`:
  // STARTED with `token` (a takeover when `took_over`; the lock is
  // `ttl_ms` long), or COMPLETED with `response`.
  void OnStarted(const std::string& key, uint64_t token, bool took_over, int64_t ttl_ms,
                 int64_t sent_us, int64_t answered_us);
  void OnSawCompleted(const std::string& key, const std::string& response, int64_t sent_us);
  // A Checkpoint with `token` sent at `sent_us` was answered OK (it renews
  // the lock).
  void OnCheckpointed(const std::string& key, uint64_t token, int64_t sent_us);
  // A Release with `token` sent at `sent_us` was answered OK: the lock is free.
  void OnReleased(const std::string& key, uint64_t token, int64_t sent_us);
  // A Complete with `token` sent at `sent_us` was answered OK at `answered_us`.
  void OnCompleted(const std::string& key, uint64_t token, const std::string& response,
                   int64_t sent_us, int64_t answered_us);
  // `token` was first applied (by any replica) at `at_us`.
  void OnApplied(uint64_t token, int64_t at_us);

  const std::string& violation() const { return violation_; }
  bool ok() const { return violation_.empty(); }
  uint64_t takeovers() const { return takeovers_; }
  uint64_t completions() const { return completions_; }

 private:
  struct Holder {
    uint64_t token = 0;
    int64_t started_answered_us = 0;
    int64_t ttl_ms = 0;
    int64_t last_renewal_sent_us = 0;  // its STARTED or latest answered Checkpoint
    int64_t released_sent_us = -1;     // its answered Release; -1: none
  };
  struct Key {
    std::vector<Holder> holders;  // in token order
    bool completed = false;
    std::string response;
    int64_t completed_answered_us = 0;
  };
  void Fail(std::string what);
  // A newer holder than `token` known started by `before_us`.
  const Holder* NewerBy(const Key& k, uint64_t token, int64_t before_us) const;

  double max_rate_;
  std::map<std::string, Key> keys_;
  std::set<uint64_t> tokens_;
  std::map<uint64_t, int64_t> applied_us_;
  std::string violation_;
  uint64_t takeovers_ = 0;
  uint64_t completions_ = 0;
};

}  // namespace bw::check
