// The one table from bulwark's failures to etcd's errors, as etcd 3.4 sends
// them (its v3rpc/util.go keeps the same table). Lower layers tag what they
// know with core::ErrorKind; nothing here reads a message to decide a code.
// An answer already in etcd's words (kv::etcd_errors, tagged kAnswer)
// passes through as it is.
#pragma once

#include "core/status.h"

namespace bw::member {

// etcd's error for a failure of the member (OK stays OK).
absl::Status EtcdErrorFor(const absl::Status& s);

}  // namespace bw::member
