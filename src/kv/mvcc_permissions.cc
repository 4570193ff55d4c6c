// MvccStore (mvcc.h), continued: the permission check of each request (the keys it
// reads and writes, against the user's roles at this point of the log).
#include <algorithm>
#include <string>
#include <vector>

#include "kv/mvcc.h"

namespace bw::kv {

using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

// --- permissions ---------------------------------------------------------------

void MvccStore::TxnAccesses(const etcdserverpb::TxnRequest& t, std::vector<KeyAccess>* out) {
  for (const etcdserverpb::Compare& c : t.compare())
    out->push_back({false, c.key(), c.range_end()});
  // Both branches: which one runs is decided at apply time, and a user may
  // not learn or change through either what it could not directly.
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestRange:
          out->push_back({false, op.request_range().key(), op.request_range().range_end()});
          break;
        case etcdserverpb::RequestOp::kRequestPut:
          out->push_back({true, op.request_put().key(), ""});
          if (op.request_put().prev_kv()) out->push_back({false, op.request_put().key(), ""});
          break;
        case etcdserverpb::RequestOp::kRequestDeleteRange: {
          const etcdserverpb::DeleteRangeRequest& d = op.request_delete_range();
          out->push_back({true, d.key(), d.range_end()});
          if (d.prev_kv()) out->push_back({false, d.key(), d.range_end()});
          break;
        }
        case etcdserverpb::RequestOp::kRequestTxn:
          TxnAccesses(op.request_txn(), out);
          break;
        case etcdserverpb::RequestOp::REQUEST_NOT_SET:
          break;
      }
    }
  }
}

void MvccStore::LeaseAccesses(int64_t id, bool write, std::vector<KeyAccess>* out) const {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  for (const std::string& k : it->second.keys)
    out->push_back({write, k, ""});
}

absl::Status MvccStore::Authorize(const std::string& user,
                                  const bulwark::internal::Request& r) const {
  if (!auth_.enabled()) return absl::OkStatus();
  using Req = bulwark::internal::Request;
  std::vector<KeyAccess> acc;
  switch (r.op_case()) {
    case Req::kPut:
      acc.push_back({true, r.put().key(), ""});
      if (r.put().prev_kv()) acc.push_back({false, r.put().key(), ""});
      break;
    case Req::kDeleteRange:
      acc.push_back({true, r.delete_range().key(), r.delete_range().range_end()});
      if (r.delete_range().prev_kv()) {
        acc.push_back({false, r.delete_range().key(), r.delete_range().range_end()});
      }
      break;
    case Req::kTxn:
      TxnAccesses(r.txn(), &acc);
      break;
    case Req::kRange:
      acc.push_back({false, r.range().key(), r.range().range_end()});
      break;
    case Req::kWatchCreate:
      acc.push_back({false, r.watch_create().key(), r.watch_create().range_end()});
      break;
    case Req::kLeaseRevoke:
      // Revoking deletes the lease's keys: the user must be able to.
      LeaseAccesses(r.lease_revoke().id(), true, &acc);
      break;
    case Req::kLeaseTimeToLive:
      if (r.lease_time_to_live().keys()) LeaseAccesses(r.lease_time_to_live().id(), false, &acc);
      break;
    case Req::kLeaseGrant:
    case Req::kLeaseRenew:
    case Req::kLeaseRenewBatch:
    // etcd lets any user compact (Kubernetes' API server compacts with its
    // own, often non-root, user); bulwark asks for an authenticated one.
    case Req::kCompaction:
    case Req::kIdemBegin:
    case Req::kIdemCheckpoint:
    case Req::kIdemComplete:
    case Req::kIdemRelease:
      break;  // any authenticated user
    case Req::kMemberAdd:
    case Req::kMemberUpdate:
    case Req::kAlarm:
    case Req::kAdmin:
    case Req::kAuthEnable:
    case Req::kAuthDisable:
    case Req::kAuthUserAdd:
    case Req::kAuthUserDelete:
    case Req::kAuthUserChangePassword:
    case Req::kAuthUserGrantRole:
    case Req::kAuthUserRevokeRole:
    case Req::kAuthRoleAdd:
    case Req::kAuthRoleDelete:
    case Req::kAuthRoleGrantPermission:
    case Req::kAuthRoleRevokePermission:
      return auth_.CheckAdmin(user);
    case Req::kAuthAuthenticate:  // the password was checked by the proposer
    case Req::kTick:              // the members' own entries
    case Req::kPublish:
    case Req::OP_NOT_SET:
      return absl::OkStatus();
  }
  return auth_.CheckAccess(user, acc);
}

}  // namespace bw::kv
