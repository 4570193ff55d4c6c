// What the files of the MVCC store (mvcc.cc, mvcc_records.cc,
// txn_check.cc) share: the hashes of its digest and a txn's list of ops.
// Not for use outside kv/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/splitmix.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"

namespace bw::kv::mvcc_internal {

using Ops = google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>;

inline uint64_t Mix(uint64_t x) {
  return core::SplitMix64(x);
}

inline uint64_t HashBytes(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ULL;
  return Mix(h);
}

// A record's place in the table: its scope, a NUL, its key.
inline std::string RecordKey(const std::string& scope, const std::string& key) {
  std::string k = scope;
  k.push_back('\0');
  k += key;
  return k;
}

}  // namespace bw::kv::mvcc_internal
