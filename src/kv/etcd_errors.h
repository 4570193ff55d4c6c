// etcd's own errors, as etcd 3.4 sends them: the gRPC code (an absl code of
// the same number) and the exact message, which clients match on.
#pragma once

#include "core/status.h"

namespace bw::kv::etcd_errors {

inline absl::Status EmptyKey() {
  return absl::InvalidArgumentError("etcdserver: key is not provided");
}
inline absl::Status KeyNotFound() {
  return absl::InvalidArgumentError("etcdserver: key not found");
}
inline absl::Status ValueProvided() {
  return absl::InvalidArgumentError("etcdserver: value is provided");
}
inline absl::Status LeaseProvided() {
  return absl::InvalidArgumentError("etcdserver: lease is provided");
}
inline absl::Status TooManyOps() {
  return absl::InvalidArgumentError("etcdserver: too many operations in txn request");
}
inline absl::Status DuplicateKey() {
  return absl::InvalidArgumentError("etcdserver: duplicate key given in txn request");
}
inline absl::Status InvalidSortOption() {
  return absl::InvalidArgumentError("etcdserver: invalid sort option");
}
inline absl::Status Compacted() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
}
inline absl::Status FutureRev() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision is a future revision");
}
inline absl::Status LeaseNotFound() {
  return absl::NotFoundError("etcdserver: requested lease not found");
}
inline absl::Status RequestTooLarge() {
  return absl::InvalidArgumentError("etcdserver: request is too large");
}
inline absl::Status NoLeader() {
  return absl::UnavailableError("etcdserver: no leader");
}
inline absl::Status Timeout() {
  return absl::UnavailableError("etcdserver: request timed out");
}
inline absl::Status LeaderChanged() {
  return absl::UnavailableError("etcdserver: leader changed");
}
inline absl::Status NoSpace() {
  return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
}
inline absl::Status Corrupt() {
  return absl::DataLossError("etcdserver: corrupt cluster");
}
inline absl::Status Stopped() {
  return absl::UnavailableError("etcdserver: server stopped");
}

}  // namespace bw::kv::etcd_errors
