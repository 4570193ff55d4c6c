#include "member/member.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/error_kind.h"
#include "kv/etcd_errors.h"
#include "member/etcd_error_map.h"

namespace bw::member {

namespace {

bool TxnHasPut(const etcdserverpb::TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_put()) return true;
      if (op.has_request_txn() && TxnHasPut(op.request_txn())) return true;
    }
  }
  return false;
}

// etcd's rule: puts (alone or in a txn) and lease grants count against the
// quota; deletes, reads and compaction do not, so space can be freed. Ours
// too: idempotency records, and any keyed write (its kept answer takes room).
bool Grows(const bulwark::internal::Request& req) {
  return req.has_put() || req.has_lease_grant() || req.has_idem_begin() ||
         req.has_idem_complete() || req.has_idempotency() ||
         (req.has_txn() && TxnHasPut(req.txn()));
}

kv::MvccResult Refused(absl::Status why) {
  kv::MvccResult r;
  r.status = std::move(why);
  return r;
}

}  // namespace

Member::Member(env::Env& env, MemberOptions options)
    : env_(env), o_(std::move(options)), tokens_(o_.token_ttl_us) {}

absl::StatusOr<std::unique_ptr<Member>> Member::Start(env::Env& env, MemberOptions options) {
  std::unique_ptr<Member> m(new Member(env, std::move(options)));
  m->log_time_ = std::make_unique<LogTime>(env.clock());
  node::NodeOptions no = m->o_.node;
  Member* self = m.get();
  no.state_machine = [self] {
    auto store = std::make_unique<kv::MvccStore>();
    store->set_record_events(true);
    if (self->o_.configure_store) self->o_.configure_store(*store);
    self->mvcc_ = store.get();
    self->watch_hub_ = std::make_unique<WatchHub>(
        *store,
        [self](etcdserverpb::ResponseHeader* h) { self->FillHeader(h, self->mvcc_->revision()); },
        self->o_.max_request_bytes);
    if (self->o_.max_watchers_per_stream > 0) {
      self->watch_hub_->set_max_watchers_per_stream(self->o_.max_watchers_per_stream);
    }
    if (self->o_.configure_hub) self->o_.configure_hub(*self->watch_hub_);
    return store;
  };
  BW_ASSIGN_OR_RETURN(m->node_, node::Node::Start(env, no, m.get()));
  m->next_request_id_ = env.random().Next() | 1;
  m->log_time_->Observe(m->mvcc_->log_time_us());
  m->synced_members_version_ = m->mvcc_->members_version();
  m->CheckRemoved();
  if (m->o_.auto_compaction.enabled()) {
    m->auto_compactor_ =
        std::make_unique<AutoCompactor>(m->o_.auto_compaction, env.clock().NowMicros());
  }
  m->heartbeat_ = env.timers().Schedule(m->o_.node.tick_us, [self] { self->OnHeartbeat(); });
  return m;
}

Member::~Member() {
  StopNode();
}

void Member::StopNode() {
  if (node_ == nullptr) return;
  env_.timers().Cancel(heartbeat_);
  // node_ is null while the node answers its waiting callers, so nothing
  // they start reaches it.
  node_.reset();
  mvcc_ = nullptr;
}

void Member::FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const {
  h->set_cluster_id(o_.node.cluster_id);
  h->set_member_id(o_.node.id.value());
  h->set_revision(revision);
  h->set_raft_term(node_ != nullptr ? node_->raft().term().value() : 0);
}

// --- the node's events ---------------------------------------------------------

void Member::ReadAuthNotices() {
  for (kv::AuthStore::Notice& n : mvcc_->TakeAuthNotices()) {
    switch (n.kind) {
      case kv::AuthStore::Notice::kTokenIssued:
        tokens_.Issue(n.token, n.user, env_.clock().NowMicros());
        break;
      case kv::AuthStore::Notice::kUserChanged:
        tokens_.DropUser(n.user);
        break;
      case kv::AuthStore::Notice::kDisabled:
        tokens_.Clear();
        break;
    }
  }
}

void Member::OnPersisted(NodeId id, const raft::Ready& rd) {
  if (renewals_wait_for_sync_) {
    renewals_wait_for_sync_ = false;
    // Not waiting again: under a steady load the next sync may start first.
    env_.timers().Schedule(0, [this] { ProposeRenewals(/*may_wait=*/false); });
  }
  if (o_.observer != nullptr) o_.observer->OnPersisted(id, rd);
}

void Member::OnApplied(NodeId id, const raft::Entry& e, uint64_t digest) {
  if (mvcc_ != nullptr) {
    log_time_->Observe(mvcc_->log_time_us());
    ReadAuthNotices();
    if (watch_hub_ != nullptr) watch_hub_->OnApplied();
    if (mvcc_->members_version() != synced_members_version_) {
      synced_members_version_ = mvcc_->members_version();
      if (o_.on_members_changed) o_.on_members_changed();
    }
    if (e.type == raft::EntryType::kConfChange && node_ != nullptr) CheckRemoved();
  }
  if (o_.observer != nullptr) o_.observer->OnApplied(id, e, digest);
}

void Member::OnSnapshotInstalled(NodeId id, const raft::SnapshotMeta& meta, uint64_t digest) {
  if (mvcc_ != nullptr) {
    log_time_->Observe(mvcc_->log_time_us());
    // Users may be gone or have new passwords: clients authenticate again.
    tokens_.Clear();
    if (watch_hub_ != nullptr) watch_hub_->Resync();
    synced_members_version_ = mvcc_->members_version();
    if (o_.on_members_changed) o_.on_members_changed();
    if (node_ != nullptr) CheckRemoved();
  }
  if (o_.observer != nullptr) o_.observer->OnSnapshotInstalled(id, meta, digest);
}

void Member::OnRoleChange(NodeId id, const raft::SoftState& ss) {
  if (o_.observer != nullptr) o_.observer->OnRoleChange(id, ss);
}

void Member::OnHalted(NodeId id, const absl::Status& why) {
  if (o_.observer != nullptr) o_.observer->OnHalted(id, why);
  // Renewals that waited for a sync that never ends are answered (the
  // halted node refuses the proposal).
  if (renewals_wait_for_sync_) {
    renewals_wait_for_sync_ = false;
    env_.timers().Schedule(0, [this] { ProposeRenewals(/*may_wait=*/false); });
  }
  Stop(why);
}

void Member::Stop(absl::Status why) {
  if (!stopped_.ok()) return;
  stopped_ = std::move(why);
  if (o_.on_stopped) o_.on_stopped(stopped_);
}

void Member::CheckRemoved() {
  const raft::ConfState& cs = node_->raft().conf();
  const NodeId self = id();
  auto has = [&](const std::vector<NodeId>& v) {
    return std::find(v.begin(), v.end(), self) != v.end();
  };
  if (has(cs.voters) || has(cs.learners) || has(cs.voters_outgoing) || has(cs.learners_next)) {
    was_member_ = true;
  } else if (was_member_) {
    Stop(absl::FailedPreconditionError(
        "this member was removed from the cluster; it stops (remove its data directory before "
        "adding it again)"));
  }
}

void Member::OnHeartbeat() {
  heartbeat_ = env_.timers().Schedule(o_.node.tick_us, [this] { OnHeartbeat(); });
  MaybePublish();
  MaybeAutoCompact();
  if (node_->raft().role() != raft::Role::kLeader) return;
  std::optional<int64_t> now = log_time_->TickDue(*mvcc_);
  if (!now) return;
  bulwark::internal::Request r;
  r.mutable_tick()->set_now_us(*now);
  Propose(std::move(r), [this](absl::StatusOr<kv::MvccResult>) { log_time_->TickDone(); });
}

void Member::MaybeAutoCompact() {
  if (auto_compactor_ == nullptr) return;  // off
  const int64_t now = env_.clock().NowMicros();
  std::optional<int64_t> rev =
      auto_compactor_->Step(now, mvcc_->revision(), node_->raft().role() == raft::Role::kLeader);
  if (!rev) return;
  bulwark::internal::Request r;
  r.mutable_compaction()->set_revision(*rev);
  Propose(std::move(r), [this](absl::StatusOr<kv::MvccResult> res) {
    // Compacted already (by hand, or by an earlier leader) counts as done.
    const bool ok = res.ok() && (res->status.ok() || res->status == kv::etcd_errors::Compacted());
    auto_compactor_->Done(ok, env_.clock().NowMicros());
  });
}

void Member::MaybePublish() {
  if (published_ || publish_in_flight_ || o_.name.empty()) return;
  if (node_->raft().leader() == kNoNode) return;
  auto it = mvcc_->members().find(id().value());
  if (it != mvcc_->members().end() && it->second.name() == o_.name &&
      std::equal(o_.client_urls.begin(), o_.client_urls.end(), it->second.client_urls().begin(),
                 it->second.client_urls().end())) {
    published_ = true;  // the same attributes are there from an earlier run
    return;
  }
  bulwark::internal::Request r;
  bulwark::internal::MemberAttributes* m = r.mutable_publish();
  m->set_id(id().value());
  m->set_name(o_.name);
  for (const std::string& u : o_.peer_urls)
    m->add_peer_urls(u);
  for (const std::string& u : o_.client_urls)
    m->add_client_urls(u);
  publish_in_flight_ = true;
  Propose(std::move(r), [this](absl::StatusOr<kv::MvccResult> res) {
    publish_in_flight_ = false;
    if (res.ok() && res->status.ok()) published_ = true;
  });
}

// --- proposals -----------------------------------------------------------------

bool Member::CheckQuota(const bulwark::internal::Request& req) {
  // Past the quota, and from then on while the NOSPACE alarm is raised,
  // writes that grow the data are refused (then `etcdctl alarm disarm`).
  if (!Grows(req)) return true;
  // A retry of an answered keyed write adds nothing: it gets its answer.
  if (req.has_idempotency() &&
      mvcc_->HasAnswer(req.idempotency().scope(), req.idempotency().key())) {
    return true;
  }
  const int64_t quota = o_.quota_backend_bytes;
  const uint64_t held = mvcc_->bytes() + mvcc_->idempotency_bytes();
  if (quota > 0 && static_cast<int64_t>(held + req.ByteSizeLong()) > quota && !nospace_alarm_) {
    // Refused here at once; and raised for the cluster, as etcd does, so
    // every member refuses such writes until the alarm is disarmed.
    nospace_alarm_ = true;
    bulwark::internal::Request alarm;
    alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    alarm.mutable_alarm()->set_memberid(id().value());
    alarm.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
    Propose(std::move(alarm), [](const absl::StatusOr<kv::MvccResult>&) {});
  }
  return !nospace_alarm_;
}

void Member::Propose(bulwark::internal::Request req, ProposeDone done) {
  if (node_ == nullptr) return done(kv::etcd_errors::Stopped());
  if (!CheckQuota(req)) return done(kv::etcd_errors::NoSpace());
  if (req.id() == 0) {
    uint64_t rid = next_request_id_++;
    if (rid == 0) rid = next_request_id_++;
    req.set_id(rid);
  }
  if (req.time_us() == 0) req.set_time_us(LogNowMicros());
  // This member's retention goes in the request: every member then keeps
  // the answer equally long, whatever its own flag says.
  if (req.has_idempotency() && req.idempotency().retention_us() == 0) {
    req.mutable_idempotency()->set_retention_us(o_.idempotency_retention_us);
  }
  if (req.has_idem_begin() && req.idem_begin().retention_s() == 0) {
    req.mutable_idem_begin()->set_retention_s(
        std::max<int64_t>(1, o_.idempotency_retention_us / 1'000'000));
  }
  const uint64_t rid = req.id();
  std::string data;
  req.SerializeToString(&data);
  node_->Propose(rid, std::move(data), [done = std::move(done)](absl::StatusOr<std::any> r) {
    if (!r.ok()) return done(r.status());
    done(std::any_cast<kv::MvccResult>(std::move(*r)));
  });
}

void Member::ProposeAs(const std::string& token, bulwark::internal::Request req, ProposeDone done) {
  ResolveUser(token, [this, req = std::move(req),
                      done = std::move(done)](absl::StatusOr<std::string> user) mutable {
    ProposeAsUser(std::move(user), std::move(req), std::move(done), false);
  });
}

void Member::ProposeAsUser(absl::StatusOr<std::string> user, bulwark::internal::Request req,
                           ProposeDone done) {
  ProposeAsUser(std::move(user), std::move(req), std::move(done), /*caught_up=*/false);
}

void Member::ProposeAsUser(absl::StatusOr<std::string> user, bulwark::internal::Request req,
                           ProposeDone done, bool caught_up) {
  if (node_ == nullptr) return done(kv::etcd_errors::Stopped());
  if (user.ok()) {
    absl::Status st = mvcc_->Authorize(*user, req);
    if (absl::IsPermissionDenied(st) && !caught_up) {
      // This member may not have applied a grant the client already saw
      // committed (made through another member): look again once it has
      // applied what the leader had committed. The entry's own check, when
      // it is applied, is the one that counts; this one only spares the log
      // requests that would be refused there.
      node_->ReadBarrier(
          true, [this, user, req = std::move(req), done = std::move(done)](absl::Status b) mutable {
            if (!b.ok()) return done(Refused(EtcdErrorFor(b)));
            ProposeAsUser(std::move(user), std::move(req), std::move(done), /*caught_up=*/true);
          });
      return;
    }
    if (!st.ok()) user = st;
  }
  if (!user.ok()) return done(Refused(user.status()));
  if (!user->empty()) {
    req.set_auth_user(*user);
    if (req.has_idempotency()) {
      req.mutable_idempotency()->set_scope(UserScope(*user, req.idempotency().scope()));
    }
    if (req.has_idem_begin()) {
      req.mutable_idem_begin()->set_scope(UserScope(*user, req.idem_begin().scope()));
    }
    if (req.has_idem_checkpoint()) {
      req.mutable_idem_checkpoint()->set_scope(UserScope(*user, req.idem_checkpoint().scope()));
    }
    if (req.has_idem_complete()) {
      req.mutable_idem_complete()->set_scope(UserScope(*user, req.idem_complete().scope()));
    }
    if (req.has_idem_release()) {
      req.mutable_idem_release()->set_scope(UserScope(*user, req.idem_release().scope()));
    }
  }
  Propose(std::move(req), std::move(done));
}

std::string Member::UserScope(const std::string& user, const std::string& scope) {
  if (user.empty()) return scope;
  // A user name holds no NUL byte, so no user's scopes reach another's.
  return absl::StrCat("user:", user, std::string(1, '\0'), scope);
}

std::string Member::ClientScope(const std::string& user, const std::string& stored) {
  if (user.empty()) return stored;
  size_t nul = stored.find('\0');
  return nul == std::string::npos ? stored : stored.substr(nul + 1);
}

// --- users ---------------------------------------------------------------------

absl::StatusOr<std::string> Member::UserOf(const std::string& token, bool* other) {
  if (mvcc_ == nullptr || !mvcc_->auth().enabled() || token.empty()) return std::string();
  if (o_.other_tokens) {
    if (std::optional<absl::StatusOr<std::string>> user = o_.other_tokens(token)) {
      if (other != nullptr) *other = true;
      return *std::move(user);
    }
  }
  std::optional<std::string> user = tokens_.Use(token, env_.clock().NowMicros());
  if (!user.has_value()) return kv::etcd_errors::InvalidAuthToken();
  return *std::move(user);
}

void Member::ResolveUser(const std::string& token, UserDone then) {
  // A JWT or certificate user (the other_tokens hook) is judged once: a
  // barrier cannot make an invalid one valid.
  bool other = false;
  absl::StatusOr<std::string> user = UserOf(token, &other);
  if (user.ok() || node_ == nullptr || !absl::IsUnauthenticated(user.status()) || other) {
    return then(std::move(user));
  }
  node_->ReadBarrier(true, [this, token, then = std::move(then)](absl::Status st) {
    if (!st.ok()) return then(EtcdErrorFor(st));
    then(UserOf(token));
  });
}

absl::StatusOr<std::string> Member::Authorize(const std::string& token,
                                              const bulwark::internal::Request& access) {
  absl::StatusOr<std::string> user = UserOf(token);
  if (!user.ok()) return user;
  if (mvcc_ != nullptr) BW_RETURN_IF_ERROR(mvcc_->Authorize(*user, access));
  return user;
}

void Member::Read(bool linearizable, const std::string& token,
                  std::function<bulwark::internal::Request()> access, UserDone then) {
  if (node_ == nullptr) return then(kv::etcd_errors::Stopped());
#ifdef BW_PLANTED_BUGS
  if (o_.planted_auth_before_barrier) {
    absl::StatusOr<std::string> user = UserOf(token);
    if (user.ok() && mvcc_->auth().enabled()) {
      if (absl::Status st = mvcc_->Authorize(*user, access()); !st.ok()) user = st;
    }
    node_->ReadBarrier(linearizable,
                       [user = std::move(user), then = std::move(then)](absl::Status st) mutable {
                         if (!st.ok()) return then(EtcdErrorFor(st));
                         then(std::move(user));
                       });
    return;
  }
#endif
  node_->ReadBarrier(linearizable, [this, token, access = std::move(access),
                                    then = std::move(then)](absl::Status st) mutable {
    if (!st.ok()) return then(EtcdErrorFor(st));
    // After the barrier: the auth state is as new as the data read.
    ResolveUser(token, [this, access = std::move(access),
                        then = std::move(then)](absl::StatusOr<std::string> user) {
      // The description is built only with auth on: with it off a Range
      // pays for no copy of its request.
      if (user.ok() && mvcc_ != nullptr && mvcc_->auth().enabled()) {
        if (absl::Status st = mvcc_->Authorize(*user, access()); !st.ok()) user = st;
      }
      then(std::move(user));
    });
  });
}

// --- keep-alives ---------------------------------------------------------------

void Member::RenewLease(const std::string& token, int64_t id, RenewDone done) {
  ResolveUser(token, [this, id, done = std::move(done)](absl::StatusOr<std::string> user) mutable {
    if (!user.ok()) return done(user.status());
    // The first renewal waiting schedules the batch; later ones join it.
    const bool first = renewals_.empty();
    renewals_[*user].emplace_back(id, std::move(done));
    if (first) env_.timers().Schedule(0, [this] { ProposeRenewals(/*may_wait=*/true); });
  });
}

void Member::ProposeRenewals(bool may_wait) {
  if (renewals_.empty()) return;
  if (may_wait && node_->persisting()) {
    // OnPersisted proposes them when this sync ends, with what came meanwhile.
    renewals_wait_for_sync_ = true;
    return;
  }
  renewals_wait_for_sync_ = false;
  // An entry of at most this many renewals (about 40 KB).
  constexpr size_t kMaxRenewalsPerEntry = 4096;
  auto waiting = std::move(renewals_);
  renewals_.clear();
  for (auto& [user, all] : waiting) {
    for (size_t from = 0; from < all.size(); from += kMaxRenewalsPerEntry) {
      const size_t to = std::min(all.size(), from + kMaxRenewalsPerEntry);
      auto answers = std::make_shared<std::vector<std::pair<int64_t, RenewDone>>>(
          std::make_move_iterator(all.begin() + static_cast<ptrdiff_t>(from)),
          std::make_move_iterator(all.begin() + static_cast<ptrdiff_t>(to)));
      bulwark::internal::Request r;
      for (const auto& [id, done] : *answers)
        r.mutable_lease_renew_batch()->add_ids(id);
      ProposeAsUser(user, std::move(r), [answers](absl::StatusOr<kv::MvccResult> res) {
        absl::Status st = res.ok() ? res->status : res.status();
        if (st.ok() && res->lease_ttls.size() != answers->size()) {
          st = absl::InternalError("lease renewals: one answer per lease expected");
        }
        for (size_t i = 0; i < answers->size(); ++i) {
          RenewDone& done = (*answers)[i].second;
          if (st.ok()) {
            done(res->lease_ttls[i]);
          } else {
            done(st);
          }
        }
      });
    }
  }
}

// --- what /metrics shows -------------------------------------------------------

MemberStats Member::Stats() const {
  const node::Node& n = *node_;
  const raft::Raft& r = n.raft();
  const kv::MvccStore& m = *mvcc_;
  MemberStats st;
  st.has_leader = r.leader() != kNoNode;
  st.is_leader = r.role() == raft::Role::kLeader;
  st.leader_changes = n.leader_changes();
  st.term = r.term().value();
  st.commit_index = r.log().committed().value();
  st.applied_index = n.applied_index().value();
  st.log_entries = r.log().last_index() - r.log().offset();
  st.log_cached_bytes = r.log().cached_bytes();
  st.log_entries_read = r.log_entries_read();
  st.log_read_failures = r.log_read_failures();
  st.pending = n.pending();
  st.proposals = n.proposals();
  st.db_bytes = m.bytes();
  st.live_keys = m.live_keys();
  st.versions = m.versions();
  st.revision = m.revision();
  st.compact_revision = m.compact_revision();
  st.watchers = watch_hub_->watchers();
  st.leases = m.LeaseIds().size();
  st.idempotency_keys = m.idempotency_records();
  st.idempotency_bytes = m.idempotency_bytes();
  st.quota_backend_bytes = o_.quota_backend_bytes;
  st.records = m.records();
  st.nospace_alarm = nospace_alarm();
  st.sync_seconds = n.sync_seconds();
  return st;
}

}  // namespace bw::member
