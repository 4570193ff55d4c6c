// etcd's own errors, as etcd 3.4 sends them: the gRPC code (an absl code of
// the same number) and the exact message, which clients match on. The one
// table of etcd's words: every refusal a client sees in them is made here.
// Each is tagged core::ErrorKind::kAnswer, so the member passes it through
// as it is (member::EtcdErrorFor) without reading its message.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "core/error_kind.h"
#include "core/status.h"

namespace bw::kv::etcd_errors {

// `s`, marked as the request's answer in etcd's words.
inline absl::Status Answer(absl::Status s) {
  return core::WithKind(std::move(s), core::ErrorKind::kAnswer);
}

// --- KV, txn, watch ---
inline absl::Status EmptyKey() {
  return Answer(absl::InvalidArgumentError("etcdserver: key is not provided"));
}
inline absl::Status KeyNotFound() {
  return Answer(absl::InvalidArgumentError("etcdserver: key not found"));
}
inline absl::Status ValueProvided() {
  return Answer(absl::InvalidArgumentError("etcdserver: value is provided"));
}
inline absl::Status LeaseProvided() {
  return Answer(absl::InvalidArgumentError("etcdserver: lease is provided"));
}
inline absl::Status TooManyOps() {
  return Answer(absl::InvalidArgumentError("etcdserver: too many operations in txn request"));
}
inline absl::Status DuplicateKey() {
  return Answer(absl::InvalidArgumentError("etcdserver: duplicate key given in txn request"));
}
inline absl::Status InvalidSortOption() {
  return Answer(absl::InvalidArgumentError("etcdserver: invalid sort option"));
}
inline absl::Status Compacted() {
  return Answer(absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted"));
}
inline absl::Status FutureRev() {
  return Answer(absl::OutOfRangeError("etcdserver: mvcc: required revision is a future revision"));
}
inline absl::Status RequestTooLarge() {
  return Answer(absl::InvalidArgumentError("etcdserver: request is too large"));
}

// --- Leases ---
inline absl::Status LeaseNotFound() {
  return Answer(absl::NotFoundError("etcdserver: requested lease not found"));
}
inline absl::Status LeaseExists() {
  return Answer(absl::FailedPreconditionError("etcdserver: lease already exists"));
}
inline absl::Status LeaseTtlTooLarge() {
  return Answer(absl::OutOfRangeError("etcdserver: too large lease TTL"));
}

// --- The member and the cluster ---
inline absl::Status NoLeader() {
  return Answer(absl::UnavailableError("etcdserver: no leader"));
}
inline absl::Status NotLeader() {
  return Answer(absl::FailedPreconditionError("etcdserver: not leader"));
}
inline absl::Status Timeout() {
  return Answer(absl::UnavailableError("etcdserver: request timed out"));
}
inline absl::Status LeaderChanged() {
  return Answer(absl::UnavailableError("etcdserver: leader changed"));
}
inline absl::Status NoSpace() {
  return Answer(absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded"));
}
inline absl::Status Corrupt() {
  return Answer(absl::DataLossError("etcdserver: corrupt cluster"));
}
inline absl::Status Stopped() {
  return Answer(absl::UnavailableError("etcdserver: server stopped"));
}
inline absl::Status BadLeaderTransferee() {
  return Answer(absl::FailedPreconditionError("etcdserver: bad leader transferee"));
}
inline absl::Status LeaderTransferTimeout() {
  return Answer(absl::UnavailableError("etcdserver: leadership transfer timeout"));
}
inline absl::Status MemberNotFound() {
  return Answer(absl::NotFoundError("etcdserver: member not found"));
}
inline absl::Status BadMemberUrls() {
  return Answer(absl::InvalidArgumentError("etcdserver: given member URLs are invalid"));
}
inline absl::Status PeerUrlsExist() {
  return Answer(absl::FailedPreconditionError("etcdserver: Peer URLs already exists"));
}
// bulwark's: member ids derive from the URLs, and an id once removed is never reused.
inline absl::Status PeerUrlsUsedUp(int times) {
  return Answer(absl::FailedPreconditionError(absl::StrCat(
      "etcdserver: these peer URLs were added ", times, " times already; use another address")));
}
inline absl::Status PromoteNotLearner() {
  return Answer(absl::FailedPreconditionError("etcdserver: can only promote a learner member"));
}
inline absl::Status LearnerNotReady() {
  return Answer(absl::FailedPreconditionError(
      "etcdserver: can only promote a learner member which is in sync with leader"));
}
inline absl::Status MembershipChangePending() {
  return Answer(absl::FailedPreconditionError(
      "etcdserver: another membership change is in progress; try again"));
}

// --- Users, roles and tokens ---
inline absl::Status RootUserNotExist() {
  return Answer(absl::FailedPreconditionError("etcdserver: root user does not exist"));
}
inline absl::Status RootRoleNotExist() {
  return Answer(absl::FailedPreconditionError("etcdserver: root user does not have root role"));
}
inline absl::Status UserAlreadyExist() {
  return Answer(absl::FailedPreconditionError("etcdserver: user name already exists"));
}
inline absl::Status UserEmpty() {
  return Answer(absl::InvalidArgumentError("etcdserver: user name is empty"));
}
inline absl::Status UserNotFound() {
  return Answer(absl::FailedPreconditionError("etcdserver: user name not found"));
}
inline absl::Status RoleAlreadyExist() {
  return Answer(absl::FailedPreconditionError("etcdserver: role name already exists"));
}
inline absl::Status RoleNotFound() {
  return Answer(absl::FailedPreconditionError("etcdserver: role name not found"));
}
inline absl::Status RoleEmpty() {
  return Answer(absl::InvalidArgumentError("etcdserver: role name is empty"));
}
inline absl::Status AuthFailed() {
  return Answer(
      absl::InvalidArgumentError("etcdserver: authentication failed, invalid user ID or password"));
}
inline absl::Status PermissionDenied() {
  return Answer(absl::PermissionDeniedError("etcdserver: permission denied"));
}
inline absl::Status PermissionNotGiven() {
  return Answer(absl::InvalidArgumentError("etcdserver: permission not given"));
}
inline absl::Status RoleNotGranted() {
  return Answer(absl::FailedPreconditionError("etcdserver: role is not granted to the user"));
}
inline absl::Status PermissionNotGranted() {
  return Answer(absl::FailedPreconditionError("etcdserver: permission is not granted to the role"));
}
inline absl::Status AuthNotEnabled() {
  return Answer(absl::FailedPreconditionError("etcdserver: authentication is not enabled"));
}
inline absl::Status InvalidAuthToken() {
  return Answer(absl::UnauthenticatedError("etcdserver: invalid auth token"));
}
inline absl::Status InvalidAuthMgmt() {
  return Answer(absl::InvalidArgumentError("etcdserver: invalid auth management"));
}
inline absl::Status AuthOldRevision() {
  return Answer(absl::InvalidArgumentError("etcdserver: revision of auth store is old"));
}
// bulwark's: password hashing is bounded, and a burst beyond it is refused.
inline absl::Status TooManyPasswordChecks() {
  return Answer(absl::ResourceExhaustedError(
      "etcdserver: too many requests (password checks queued); try again"));
}
// bulwark's: a member given only the JWT public key cannot sign.
inline absl::Status JwtVerifyOnly() {
  return Answer(absl::FailedPreconditionError(
      "etcdserver: this member only verifies JWT tokens (no priv-key); authenticate at another"));
}

}  // namespace bw::kv::etcd_errors
