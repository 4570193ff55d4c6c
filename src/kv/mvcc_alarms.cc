// The cluster's alarms in the MVCC store: Alarm ACTIVATE and DEACTIVATE as
// they are applied, and the writes a raised alarm refuses (etcd's capped and
// corrupt appliers).
#include <algorithm>
#include <utility>

#include "kv/etcd_errors.h"
#include "kv/mvcc.h"

namespace bw::kv {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

bool MvccStore::alarm_raised(etcdserverpb::AlarmType type) const {
  return std::any_of(alarms_.begin(), alarms_.end(),
                     [type](const etcdserverpb::AlarmMember& a) { return a.alarm() == type; });
}

namespace {

bool TxnWrites(const TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const RequestOp& op : *ops) {
      if (op.has_request_put() || op.has_request_delete_range()) return true;
      if (op.has_request_txn() && TxnWrites(op.request_txn())) return true;
    }
  }
  return false;
}

// etcd's quota counts only a txn's own puts (a nested txn costs nothing).
bool TxnPutsAtTop(const TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const RequestOp& op : *ops) {
      if (op.has_request_put()) return true;
    }
  }
  return false;
}

}  // namespace

absl::Status MvccStore::RefusedByAlarm(const bulwark::internal::Request& req) const {
  using R = bulwark::internal::Request;
  if (alarms_.empty()) return absl::OkStatus();
  if (alarm_raised(etcdserverpb::CORRUPT)) {
    switch (req.op_case()) {
      case R::kPut:
      case R::kDeleteRange:
      case R::kCompaction:
      case R::kLeaseGrant:
      case R::kLeaseRevoke:
        return etcd_errors::Corrupt();
      case R::kTxn:
        if (TxnWrites(req.txn())) return etcd_errors::Corrupt();
        break;
      default:
        break;
    }
  }
  if (alarm_raised(etcdserverpb::NOSPACE)) {
    switch (req.op_case()) {
      case R::kPut:
      case R::kLeaseGrant:
      // bulwark's own records take room too.
      case R::kIdemBegin:
      case R::kIdemCheckpoint:
      case R::kIdemComplete:
        return etcd_errors::NoSpace();
      case R::kTxn:
        if (TxnPutsAtTop(req.txn())) return etcd_errors::NoSpace();
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

etcdserverpb::AlarmResponse MvccStore::ApplyAlarm(const etcdserverpb::AlarmRequest& r) {
  etcdserverpb::AlarmResponse out;
  auto before = [](const etcdserverpb::AlarmMember& a, const etcdserverpb::AlarmMember& b) {
    return std::make_pair(a.alarm(), a.memberid()) < std::make_pair(b.alarm(), b.memberid());
  };
  etcdserverpb::AlarmMember m;
  m.set_memberid(r.memberid());
  m.set_alarm(r.alarm());
  auto it = std::lower_bound(alarms_.begin(), alarms_.end(), m, before);
  bool present = it != alarms_.end() && !before(m, *it);
  // As etcd: ACTIVATE answers with the alarm (new or already raised), even
  // one of type NONE; DEACTIVATE with the alarm it cleared, if any.
  if (r.action() == etcdserverpb::AlarmRequest::ACTIVATE) {
    if (!present) alarms_.insert(it, m);
    *out.add_alarms() = m;
  } else if (r.action() == etcdserverpb::AlarmRequest::DEACTIVATE && present) {
    *out.add_alarms() = *it;
    alarms_.erase(it);
  }
  return out;
}

}  // namespace bw::kv
