// etcd's checks of a request before it is proposed (v3rpc's checkRangeRequest,
// checkPutRequest, checkTxnReqs and checkIntervals), with etcd 3.4's quirks:
// tests/etcd_api_test.py holds them to etcd's answers.
#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kv/etcd_errors.h"
#include "kv/mvcc.h"
#include "kv/mvcc_internal.h"

namespace bw::kv {

using etcdserverpb::Compare;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::PutRequest;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using mvcc_internal::Ops;

namespace {

// A txn branch's writes, for the duplicate-key rule.
struct Writes {
  std::set<std::string> puts;
  std::vector<std::pair<std::string, std::string>> dels;  // [key, range_end)
};

// Whether a delete of `dels` covers `k`, as etcd's interval tree sees it: a
// range is [key, range_end) compared as bytes, so a from-key delete ("\0")
// or an inverted range covers nothing.
bool Deletes(const Writes& w, const std::string& k) {
  for (const auto& [begin, end] : w.dels) {
    if (end.empty() ? k == begin : (k >= begin && k < end)) return true;
  }
  return false;
}

// etcd 3.4's duplicate-key rule (v3rpc's checkIntervals), quirks and all: a
// level's deletes first; then each nested txn, whose puts may not repeat a
// put or fall in a delete seen so far (its two branches may share keys);
// then the level's own puts, against all of those. A nested txn's deletes
// are not checked against the puts of nested txns before it.
absl::Status CheckIntervals(const Ops& ops, Writes* out) {
  for (const RequestOp& op : ops) {
    if (op.has_request_delete_range()) {
      out->dels.emplace_back(op.request_delete_range().key(),
                             op.request_delete_range().range_end());
    }
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_txn()) continue;
    Writes then, otherwise;
    BW_RETURN_IF_ERROR(CheckIntervals(op.request_txn().success(), &then));
    BW_RETURN_IF_ERROR(CheckIntervals(op.request_txn().failure(), &otherwise));
    for (const std::string& k : then.puts) {
      if (out->puts.count(k) || Deletes(*out, k)) return etcd_errors::DuplicateKey();
    }
    out->puts.insert(then.puts.begin(), then.puts.end());
    for (const std::string& k : otherwise.puts) {
      if ((out->puts.count(k) && !then.puts.count(k)) || Deletes(*out, k)) {
        return etcd_errors::DuplicateKey();
      }
    }
    out->puts.insert(otherwise.puts.begin(), otherwise.puts.end());
    out->dels.insert(out->dels.end(), then.dels.begin(), then.dels.end());
    out->dels.insert(out->dels.end(), otherwise.dels.begin(), otherwise.dels.end());
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (out->puts.count(k) || Deletes(*out, k)) return etcd_errors::DuplicateKey();
    out->puts.insert(k);
  }
  return absl::OkStatus();
}

absl::Status CheckTxnOps(const TxnRequest& r, int max_ops);

absl::Status CheckOps(const Ops& ops, int max_ops) {
  for (const RequestOp& op : ops) {
    switch (op.request_case()) {
      case RequestOp::kRequestRange:
        BW_RETURN_IF_ERROR(ValidateRange(op.request_range()));
        break;
      case RequestOp::kRequestPut:
        BW_RETURN_IF_ERROR(ValidatePut(op.request_put()));
        break;
      case RequestOp::kRequestDeleteRange:
        BW_RETURN_IF_ERROR(ValidateDeleteRange(op.request_delete_range()));
        break;
      case RequestOp::kRequestTxn:
        BW_RETURN_IF_ERROR(CheckTxnOps(op.request_txn(), max_ops));
        break;
      case RequestOp::REQUEST_NOT_SET:
        // etcd refuses an empty op with this (odd) message.
        return etcd_errors::KeyNotFound();
    }
  }
  return absl::OkStatus();
}

// etcd's operation limit: the longest of a txn's three lists counts, and a
// nested txn gets what its parent's count leaves of the limit.
absl::Status CheckTxnOps(const TxnRequest& r, int max_ops) {
  int count = std::max({r.compare_size(), r.success_size(), r.failure_size()});
  if (count > max_ops) return etcd_errors::TooManyOps();
  for (const Compare& c : r.compare()) {
    if (c.key().empty()) return etcd_errors::EmptyKey();
  }
  BW_RETURN_IF_ERROR(CheckOps(r.success(), max_ops - count));
  return CheckOps(r.failure(), max_ops - count);
}

}  // namespace

absl::Status ValidateRange(const RangeRequest& r) {
  if (r.key().empty()) return etcd_errors::EmptyKey();
  if (!RangeRequest::SortOrder_IsValid(r.sort_order()) ||
      !RangeRequest::SortTarget_IsValid(r.sort_target())) {
    return etcd_errors::InvalidSortOption();
  }
  return absl::OkStatus();
}

absl::Status ValidatePut(const PutRequest& r) {
  if (r.key().empty()) return etcd_errors::EmptyKey();
  if (r.ignore_value() && !r.value().empty()) return etcd_errors::ValueProvided();
  if (r.ignore_lease() && r.lease() != 0) return etcd_errors::LeaseProvided();
  return absl::OkStatus();
}

absl::Status ValidateDeleteRange(const DeleteRangeRequest& r) {
  if (r.key().empty()) return etcd_errors::EmptyKey();
  return absl::OkStatus();
}

absl::Status ValidateTxn(const TxnRequest& r, int max_ops) {
  BW_RETURN_IF_ERROR(CheckTxnOps(r, max_ops));
  Writes success, failure;
  BW_RETURN_IF_ERROR(CheckIntervals(r.success(), &success));
  return CheckIntervals(r.failure(), &failure);
}

}  // namespace bw::kv
