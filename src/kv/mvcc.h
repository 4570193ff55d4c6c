// The etcd v3 keyspace as a replicated state machine: multi-version keys
// under one global revision, with etcd 3.4's semantics for Range, Put,
// DeleteRange, Txn and Compact.
//
// Every write transaction (a Put, a DeleteRange that deletes something, a
// Txn with at least one change) takes the next main revision; its changes
// are numbered by a sub-revision. A key's versions form generations: a put
// on a missing key starts one (create_revision = its revision, version 1),
// a delete ends it with a tombstone. Compact(R) forgets every version that
// no read at a revision >= R can see.
//
// Writes arrive as bulwark.internal.Request entries of the Raft log
// (ApplyEntry); reads (Range) are served on the node's event loop after the
// node's read barrier. Deterministic: no clock, no randomness, ordered maps.
//
// Thread-safety: none; owned by a node's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bulwark/idempotency.pb.h"
#include "bulwark/internal.pb.h"
#include "core/status.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"
#include "kv/auth.h"
#include "kv/state_machine.h"

namespace bw::kv {

// The most operations one Txn may hold in each of its lists (etcd's
// --max-txn-ops default).
inline constexpr int kMaxTxnOps = 128;
// The longest lease etcd grants, seconds.
inline constexpr int64_t kMaxLeaseTtl = 9'000'000'000;

// The result of one applied write, handed to the proposer.
struct MvccResult {
  // Non-OK: nothing was changed (etcd's error, e.g. lease not found).
  absl::Status status;
  // Exactly one of response_put/delete_range/txn is set; a Compaction sets
  // none.
  etcdserverpb::ResponseOp response;
  // The store's revision after the write.
  int64_t revision = 0;
  // LeaseGrant and renewals: the lease and its TTL (seconds).
  int64_t lease_id = 0;
  int64_t lease_ttl = 0;
  // A batch of renewals: each lease's TTL, in the batch's order; -1 for a
  // lease that does not exist (any more).
  std::vector<int64_t> lease_ttls;
  // The first answer to this idempotency key, given again (nothing applied).
  bool replayed = false;
  // bulwark.v1.Idempotency calls: the serialized response message.
  std::string service_response;
};

// The largest stored response of an idempotency record, bytes; the longest
// lock and retention a record may ask for.
inline constexpr size_t kMaxRecordResponseBytes = 1 << 20;
inline constexpr int64_t kMaxLockTtlMs = 86'400'000;
inline constexpr int64_t kMaxRetentionS = 30 * 86'400;

// How long the answers to keyed requests (and bulwark.v1.Idempotency
// records) are kept when the request does not say: members put their own
// --idempotency-retention in every keyed request they propose, so this
// default decides only for requests without one. Nothing is ever evicted
// before its retention: the quota (--quota-backend-bytes, which counts kept
// answers and records) refuses new keyed writes instead.
struct IdempotencyLimits {
  int64_t retention_us = int64_t{24} * 3600 * 1'000'000;
};
// The longest idempotency key, bytes.
inline constexpr size_t kMaxIdempotencyKeyBytes = 255;

// Attaches an idempotency key to a proposal: the scope, the key and a
// fingerprint of the client's request as the client sent it (`method` names
// the call, so a Put and a Txn with equal bytes differ). A retry of the same
// request has the same fingerprint; anything else under the key is refused.
// INVALID_ARGUMENT for an empty key, or a key or scope over 255 bytes.
[[nodiscard]] absl::Status AttachIdempotencyKey(std::string_view method,
                                                const google::protobuf::Message& client_req,
                                                const std::string& scope, const std::string& key,
                                                bulwark::internal::Request* r);

struct LeaseInfo {
  int64_t id = 0;
  int64_t granted_ttl = 0;
  // Seconds left (etcd rounds down); 0 or less: expiring now.
  int64_t remaining_s = 0;
  std::vector<std::string> keys;
};

// Checks a request as etcd's API layer does before proposing it: empty keys,
// option combinations, too many txn operations, duplicate keys in a txn.
[[nodiscard]] absl::Status ValidateRange(const etcdserverpb::RangeRequest& r);
[[nodiscard]] absl::Status ValidatePut(const etcdserverpb::PutRequest& r);
[[nodiscard]] absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r);
[[nodiscard]] absl::Status ValidateTxn(const etcdserverpb::TxnRequest& r, int max_ops = kMaxTxnOps);

class MvccStore final : public StateMachine {
 public:
  MvccStore() = default;

  // StateMachine: applies a bulwark.internal.Request; the result is an
  // MvccResult.
  using StateMachine::ApplyEntry;
  Applied ApplyEntry(LogIndex index, int64_t time_us, std::string_view data) override;
  // Applies a request; one that carries an idempotency key already applied
  // gets the first answer again (replayed), or FAILED_PRECONDITION if the
  // key came with a different request. Answers are kept for their retention
  // (log time) and never removed sooner. A refusal is
  // tagged core::ErrorKind::kAnswer (the request's answer, for the client as
  // it is), the first time and when replayed alike.
  MvccResult Apply(const bulwark::internal::Request& req);
  void set_idempotency_limits(IdempotencyLimits l) { idem_limits_ = l; }
  // Planted bug (BW_PLANTED_BUGS builds only): keys are ignored and every
  // retry is applied again. The exactly-once test must catch it.
  void set_planted_skip_dedup(bool on) { planted_skip_dedup_ = on; }
  // Planted bug (BW_PLANTED_BUGS builds only): the entry's stamp is ignored
  // and leases start from the time the proposing member put in the request
  // (what bulwark did before the leader stamped entries). A lease granted
  // through a lagging follower then expires early: the lease clock tests
  // must catch it.
  void set_planted_proposer_time(bool on) { planted_proposer_time_ = on; }
  // Planted bug (tests): compaction drops a delete at the compaction point
  // too (etcd's way), so a watch from there misses it.
  void set_planted_compaction_drops_delete(bool on) { planted_compaction_drops_delete_ = on; }
  // Planted bug (tests): Checkpoint and Complete ignore the fencing token.
  void set_planted_stale_token(bool on) { planted_stale_token_ = on; }
  // Planted bug (BW_PLANTED_BUGS builds): permissions are not checked when
  // an entry is applied, only by the proposing member (whose auth state may
  // be older than the entry's place in the log).
  void set_planted_skip_apply_auth(bool on) { planted_skip_apply_auth_ = on; }
  size_t idempotency_records() const { return idem_.size(); }
  // Whether an answer is kept for this key (a retry then adds nothing).
  bool HasAnswer(const std::string& scope, const std::string& key) const;

  // --- bulwark.v1.Idempotency records (reads; writes go through Apply).
  const bulwark::v1::Record* GetRecord(const std::string& scope, const std::string& key) const;
  std::vector<bulwark::v1::Record> ListRecords(const std::string& scope, const std::string& prefix,
                                               size_t limit, bool* more) const;
  size_t records() const { return records_.size(); }
  // Bytes of kept answers and records (counted against the quota).
  uint64_t idempotency_bytes() const { return idem_bytes_ + records_bytes_; }

  // A read at the request's revision (0: the current one). Header revision
  // is the current revision, as in etcd.
  [[nodiscard]] absl::Status Range(const etcdserverpb::RangeRequest& r,
                                   etcdserverpb::RangeResponse* out) const;

  // --- leases. Expiry is decided by Tick entries (log time), so every
  // replica expires the same leases at the same index, and a lease keeps
  // its remaining time across a change of leader.
  // `now_us` (this member's clock) only smooths the remaining time between
  // ticks; it never makes a lease expire.
  std::optional<LeaseInfo> GetLease(int64_t id, int64_t now_us, bool with_keys) const;
  std::vector<int64_t> LeaseIds() const;
  bool has_leases() const { return !leases_.empty(); }
  // Log time matters (Ticks are needed) while leases or kept answers exist.
  bool needs_log_time() const { return !leases_.empty() || !idem_.empty() || !records_.empty(); }
  // The earliest expiry of any lease (INT64_MAX with none), in log time.
  int64_t next_expiry_us() const;
  int64_t log_time_us() const override { return log_time_us_; }

  // --- members' published attributes (name, client URLs), by member id.
  const std::map<uint64_t, bulwark::internal::MemberAttributes>& members() const {
    return members_;
  }
  // Counts changes to members(): a server compares it after each entry.
  uint64_t members_version() const { return members_version_; }

  // --- the cluster's alarms (Alarm ACTIVATE/DEACTIVATE go through the log),
  // in (alarm, member) order. While a NOSPACE alarm is raised, puts, txns
  // that put and lease grants are refused when applied; while a CORRUPT one
  // is, every write is (etcd's capped and corrupt appliers).
  const std::vector<etcdserverpb::AlarmMember>& alarms() const { return alarms_; }
  bool alarm_raised(etcdserverpb::AlarmType type) const;

  // --- watch events. While on, every change appends an event (with the
  // previous version as prev_kv) for TakeEvents.
  void set_record_events(bool on) { record_events_ = on; }
  std::vector<mvccpb::Event> TakeEvents() { return std::move(events_); }
  // Events of changes with revision >= from (every key in [key, end)), in
  // revision order, up to `max` of them (whole revisions only: one larger
  // than `max` comes whole); for watchers that start in the past.
  // OUT_OF_RANGE (compacted) when `from` is below the compaction point.
  [[nodiscard]] absl::Status EventsSince(const std::string& key, const std::string& end,
                                         int64_t from, size_t max,
                                         std::vector<mvccpb::Event>* out) const;

  // --- authentication and RBAC (etcd's auth store; see auth.h).
  const AuthStore& auth() const { return auth_; }
  std::vector<AuthStore::Notice> TakeAuthNotices() { return auth_.TakeNotices(); }
  // The one place permissions are checked: OK when `user` may make the
  // request, with every key it reads or writes (a Txn's compares and nested
  // operations, the keys of a lease it revokes), or when authentication is
  // off; etcd's error otherwise. Apply calls it for every entry (with the
  // entry's auth_user, against the auth state at that index); the server
  // calls it for reads (range, watch_create, lease_time_to_live) and for
  // administrative calls (admin).
  [[nodiscard]] absl::Status Authorize(const std::string& user,
                                       const bulwark::internal::Request& r) const;

  int64_t revision() const { return revision_; }
  int64_t compact_revision() const { return compact_revision_; }
  // Live keys at the current revision, and stored versions in all.
  size_t live_keys() const { return live_keys_; }
  size_t versions() const { return versions_; }
  // Bytes of keys and values of every stored version (the data size).
  size_t bytes() const { return bytes_; }
  // A hash of every stored version at or below `revision` (0: all), and of
  // the compaction point: etcd's HashKV, equal on replicas at equal revision.
  uint32_t HashKV(int64_t revision) const;

  uint64_t digest() const override;
  std::string Serialize() const override;
  [[nodiscard]] absl::Status Restore(std::string_view snapshot) override;

 private:
  using IdemTable = absl::flat_hash_map<std::string, bulwark::internal::IdempotencyRecord>;
  struct Version {
    int64_t mod = 0;
    int64_t sub = 0;
    bool tombstone = false;
    int64_t create = 0;
    int64_t version = 0;
    int64_t lease = 0;
    std::string value;
  };
  using History = std::vector<Version>;
  struct Lease {
    int64_t ttl = 0;
    int64_t expiry_us = 0;
    std::set<std::string> keys;
  };

  // The change being built by one write transaction.
  struct WriteTxn {
    int64_t rev;       // revision_ + 1
    int64_t subs = 0;  // changes so far
  };

  // The version of `h` visible at `rev`, or null (none, or a tombstone).
  static const Version* VisibleAt(const History& h, int64_t rev);
  // Calls f(key, version) for each key in [key, end) visible at rev.
  void ForEachVisible(const std::string& key, const std::string& end, int64_t rev,
                      const std::function<bool(const std::string&, const Version&)>& f) const;
  absl::Status CheckReadRevision(int64_t rev) const;
  absl::Status RangeAt(const etcdserverpb::RangeRequest& r, int64_t rev,
                       etcdserverpb::RangeResponse* out) const;

  // Checks what would make the write fail, before anything changes.
  absl::Status CheckPut(const etcdserverpb::PutRequest& r, int64_t read_rev) const;
  absl::Status CheckOps(const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops,
                        int64_t read_rev) const;
  bool Compare(const etcdserverpb::Compare& c, int64_t rev) const;
  bool TxnSucceeds(const etcdserverpb::TxnRequest& t, int64_t rev) const;
  // Checks a txn's chosen branches all the way down; writes nothing.
  absl::Status CheckTxn(const etcdserverpb::TxnRequest& t, int64_t rev) const;

  void DoPut(WriteTxn& w, const etcdserverpb::PutRequest& r, etcdserverpb::PutResponse* out);
  void DoDelete(WriteTxn& w, const etcdserverpb::DeleteRangeRequest& r,
                etcdserverpb::DeleteRangeResponse* out);
  void DoTxn(WriteTxn& w, const etcdserverpb::TxnRequest& t, etcdserverpb::TxnResponse* out);
  using KeyMap = std::map<std::string, History, std::less<>>;
  void AddVersion(const std::string& key, Version v);
  void AddVersion(KeyMap::iterator it, Version v);
  absl::Status DoCompact(int64_t rev);
  MvccResult ApplyOp(const bulwark::internal::Request& req);
  // Apply without the tag: the permission check, then the idempotency table.
  MvccResult ApplyKeyed(const bulwark::internal::Request& req);
  absl::Status RefusedByAlarm(const bulwark::internal::Request& req) const;
  etcdserverpb::AlarmResponse ApplyAlarm(const etcdserverpb::AlarmRequest& r);
  void ExpireIdempotency();
  absl::Status ApplyRecordCall(const bulwark::internal::Request& req, MvccResult* res);
  void SetRecord(const std::string& k, bulwark::v1::Record r);
  void EraseRecordKey(const std::string& k);
  void EraseRecord(IdemTable::iterator it);
  // Adds a kept answer (already in idem_ under k) to the expiry index, the
  // digest and the byte count.
  void IndexAnswer(const std::string& k, const bulwark::internal::IdempotencyRecord& r);
  // When a bulwark.v1.Idempotency record's retention ends, log time.
  static int64_t RecordExpiry(const bulwark::v1::Record& r) {
    return r.created_us() + r.retention_s() * 1'000'000;
  }
  static uint64_t RecordHash(const bulwark::internal::IdempotencyRecord& r);
  void Revoke(WriteTxn& w, int64_t id);
  void Tick(int64_t now_us);
  // Renews a lease from `time_us` (the proposer's clock, never before the
  // log's): its TTL, or -1 if there is no such lease.
  int64_t Renew(int64_t id, int64_t time_us);
  // Deletes `key` (live, with version `prev`) in `w`.
  void DeleteKey(WriteTxn& w, const std::string& key, const Version& prev);
  void RecordEvent(mvccpb::Event::EventType type, const std::string& key, const Version& v,
                   const Version* prev);
  void FillKv(const std::string& key, const Version& v, mvccpb::KeyValue* kv) const;

  static uint64_t VersionHash(const std::string& key, const Version& v);

  // The keys a txn reads and writes, all the way down (for Authorize).
  static void TxnAccesses(const etcdserverpb::TxnRequest& t, std::vector<KeyAccess>* out);
  // The keys attached to a lease, as accesses of one kind.
  void LeaseAccesses(int64_t id, bool write, std::vector<KeyAccess>* out) const;

  KeyMap keys_;
  std::map<int64_t, Lease> leases_;
  AuthStore auth_;
  int64_t log_time_us_ = 0;
  std::map<uint64_t, bulwark::internal::MemberAttributes> members_;
  // Kept answers by scope + '\0' + key (hashed: looked up on every keyed
  // write, never walked in key order), and by (expiry, seq): the order of
  // expiry and of snapshots. Invariant: both hold the same answers, and
  // idem_bytes_ counts their keys and encoded sizes.
  IdemTable idem_;
  std::map<std::pair<int64_t, uint64_t>, std::string> idem_by_expiry_;
  uint64_t idem_seq_ = 0;
  uint64_t idem_sum_ = 0;
  uint64_t idem_bytes_ = 0;
  IdempotencyLimits idem_limits_;
  bool planted_skip_dedup_ = false;
  bool planted_proposer_time_ = false;
  bool planted_compaction_drops_delete_ = false;
  bool planted_stale_token_ = false;
  bool planted_skip_apply_auth_ = false;
  // bulwark.v1.Idempotency records by scope + '\0' + key, and by (the end
  // of their retention, key). Invariant: the same records in both;
  // records_bytes_ counts their keys and encoded sizes.
  std::map<std::string, bulwark::v1::Record> records_;
  std::set<std::pair<int64_t, std::string>> records_by_expiry_;
  uint64_t records_bytes_ = 0;
  uint64_t record_token_seq_ = 0;
  uint64_t records_sum_ = 0;
  uint64_t members_version_ = 0;
  std::vector<etcdserverpb::AlarmMember> alarms_;
  bool record_events_ = false;
  std::vector<mvccpb::Event> events_;
  // etcd starts at revision 1; the first write gets revision 2.
  int64_t revision_ = 1;
  int64_t compact_revision_ = 0;
  size_t live_keys_ = 0;
  size_t versions_ = 0;
  size_t bytes_ = 0;
  // Sum of VersionHash over stored versions (order-independent, and
  // compaction subtracts what it forgets).
  uint64_t version_sum_ = 0;
};

}  // namespace bw::kv
