#include "member/etcd_error_map.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "core/error_kind.h"
#include "kv/etcd_errors.h"

namespace bw::member {

absl::Status EtcdErrorFor(const absl::Status& s) {
  if (s.ok()) return s;
  if (std::optional<core::ErrorKind> kind = core::KindOf(s)) {
    switch (*kind) {
      case core::ErrorKind::kNoLeader:
        return kv::etcd_errors::NoLeader();
      case core::ErrorKind::kLeaderChanged:
        return kv::etcd_errors::LeaderChanged();
      case core::ErrorKind::kStopped:
        return kv::etcd_errors::Stopped();
      case core::ErrorKind::kNoSpace:
        return kv::etcd_errors::NoSpace();
      case core::ErrorKind::kConfChangePending:
        return kv::etcd_errors::MembershipChangePending();
      case core::ErrorKind::kAnswer:
        return s;  // already etcd's answer
    }
  }
  // A write whose outcome is unknown: etcd's timeout, which clients retry
  // only with care.
  if (absl::IsDeadlineExceeded(s)) return kv::etcd_errors::Timeout();
  if (absl::IsResourceExhausted(s)) {
    return absl::ResourceExhaustedError(absl::StrCat("etcdserver: ", s.message()));
  }
  return absl::UnavailableError(absl::StrCat("etcdserver: ", s.message()));
}

}  // namespace bw::member
