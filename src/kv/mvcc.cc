#include "kv/mvcc.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/assert.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/splitmix.h"
#include "kv/etcd_errors.h"
#include "kv/mvcc_internal.h"

namespace bw::kv {

using etcdserverpb::Compare;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::PutRequest;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

namespace {

using mvcc_internal::HashBytes;
using mvcc_internal::Mix;
using mvcc_internal::Ops;
using mvcc_internal::RecordKey;

// etcd's range rules: no end is one key, "\0" is every key from `key` on.
struct KeyRange {
  std::string begin;
  std::string end;  // exclusive; empty means unbounded
  bool single = false;
};

KeyRange MakeRange(const std::string& key, const std::string& range_end) {
  KeyRange r{key, range_end, false};
  if (range_end.empty()) {
    r.single = true;
  } else if (range_end == std::string_view("\0", 1)) {
    r.end.clear();
  }
  return r;
}

template <typename T>
bool CompareValues(const T& a, const T& b, Compare::CompareResult result) {
  switch (result) {
    case Compare::EQUAL:
      return a == b;
    case Compare::GREATER:
      return a > b;
    case Compare::LESS:
      return a < b;
    case Compare::NOT_EQUAL:
      return a != b;
    default:
      return false;
  }
}

}  // namespace

absl::Status AttachIdempotencyKey(std::string_view method,
                                  const google::protobuf::Message& client_req,
                                  const std::string& scope, const std::string& key,
                                  bulwark::internal::Request* r) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyBytes ||
      scope.size() > kMaxIdempotencyKeyBytes) {
    return absl::InvalidArgumentError(
        "bulwark: idempotency-key (and idempotency-scope) must be 1 to 255 bytes");
  }
  // FNV-1a over the method, a NUL and the request's bytes, then mixed.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes)
      h = (h ^ c) * 1099511628211ULL;
  };
  mix(method);
  mix(std::string_view("\0", 1));
  mix(client_req.SerializeAsString());
  bulwark::internal::Idempotency* id = r->mutable_idempotency();
  id->set_scope(scope);
  id->set_key(key);
  id->set_fingerprint(core::SplitMix64(h));
  return absl::OkStatus();
}

// --- reads -------------------------------------------------------------------

const MvccStore::Version* MvccStore::VisibleAt(const History& h, int64_t rev) {
  // Versions are in (mod, sub) order; take the last one at or below rev.
  auto it = std::upper_bound(h.begin(), h.end(), rev,
                             [](int64_t r, const Version& v) { return r < v.mod; });
  if (it == h.begin()) return nullptr;
  --it;
  return it->tombstone ? nullptr : &*it;
}

void MvccStore::ForEachVisible(
    const std::string& key, const std::string& end, int64_t rev,
    const std::function<bool(const std::string&, const Version&)>& f) const {
  KeyRange r = MakeRange(key, end);
  if (r.single) {
    auto it = keys_.find(r.begin);
    if (it == keys_.end()) return;
    if (const Version* v = VisibleAt(it->second, rev)) f(it->first, *v);
    return;
  }
  for (auto it = keys_.lower_bound(r.begin); it != keys_.end(); ++it) {
    if (!r.end.empty() && it->first >= r.end) break;
    if (const Version* v = VisibleAt(it->second, rev)) {
      if (!f(it->first, *v)) return;
    }
  }
}

absl::Status MvccStore::CheckReadRevision(int64_t rev) const {
  if (rev > revision_) return etcd_errors::FutureRev();
  if (rev > 0 && rev < compact_revision_) return etcd_errors::Compacted();
  return absl::OkStatus();
}

void MvccStore::FillKv(const std::string& key, const Version& v, mvccpb::KeyValue* kv) const {
  kv->set_key(key);
  kv->set_create_revision(v.create);
  kv->set_mod_revision(v.mod);
  kv->set_version(v.version);
  kv->set_value(v.value);
  kv->set_lease(v.lease);
}

absl::Status MvccStore::Range(const RangeRequest& r, etcdserverpb::RangeResponse* out) const {
  BW_RETURN_IF_ERROR(ValidateRange(r));
  BW_RETURN_IF_ERROR(CheckReadRevision(r.revision()));
  return RangeAt(r, r.revision() > 0 ? r.revision() : revision_, out);
}

absl::Status MvccStore::RangeAt(const RangeRequest& r, int64_t rev,
                                etcdserverpb::RangeResponse* out) const {
  struct Found {
    const std::string* key;
    const Version* v;
  };
  std::vector<Found> found;
  int64_t count = 0;
  // Without sorting or filtering the first limit+1 keys are enough (one
  // more tells whether there are more); count still covers the whole range.
  bool fetch_all = r.sort_order() != RangeRequest::NONE || r.min_mod_revision() != 0 ||
                   r.max_mod_revision() != 0 || r.min_create_revision() != 0 ||
                   r.max_create_revision() != 0;
  size_t want = (r.limit() > 0 && !fetch_all) ? static_cast<size_t>(r.limit()) + 1 : SIZE_MAX;
  ForEachVisible(r.key(), r.range_end(), rev, [&](const std::string& k, const Version& v) {
    ++count;
    if (!r.count_only() && found.size() < want) found.push_back(Found{&k, &v});
    return true;
  });
  auto drop = [&](auto pred) {
    found.erase(std::remove_if(found.begin(), found.end(), pred), found.end());
  };
  if (r.max_mod_revision() != 0)
    drop([&](const Found& f) { return f.v->mod > r.max_mod_revision(); });
  if (r.min_mod_revision() != 0)
    drop([&](const Found& f) { return f.v->mod < r.min_mod_revision(); });
  if (r.max_create_revision() != 0) {
    drop([&](const Found& f) { return f.v->create > r.max_create_revision(); });
  }
  if (r.min_create_revision() != 0) {
    drop([&](const Found& f) { return f.v->create < r.min_create_revision(); });
  }
  RangeRequest::SortOrder order = r.sort_order();
  // Results come in key order; another target sorts ascending by default.
  if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  }
  if (order != RangeRequest::NONE) {
    auto less = [&](const Found& a, const Found& b) {
      switch (r.sort_target()) {
        case RangeRequest::VERSION:
          return a.v->version < b.v->version;
        case RangeRequest::CREATE:
          return a.v->create < b.v->create;
        case RangeRequest::MOD:
          return a.v->mod < b.v->mod;
        case RangeRequest::VALUE:
          return a.v->value < b.v->value;
        default:
          return *a.key < *b.key;
      }
    };
    if (order == RangeRequest::DESCEND) {
      std::stable_sort(found.begin(), found.end(),
                       [&](const Found& a, const Found& b) { return less(b, a); });
    } else {
      std::stable_sort(found.begin(), found.end(), less);
    }
  }
  if (r.limit() > 0 && found.size() > static_cast<size_t>(r.limit())) {
    found.resize(static_cast<size_t>(r.limit()));
    out->set_more(true);
  }
  out->set_count(count);
  out->mutable_header()->set_revision(revision_);
  for (const Found& f : found) {
    mvccpb::KeyValue* kv = out->add_kvs();
    FillKv(*f.key, *f.v, kv);
    if (r.keys_only()) kv->clear_value();
  }
  return absl::OkStatus();
}

uint32_t MvccStore::HashKV(int64_t revision) const {
  // etcd's hash, byte for byte: CRC-32C of the bucket name "key", then of
  // each stored revision up to `revision` in revision order, as etcd's
  // backend holds it: the revision key (8-byte main, '_', 8-byte sub, 't'
  // for a tombstone) and the marshalled KeyValue (just the key for a
  // tombstone). Compaction removed what etcd's compaction removes.
  int64_t upto = revision > 0 ? revision : revision_;
  struct Rec {
    int64_t mod, sub;
    const std::string* key;
    const Version* v;
  };
  // Like etcd, a revision at or below the compaction point counts only if
  // it is the key's version visible at `upto` (etcd's keep set), unless no
  // key is visible there at all.
  std::vector<Rec> recs;
  size_t kept = 0;
  for (const auto& [key, h] : keys_) {
    const Version* visible = VisibleAt(h, upto);
    for (const Version& v : h) {
      if (v.mod > upto) break;
      bool keep = &v == visible;
      kept += keep;
      if (v.mod > compact_revision_ || keep) recs.push_back(Rec{v.mod, v.sub, &key, &v});
    }
  }
  if (kept == 0) {
    recs.clear();
    for (const auto& [key, h] : keys_) {
      for (const Version& v : h) {
        if (v.mod > upto) break;
        // Not in etcd's backend: the delete at the compaction point.
        if (v.tombstone && v.mod == compact_revision_) continue;
        recs.push_back(Rec{v.mod, v.sub, &key, &v});
      }
    }
  }
  std::sort(recs.begin(), recs.end(), [](const Rec& a, const Rec& b) {
    return a.mod != b.mod ? a.mod < b.mod : a.sub < b.sub;
  });
  uint32_t crc = core::Crc32c("key");
  std::string buf;
  for (const Rec& r : recs) {
    buf.clear();
    auto put_be64 = [&buf](int64_t x) {
      for (int i = 7; i >= 0; --i)
        buf.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
    };
    put_be64(r.mod);
    buf.push_back('_');
    put_be64(r.sub);
    if (r.v->tombstone) buf.push_back('t');
    mvccpb::KeyValue kv;
    if (r.v->tombstone) {
      kv.set_key(*r.key);
    } else {
      FillKv(*r.key, *r.v, &kv);
    }
    buf += kv.SerializeAsString();
    crc = core::Crc32c(buf, crc);
  }
  return crc;
}

// --- writes ------------------------------------------------------------------

StateMachine::Applied MvccStore::ApplyEntry(LogIndex index, int64_t time_us,
                                            std::string_view data) {
  bulwark::internal::Request req;
  // Every entry was encoded by a node: one that does not parse is damage.
  BW_ASSERT_MSG(req.ParseFromArray(data.data(), static_cast<int>(data.size())),
                "mvcc: committed entry does not parse");
  BW_ASSERT_GE(time_us, 0);
  bool stamped = time_us != 0;
#ifdef BW_PLANTED_BUGS
  if (planted_proposer_time_) stamped = false;
#endif
  if (stamped) {
    // The leader's stamp is the entry's time, whatever the proposer thought
    // (a follower that applies late reckons log time behind the leader's).
    req.set_time_us(time_us);
    if (req.has_tick()) req.mutable_tick()->set_now_us(time_us);
    // And the state's log time is the latest stamp applied, not only the
    // latest tick: a leader whose log was compacted away carries cluster
    // time on from it (before, from the last tick: up to ten seconds back
    // with only idempotency records, and back to 0 with no ticks at all;
    // the simulator's records workload found it). Expiry still happens
    // only at ticks.
    log_time_us_ = std::max(log_time_us_, time_us);
  }
  return Applied{req.id(), Apply(req)};
}

MvccResult MvccStore::Apply(const bulwark::internal::Request& req) {
  MvccResult res = ApplyKeyed(req);
  res.status = etcd_errors::Answer(std::move(res.status));
  return res;
}

MvccResult MvccStore::ApplyKeyed(const bulwark::internal::Request& req) {
  // Permissions first, against the auth state at this index: a grant
  // revoked between the proposal and its application is revoked for it, and
  // a replayed answer is never shown to someone who may not see it.
  bool check_access = true;
#ifdef BW_PLANTED_BUGS
  if (planted_skip_apply_auth_) check_access = false;
#endif
  if (absl::Status allowed = check_access ? Authorize(req.auth_user(), req) : absl::OkStatus();
      !allowed.ok()) {
    MvccResult res;
    res.status = std::move(allowed);
    res.revision = revision_;
    return res;
  }
  bool dedup = req.has_idempotency();
#ifdef BW_PLANTED_BUGS
  if (planted_skip_dedup_) dedup = false;
#endif
  if (!dedup) return ApplyOp(req);
  const bulwark::internal::Idempotency& id = req.idempotency();
  const std::string k = RecordKey(id.scope(), id.key());
  auto it = idem_.find(k);
  if (it != idem_.end()) {
    const bulwark::internal::IdempotencyRecord& r = it->second;
    MvccResult res;
    if (r.fingerprint() != id.fingerprint()) {
      res.status = absl::FailedPreconditionError(
          "bulwark: idempotency key reused: this key was first used with a different request");
      res.revision = revision_;
      return res;
    }
    res.status = absl::Status(static_cast<absl::StatusCode>(r.code()), r.message());
    res.response = r.response();
    res.revision = r.revision();
    res.lease_id = r.lease_id();
    res.lease_ttl = r.lease_ttl();
    res.service_response = r.service_response();
    res.replayed = true;
    return res;
  }
  MvccResult res = ApplyOp(req);
  bulwark::internal::IdempotencyRecord& r = idem_[k];
  r.set_scope(id.scope());
  r.set_key(id.key());
  r.set_fingerprint(id.fingerprint());
  // Log time only: a proposer's clock cannot move an answer's expiry.
  r.set_created_us(log_time_us_);
  r.set_expires_us(log_time_us_ +
                   (id.retention_us() > 0 ? id.retention_us() : idem_limits_.retention_us));
  r.set_seq(++idem_seq_);
  r.set_code(static_cast<int32_t>(res.status.code()));
  r.set_message(std::string(res.status.message()));
  *r.mutable_response() = res.response;
  r.set_revision(res.revision);
  r.set_lease_id(res.lease_id);
  r.set_lease_ttl(res.lease_ttl);
  r.set_service_response(res.service_response);
  IndexAnswer(k, r);
  return res;
}

bool MvccStore::HasAnswer(const std::string& scope, const std::string& key) const {
  return idem_.count(RecordKey(scope, key)) > 0;
}

void MvccStore::IndexAnswer(const std::string& k, const bulwark::internal::IdempotencyRecord& r) {
  BW_ASSERT(idem_by_expiry_.emplace(std::make_pair(r.expires_us(), r.seq()), k).second);
  idem_sum_ += RecordHash(r);
  idem_bytes_ += k.size() + r.ByteSizeLong();
}

void MvccStore::EraseRecord(IdemTable::iterator it) {
  const bulwark::internal::IdempotencyRecord& r = it->second;
  idem_sum_ -= RecordHash(r);
  idem_bytes_ -= it->first.size() + r.ByteSizeLong();
  BW_ASSERT_EQ(idem_by_expiry_.erase(std::make_pair(r.expires_us(), r.seq())), 1u);
  idem_.erase(it);
}

uint64_t MvccStore::RecordHash(const bulwark::internal::IdempotencyRecord& r) {
  return HashBytes(r.SerializeAsString(), 0x69646D70ULL);
}

MvccResult MvccStore::ApplyOp(const bulwark::internal::Request& req) {
  MvccResult res;
  WriteTxn w{revision_ + 1};
  res.status = RefusedByAlarm(req);
  if (!res.status.ok()) {
    res.revision = revision_;
    return res;
  }
  switch (req.op_case()) {
    case bulwark::internal::Request::kPut:
      res.status = ValidatePut(req.put());
      if (res.status.ok()) res.status = CheckPut(req.put(), revision_);
      if (res.status.ok()) DoPut(w, req.put(), res.response.mutable_response_put());
      break;
    case bulwark::internal::Request::kDeleteRange:
      res.status = ValidateDeleteRange(req.delete_range());
      if (res.status.ok()) {
        DoDelete(w, req.delete_range(), res.response.mutable_response_delete_range());
      }
      break;
    case bulwark::internal::Request::kTxn:
      res.status = ValidateTxn(req.txn());
      if (res.status.ok()) res.status = CheckTxn(req.txn(), revision_);
      if (res.status.ok()) DoTxn(w, req.txn(), res.response.mutable_response_txn());
      break;
    case bulwark::internal::Request::kCompaction:
      res.status = DoCompact(req.compaction().revision());
      break;
    case bulwark::internal::Request::kLeaseGrant: {
      const etcdserverpb::LeaseGrantRequest& g = req.lease_grant();
      if (g.ttl() > kMaxLeaseTtl) {
        res.status = etcd_errors::LeaseTtlTooLarge();
      } else if (g.id() == 0) {
        res.status = etcd_errors::LeaseNotFound();
      } else if (leases_.count(g.id())) {
        res.status = etcd_errors::LeaseExists();
      } else {
        Lease& l = leases_[g.id()];
        l.ttl = g.ttl();
        l.expiry_us = std::max(log_time_us_, req.time_us()) + g.ttl() * 1'000'000;
        res.lease_id = g.id();
        res.lease_ttl = g.ttl();
      }
      break;
    }
    case bulwark::internal::Request::kLeaseRevoke:
      if (!leases_.count(req.lease_revoke().id())) {
        res.status = etcd_errors::LeaseNotFound();
      } else {
        Revoke(w, req.lease_revoke().id());
      }
      break;
    case bulwark::internal::Request::kLeaseRenew: {
      int64_t ttl = Renew(req.lease_renew().id(), req.time_us());
      if (ttl < 0) {
        res.status = etcd_errors::LeaseNotFound();
      } else {
        res.lease_id = req.lease_renew().id();
        res.lease_ttl = ttl;
      }
      break;
    }
    case bulwark::internal::Request::kLeaseRenewBatch:
      res.lease_ttls.reserve(static_cast<size_t>(req.lease_renew_batch().ids_size()));
      for (int64_t id : req.lease_renew_batch().ids())
        res.lease_ttls.push_back(Renew(id, req.time_us()));
      break;
    case bulwark::internal::Request::kTick:
      Tick(req.tick().now_us());
      break;
    case bulwark::internal::Request::kAlarm:
      res.service_response = ApplyAlarm(req.alarm()).SerializeAsString();
      break;
    case bulwark::internal::Request::kPublish: {
      // Name and client URLs; where to reach it stays as it was added.
      bulwark::internal::MemberAttributes& m = members_[req.publish().id()];
      m.set_id(req.publish().id());
      m.set_name(req.publish().name());
      *m.mutable_client_urls() = req.publish().client_urls();
      if (m.peer_urls().empty()) *m.mutable_peer_urls() = req.publish().peer_urls();
      ++members_version_;
      break;
    }
    case bulwark::internal::Request::kMemberAdd: {
      bulwark::internal::MemberAttributes& m = members_[req.member_add().id()];
      m.set_id(req.member_add().id());
      *m.mutable_peer_urls() = req.member_add().peer_urls();
      m.set_learner(req.member_add().learner());
      ++members_version_;
      break;
    }
    case bulwark::internal::Request::kIdemBegin:
    case bulwark::internal::Request::kIdemCheckpoint:
    case bulwark::internal::Request::kIdemComplete:
    case bulwark::internal::Request::kIdemRelease:
      res.status = ApplyRecordCall(req, &res);
      break;
    case bulwark::internal::Request::kMemberUpdate: {
      auto it = members_.find(req.member_update().id());
      if (it == members_.end()) {
        res.status = etcd_errors::MemberNotFound();
      } else {
        *it->second.mutable_peer_urls() = req.member_update().peer_urls();
        ++members_version_;
      }
      break;
    }
    case bulwark::internal::Request::kAuthEnable:
    case bulwark::internal::Request::kAuthDisable:
    case bulwark::internal::Request::kAuthAuthenticate:
    case bulwark::internal::Request::kAuthUserAdd:
    case bulwark::internal::Request::kAuthUserDelete:
    case bulwark::internal::Request::kAuthUserChangePassword:
    case bulwark::internal::Request::kAuthUserGrantRole:
    case bulwark::internal::Request::kAuthUserRevokeRole:
    case bulwark::internal::Request::kAuthRoleAdd:
    case bulwark::internal::Request::kAuthRoleDelete:
    case bulwark::internal::Request::kAuthRoleGrantPermission:
    case bulwark::internal::Request::kAuthRoleRevokePermission:
      res.status = auth_.Apply(req);
      break;
    case bulwark::internal::Request::kRange:
    case bulwark::internal::Request::kWatchCreate:
    case bulwark::internal::Request::kLeaseTimeToLive:
    case bulwark::internal::Request::kAdmin:
      // Descriptions for Authorize; a node never proposes them.
      res.status = absl::InvalidArgumentError("mvcc: not a write request");
      break;
    case bulwark::internal::Request::OP_NOT_SET:
      res.status = absl::InvalidArgumentError("mvcc: empty request");
      break;
  }
  if (w.subs > 0) revision_ = w.rev;
  res.revision = revision_;
  if (res.response.has_response_txn()) {
    res.response.mutable_response_txn()->mutable_header()->set_revision(revision_);
  }
  return res;
}

absl::Status MvccStore::CheckPut(const PutRequest& r, int64_t read_rev) const {
  if (r.lease() != 0 && !leases_.count(r.lease())) return etcd_errors::LeaseNotFound();
  if (r.ignore_value() || r.ignore_lease()) {
    auto it = keys_.find(r.key());
    if (it == keys_.end() || VisibleAt(it->second, read_rev) == nullptr) {
      return etcd_errors::KeyNotFound();
    }
  }
  return absl::OkStatus();
}

bool MvccStore::Compare(const etcdserverpb::Compare& c, int64_t rev) const {
  std::vector<const Version*> found;
  ForEachVisible(c.key(), c.range_end(), rev, [&](const std::string&, const Version& v) {
    found.push_back(&v);
    return true;
  });
  if (found.empty()) {
    // A missing key has version, revisions and lease 0; a value compare on
    // it always fails (an empty value and no value cannot be told apart).
    if (c.target() == Compare::VALUE) return false;
    static const Version kMissing;
    found.push_back(&kMissing);
  }
  for (const Version* v : found) {
    bool ok = false;
    switch (c.target()) {
      case Compare::VERSION:
        ok = CompareValues(v->version, c.version(), c.result());
        break;
      case Compare::CREATE:
        ok = CompareValues(v->create, c.create_revision(), c.result());
        break;
      case Compare::MOD:
        ok = CompareValues(v->mod, c.mod_revision(), c.result());
        break;
      case Compare::VALUE:
        ok = CompareValues(std::string_view(v->value), std::string_view(c.value()), c.result());
        break;
      case Compare::LEASE:
        ok = CompareValues(v->lease, c.lease(), c.result());
        break;
      default:
        ok = false;
    }
    if (!ok) return false;
  }
  return true;
}

bool MvccStore::TxnSucceeds(const TxnRequest& t, int64_t rev) const {
  for (const etcdserverpb::Compare& c : t.compare()) {
    if (!Compare(c, rev)) return false;
  }
  return true;
}

absl::Status MvccStore::CheckOps(const Ops& ops, int64_t read_rev) const {
  for (const RequestOp& op : ops) {
    if (op.has_request_put()) {
      BW_RETURN_IF_ERROR(CheckPut(op.request_put(), read_rev));
    } else if (op.has_request_range()) {
      BW_RETURN_IF_ERROR(CheckReadRevision(op.request_range().revision()));
    } else if (op.has_request_txn()) {
      BW_RETURN_IF_ERROR(CheckTxn(op.request_txn(), read_rev));
    }
  }
  return absl::OkStatus();
}

absl::Status MvccStore::CheckTxn(const TxnRequest& t, int64_t rev) const {
  // Every compare, nested ones too, sees the state before the txn (etcd).
  return CheckOps(TxnSucceeds(t, rev) ? t.success() : t.failure(), rev);
}

void MvccStore::AddVersion(const std::string& key, Version v) {
  AddVersion(keys_.try_emplace(key).first, std::move(v));
}

void MvccStore::AddVersion(KeyMap::iterator it, Version v) {
  const std::string& key = it->first;
  History& h = it->second;
  bool was_live = !h.empty() && !h.back().tombstone;
  bool is_live = !v.tombstone;
  live_keys_ += is_live - was_live;
  version_sum_ += VersionHash(key, v);
  ++versions_;
  bytes_ += key.size() + v.value.size();
  h.push_back(std::move(v));
}

void MvccStore::DoPut(WriteTxn& w, const PutRequest& r, etcdserverpb::PutResponse* out) {
  // One search of the key map per put: the key's history is created here
  // if it is new, and the version is added through the same iterator.
  auto it = keys_.try_emplace(r.key()).first;
  // The latest version, including earlier changes of this txn.
  const Version* prev = VisibleAt(it->second, w.rev);
  if (r.prev_kv() && prev != nullptr) FillKv(r.key(), *prev, out->mutable_prev_kv());
  Version v;
  v.mod = w.rev;
  v.sub = w.subs++;
  v.create = prev != nullptr ? prev->create : w.rev;
  v.version = prev != nullptr ? prev->version + 1 : 1;
  v.lease = r.ignore_lease() && prev != nullptr ? prev->lease : r.lease();
  v.value = r.ignore_value() && prev != nullptr ? prev->value : r.value();
  if (prev != nullptr && prev->lease != v.lease) {
    auto l = leases_.find(prev->lease);
    if (l != leases_.end()) l->second.keys.erase(r.key());
  }
  if (v.lease != 0) leases_[v.lease].keys.insert(r.key());
  if (record_events_) RecordEvent(mvccpb::Event::PUT, r.key(), v, prev);
  AddVersion(it, std::move(v));
  out->mutable_header()->set_revision(w.rev);
}

void MvccStore::DeleteKey(WriteTxn& w, const std::string& key, const Version& prev) {
  if (prev.lease != 0) {
    auto l = leases_.find(prev.lease);
    if (l != leases_.end()) l->second.keys.erase(key);
  }
  Version t;
  t.mod = w.rev;
  t.sub = w.subs++;
  t.tombstone = true;
  if (record_events_) RecordEvent(mvccpb::Event::DELETE, key, t, &prev);
  AddVersion(key, std::move(t));
}

void MvccStore::RecordEvent(mvccpb::Event::EventType type, const std::string& key, const Version& v,
                            const Version* prev) {
  mvccpb::Event& e = events_.emplace_back();
  e.set_type(type);
  if (type == mvccpb::Event::PUT) {
    FillKv(key, v, e.mutable_kv());
  } else {
    // etcd's delete event: the key and the revision of the delete.
    e.mutable_kv()->set_key(key);
    e.mutable_kv()->set_mod_revision(v.mod);
  }
  if (prev != nullptr) FillKv(key, *prev, e.mutable_prev_kv());
}

absl::Status MvccStore::EventsSince(const std::string& key, const std::string& end, int64_t from,
                                    size_t max, std::vector<mvccpb::Event>* out) const {
  if (from > 0 && from < compact_revision_) return etcd_errors::Compacted();
  struct Change {
    int64_t mod, sub;
    const std::string* key;
    size_t index;
  };
  std::vector<Change> changes;
  KeyRange r = MakeRange(key, end);
  auto visit = [&](const std::string& k, const History& h) {
    for (size_t i = 0; i < h.size(); ++i) {
      if (h[i].mod >= from) changes.push_back(Change{h[i].mod, h[i].sub, &k, i});
    }
  };
  if (r.single) {
    auto it = keys_.find(r.begin);
    if (it != keys_.end()) visit(it->first, it->second);
  } else {
    for (auto it = keys_.lower_bound(r.begin); it != keys_.end(); ++it) {
      if (!r.end.empty() && it->first >= r.end) break;
      visit(it->first, it->second);
    }
  }
  std::sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) {
    return a.mod != b.mod ? a.mod < b.mod : a.sub < b.sub;
  });
  if (changes.size() > max) {
    // Never cut a revision in two: a watcher gets whole revisions.
    size_t n = max;
    while (n > 0 && changes[n].mod == changes[n - 1].mod)
      --n;
    if (n == 0) {
      // One revision larger than the batch: all of it.
      n = max;
      while (n < changes.size() && changes[n].mod == changes[0].mod)
        ++n;
    }
    changes.resize(n);
  }
  for (const Change& c : changes) {
    const History& h = keys_.find(*c.key)->second;
    const Version& v = h[c.index];
    const Version* prev = nullptr;
    if (c.index > 0 && !h[c.index - 1].tombstone) prev = &h[c.index - 1];
    mvccpb::Event& e = out->emplace_back();
    e.set_type(v.tombstone ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    if (v.tombstone) {
      e.mutable_kv()->set_key(*c.key);
      e.mutable_kv()->set_mod_revision(v.mod);
    } else {
      FillKv(*c.key, v, e.mutable_kv());
    }
    if (prev != nullptr) FillKv(*c.key, *prev, e.mutable_prev_kv());
  }
  return absl::OkStatus();
}

void MvccStore::DoDelete(WriteTxn& w, const DeleteRangeRequest& r,
                         etcdserverpb::DeleteRangeResponse* out) {
  std::vector<std::pair<std::string, Version>> victims;
  ForEachVisible(r.key(), r.range_end(), w.subs > 0 ? w.rev : revision_,
                 [&](const std::string& k, const Version& v) {
                   victims.emplace_back(k, v);
                   return true;
                 });
  for (auto& [key, prev] : victims) {
    if (r.prev_kv()) FillKv(key, prev, out->add_prev_kvs());
    DeleteKey(w, key, prev);
  }
  out->set_deleted(static_cast<int64_t>(victims.size()));
  out->mutable_header()->set_revision(victims.empty() ? revision_ : w.rev);
}

void MvccStore::DoTxn(WriteTxn& w, const TxnRequest& t, etcdserverpb::TxnResponse* out) {
  // Compares see the state before the txn (revision_), as in etcd.
  bool ok = TxnSucceeds(t, revision_);
  out->set_succeeded(ok);
  for (const RequestOp& op : ok ? t.success() : t.failure()) {
    etcdserverpb::ResponseOp* resp = out->add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange: {
        const RangeRequest& rr = op.request_range();
        int64_t rev = rr.revision() > 0 ? rr.revision() : (w.subs > 0 ? w.rev : revision_);
        absl::Status s = RangeAt(rr, rev, resp->mutable_response_range());
        BW_ASSERT_MSG(s.ok(), s.ToString());
        if (w.subs > 0) resp->mutable_response_range()->mutable_header()->set_revision(w.rev);
        break;
      }
      case RequestOp::kRequestPut:
        DoPut(w, op.request_put(), resp->mutable_response_put());
        break;
      case RequestOp::kRequestDeleteRange:
        DoDelete(w, op.request_delete_range(), resp->mutable_response_delete_range());
        break;
      case RequestOp::kRequestTxn:
        // etcd answers a nested txn with an empty header of its own.
        resp->mutable_response_txn()->mutable_header();
        DoTxn(w, op.request_txn(), resp->mutable_response_txn());
        break;
      case RequestOp::REQUEST_NOT_SET:
        break;
    }
  }
}

absl::Status MvccStore::DoCompact(int64_t rev) {
  if (rev <= compact_revision_) return etcd_errors::Compacted();
  if (rev > revision_) return etcd_errors::FutureRev();
  for (auto it = keys_.begin(); it != keys_.end();) {
    History& h = it->second;
    // Keep the version visible at rev and everything after it; a tombstone
    // visible at rev hides nothing and goes too, unless it is from rev
    // itself: a watch may start at the compaction point and must see that
    // delete. (etcd drops it, and such a watch misses it; the kept
    // tombstone reads as a deleted key and HashKV leaves it out, as etcd's
    // hash does. The next compaction takes it.)
    auto visible = std::upper_bound(h.begin(), h.end(), rev,
                                    [](int64_t r, const Version& v) { return r < v.mod; });
    auto keep_from = visible;
    if (visible != h.begin()) {
      keep_from = std::prev(visible);
      if (keep_from->tombstone && (keep_from->mod < rev || planted_compaction_drops_delete_)) {
        keep_from = visible;
      }
    }
    for (auto v = h.begin(); v != keep_from; ++v) {
      version_sum_ -= VersionHash(it->first, *v);
      --versions_;
      bytes_ -= it->first.size() + v->value.size();
    }
    h.erase(h.begin(), keep_from);
    it = h.empty() ? keys_.erase(it) : std::next(it);
  }
  compact_revision_ = rev;
  return absl::OkStatus();
}

}  // namespace bw::kv
