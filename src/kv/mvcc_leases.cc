// MvccStore (mvcc.h), continued: leases — revocation with their keys, renewal,
// expiry by log time, and what TimeToLive and Leases report.
#include <algorithm>
#include <string>
#include <vector>

#include "kv/mvcc.h"

namespace bw::kv {

void MvccStore::Revoke(WriteTxn& w, int64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  for (const std::string& k : keys) {
    auto h = keys_.find(k);
    if (h == keys_.end()) continue;
    const Version* v = VisibleAt(h->second, w.rev);
    if (v != nullptr) {
      Version prev = *v;
      DeleteKey(w, k, prev);
    }
  }
}

int64_t MvccStore::Renew(int64_t id, int64_t time_us) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return -1;
  it->second.expiry_us = std::max(log_time_us_, time_us) + it->second.ttl * 1'000'000;
  return it->second.ttl;
}

void MvccStore::Tick(int64_t now_us) {
  log_time_us_ = std::max(log_time_us_, now_us);
  ExpireIdempotency();
  std::vector<int64_t> expired;
  for (const auto& [id, l] : leases_) {
    if (l.expiry_us <= log_time_us_) expired.push_back(id);
  }
  // Each expired lease is revoked in a write of its own, as in etcd.
  for (int64_t id : expired) {
    WriteTxn w{revision_ + 1};
    Revoke(w, id);
    if (w.subs > 0) revision_ = w.rev;
  }
}

std::optional<LeaseInfo> MvccStore::GetLease(int64_t id, int64_t now_us, bool with_keys) const {
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  LeaseInfo info;
  info.id = id;
  info.granted_ttl = it->second.ttl;
  int64_t now = std::max(log_time_us_, now_us);
  info.remaining_s = (it->second.expiry_us - now) / 1'000'000;
  if (with_keys) info.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return info;
}

std::vector<int64_t> MvccStore::LeaseIds() const {
  std::vector<int64_t> ids;
  for (const auto& [id, l] : leases_)
    ids.push_back(id);
  return ids;
}

int64_t MvccStore::next_expiry_us() const {
  int64_t next = INT64_MAX;
  for (const auto& [id, l] : leases_)
    next = std::min(next, l.expiry_us);
  return next;
}

}  // namespace bw::kv
