// One bulwark member on an env::Env alone: the node (Raft, WAL, the etcd
// MVCC state machine), the watch hub, log time and the leader's ticks, the
// quota and the NOSPACE alarm, publishing this member's attributes, users
// and their tokens, keep-alive batching, and noticing this member's removal.
// The server (server::EtcdServer, on a real event loop behind gRPC) and the
// simulator (sim::Simulation, on a SimEnv) construct this same class: what
// the simulator proves under faults is what production runs.
//
// Errors are etcd's (member::EtcdErrorFor, the one table from the node's
// failures to etcd's errors), except that a proposal's own failure is the
// node's (the API layer maps it with the same table).
//
// Thread-safety: none. Everything runs on the env's event-loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "env/env.h"
#include "kv/mvcc.h"
#include "member/auto_compactor.h"
#include "member/log_time.h"
#include "member/member_stats.h"
#include "member/simple_tokens.h"
#include "member/watch_hub.h"
#include "node/node.h"

namespace bw::member {

struct MemberOptions {
  // The node; its state machine is made by the member (an MvccStore).
  node::NodeOptions node;
  // This member's attributes, published into the cluster's state once a
  // leader is known (etcd's publish).
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  // Writes that would grow the data past this many bytes are refused and
  // raise the NOSPACE alarm (etcd's --quota-backend-bytes); 0 = no quota.
  // The data counts the kept answers of keyed writes and the idempotency
  // records: they are never evicted before their retention, so past the
  // quota new keyed writes and Begin calls are refused instead.
  int64_t quota_backend_bytes = 0;
  // How long the answers to keyed writes and idempotency records (without a
  // retention of their own) are kept, log time (--idempotency-retention).
  // Put into every keyed request this member proposes.
  int64_t idempotency_retention_us = int64_t{24} * 3600 * 1'000'000;
  // etcd's automatic compaction (member/auto_compactor.h); off by default.
  AutoCompaction auto_compaction;
  // A simple token ends after this long unused (etcd's --auth-token-ttl).
  int64_t token_ttl_us = 300'000'000;
  // The watch hub's limits.
  uint64_t max_request_bytes = 1536 * 1024;
  size_t max_watchers_per_stream = 0;  // 0: the hub's default
  // Tokens the log does not issue (JWT; users named by a client
  // certificate): the user, or the error to answer; nullopt when the token
  // is not of such a kind. Unset: every token is a simple token.
  std::function<std::optional<absl::StatusOr<std::string>>(const std::string& token)> other_tokens;
  // Called with every store the member makes (at start and on each
  // snapshot install): planted bugs, tests.
  std::function<void(kv::MvccStore&)> configure_store;
  std::function<void(WatchHub&)> configure_hub;
  // Planted bug (BW_PLANTED_BUGS builds): a read's permission is checked
  // before its read barrier, against auth state that may be older than the
  // data it then reads.
  bool planted_auth_before_barrier = false;
  // Told of the node's events after the member has handled them (the
  // simulator's checkers). May be null.
  node::NodeObserver* observer = nullptr;
  // The cluster's member list changed (the transport re-reads it).
  std::function<void()> on_members_changed;
  // The member stopped: its storage failed, or it was removed from the
  // cluster. Called once, on the loop thread; do not destroy the member
  // inside the call.
  std::function<void(const absl::Status& why)> on_stopped;
};

class Member final : public node::NodeObserver {
 public:
  using ProposeDone = std::function<void(absl::StatusOr<kv::MvccResult>)>;
  using UserDone = std::function<void(absl::StatusOr<std::string>)>;
  using RenewDone = std::function<void(absl::StatusOr<int64_t>)>;

  // Loads (or bootstraps) the node and starts the member's heartbeat
  // (log time ticks on the leader, publishing).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Member>> Start(env::Env& env,
                                                                     MemberOptions options);
  ~Member() override;
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  NodeId id() const { return o_.node.id; }
  uint64_t cluster_id() const { return o_.node.cluster_id; }
  // False once StopNode ran.
  bool running() const { return node_ != nullptr; }
  node::Node& node() { return *node_; }
  const node::Node& node() const { return *node_; }
  kv::MvccStore& mvcc() { return *mvcc_; }
  const kv::MvccStore& mvcc() const { return *mvcc_; }
  WatchHub& watch_hub() { return *watch_hub_; }
  SimpleTokens& tokens() { return tokens_; }
  // Non-OK once the member stopped (see MemberOptions::on_stopped).
  const absl::Status& stopped() const { return stopped_; }

  // Stops the node: waiting callers are answered (kStopped), the
  // heartbeat ends; the watch hub stays (streams still hold it) and the
  // member may then only be destroyed. The destructor does it too.
  void StopNode();

  // Log time now, as this member reckons it (LogTime::Now).
  int64_t LogNowMicros() { return log_time_->Now(mvcc_->log_time_us()); }
  // A new lease id: positive, random, 16 hex digits as etcd's usually print.
  int64_t NewLeaseId() {
    return static_cast<int64_t>((env_.random().Next() >> 2) | (uint64_t{1} << 62));
  }
  // A response header: cluster, member, revision, term.
  void FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const;

  // Proposes a request as the member itself (no user). A request without
  // an id gets one; without a time, this member's log time.
  void Propose(bulwark::internal::Request req, ProposeDone done);
  // Proposes for a client: the request is stamped with the token's user
  // (whose permissions the state machine checks when it applies it, and
  // whose idempotency scopes it uses) and refused at once if the current
  // state already denies it.
  void ProposeAs(const std::string& token, bulwark::internal::Request req, ProposeDone done);
  void ProposeAsUser(absl::StatusOr<std::string> user, bulwark::internal::Request req,
                     ProposeDone done);

  // The user a token names: "" with authentication off or no token;
  // etcd's invalid auth token for one unknown here or expired.
  absl::StatusOr<std::string> UserOf(const std::string& token) { return UserOf(token, nullptr); }
  // The same; `*other` is set when the other_tokens hook answered.
  absl::StatusOr<std::string> UserOf(const std::string& token, bool* other);
  // UserOf, but a simple token this member does not know yet gets a second
  // look once the member has applied everything the leader had committed
  // (its Authenticate entry may not have reached this member yet), as etcd
  // waits for its applied index.
  void ResolveUser(const std::string& token, UserDone then);
  // UserOf, then MvccStore::Authorize: the user when `access` is allowed.
  absl::StatusOr<std::string> Authorize(const std::string& token,
                                        const bulwark::internal::Request& access);
  // A read: once the state machine may be read (after ReadIndex when
  // linearizable) and the token's user may make `access` (called only with
  // authentication on), `then` gets the user; else the error.
  void Read(bool linearizable, const std::string& token,
            std::function<bulwark::internal::Request()> access, UserDone then);
  // A keep-alive renewal: renewals that reach the loop together (from
  // every stream, per user) become one LeaseRenewBatch entry, proposed
  // once what the loop already holds is done — or, while a sync is in
  // flight, once it ends (at most one sync later): the renewals that arrive
  // during one fsync share one entry, as the old loop, blocked in fsync, did
  // by itself. `done` gets the lease's TTL, or -1 if there is no such lease.
  void RenewLease(const std::string& token, int64_t id, RenewDone done);

  // A user's own idempotency scope: users never see each other's keys or
  // records. The empty user (authentication off) keeps the scope as given.
  static std::string UserScope(const std::string& user, const std::string& scope);
  static std::string ClientScope(const std::string& user, const std::string& stored);

  // The NOSPACE alarm: the disk is full, or this member refused a write
  // past the quota (until the alarm is disarmed).
  bool nospace_alarm() const { return nospace_alarm_ || node_->no_space(); }
  void DisarmNoSpace() { nospace_alarm_ = false; }
  MemberStats Stats() const;

  // node::NodeObserver
  void OnPersisted(NodeId id, const raft::Ready& rd) override;
  void OnApplied(NodeId id, const raft::Entry& e, uint64_t digest) override;
  void OnSnapshotInstalled(NodeId id, const raft::SnapshotMeta& meta, uint64_t digest) override;
  // Only the member's own observer (the simulator's checkers) uses digests.
  bool WantsDigest() const override { return o_.observer != nullptr && o_.observer->WantsDigest(); }
  void OnRoleChange(NodeId id, const raft::SoftState& ss) override;
  void OnHalted(NodeId id, const absl::Status& why) override;

 private:
  Member(env::Env& env, MemberOptions options);
  // Every heartbeat: the leader proposes log time when it is due (see
  // LogTime::TickDue); a member publishes its attributes once there is a
  // leader.
  void OnHeartbeat();
  // On the leader, when the automatic compaction is due: proposes it.
  void MaybeAutoCompact();
  void MaybePublish();
  // False (and the alarm raised for the cluster) when a write would pass
  // the quota.
  bool CheckQuota(const bulwark::internal::Request& req);
  void ProposeAsUser(absl::StatusOr<std::string> user, bulwark::internal::Request req,
                     ProposeDone done, bool caught_up);
  // `may_wait`: while the node syncs, wait for the sync's end (OnPersisted).
  void ProposeRenewals(bool may_wait);
  void CheckRemoved();
  void Stop(absl::Status why);
  void ReadAuthNotices();

  env::Env& env_;
  MemberOptions o_;
  std::unique_ptr<node::Node> node_;
  kv::MvccStore* mvcc_ = nullptr;  // owned by node_
  std::unique_ptr<WatchHub> watch_hub_;
  std::unique_ptr<LogTime> log_time_;
  SimpleTokens tokens_;
  env::TimerId heartbeat_ = 0;
  uint64_t next_request_id_ = 1;
  // Renewals waiting for the next LeaseRenewBatch, by user.
  std::map<std::string, std::vector<std::pair<int64_t, RenewDone>>> renewals_;
  // The renewals wait for the sync in flight to end.
  bool renewals_wait_for_sync_ = false;
  bool published_ = false;
  bool publish_in_flight_ = false;
  bool nospace_alarm_ = false;
  std::unique_ptr<AutoCompactor> auto_compactor_;  // null when off
  uint64_t synced_members_version_ = 0;
  bool was_member_ = false;
  absl::Status stopped_;
};

}  // namespace bw::member
