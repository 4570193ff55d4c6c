// libFuzzer target: request handling in the state machine (kv/mvcc.h): the
// decoding, validation and application of bulwark.internal.Request log
// entries (every etcd write, lease and member operation, idempotency keys
// and the bulwark.v1.Idempotency record calls), reads, and the decoding of
// the state machine's snapshots.
//
// The input is a series of length-prefixed chunks. A chunk that parses as a
// Request is validated as the API layer would (ValidatePut,
// ValidateDeleteRange, ValidateTxn must answer, never crash) and then
// applied through StateMachine::ApplyEntry, valid or not: a log entry that
// decodes must never crash a replica. Chunks that parse as a RangeRequest
// are validated and, if valid, served. The first byte may instead make the
// whole rest a snapshot to Restore. Asserted:
//   - no crash, sanitizer report or failed assertion;
//   - apply results carry etcd's codes only, and the revision never goes
//     down;
//   - determinism: a second store applying the same entries reaches the same
//     digest, HashKV and revision (replicas agree);
//   - snapshots: Serialize then Restore gives a store with the same digest
//     and HashKV; a snapshot from the input restores or fails with
//     DATA_LOSS, and if it restores, its own serialization restores to the
//     same digest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "fuzz/fuzz_util.h"
#include "google/protobuf/stubs/logging.h"
#include "kv/mvcc.h"

namespace {

using bulwark::internal::Request;

bool EtcdCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

void Validate(const Request& r) {
  // The answers do not matter here, only that every request gets one.
  if (r.has_put()) (void)bw::kv::ValidatePut(r.put());
  if (r.has_delete_range()) (void)bw::kv::ValidateDeleteRange(r.delete_range());
  if (r.has_txn()) {
    (void)bw::kv::ValidateTxn(r.txn());
    (void)bw::kv::ValidateTxn(r.txn(), 1);
  }
}

void CheckSnapshotRoundTrip(const bw::kv::MvccStore& store) {
  bw::kv::MvccStore copy;
  const absl::Status s = copy.Restore(store.Serialize());
  BW_ASSERT_MSG(s.ok(), s.ToString());
  BW_ASSERT_EQ(copy.digest(), store.digest());
  BW_ASSERT_EQ(copy.HashKV(0), store.HashKV(0));
  BW_ASSERT_EQ(copy.revision(), store.revision());
}

void Entries(bw::fuzz::Input& in) {
  bw::kv::MvccStore a, b;
  a.set_record_events(true);
  int64_t index = 0;
  for (int chunk = 0; chunk < 64 && !in.empty(); ++chunk) {
    const size_t n = size_t{in.Byte()} << 2 | in.Below(4);
    const std::string_view bytes = in.Take(n);
    Request r;
    if (r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      Validate(r);
      const int64_t before = a.revision();
      ++index;
      bw::kv::StateMachine::Applied got = a.ApplyEntry(bw::LogIndex(index), bytes);
      (void)b.ApplyEntry(bw::LogIndex(index), bytes);
      BW_ASSERT_EQ(got.request_id, r.id());
      const auto* res = std::any_cast<bw::kv::MvccResult>(&got.result);
      BW_ASSERT(res != nullptr);
      BW_ASSERT_MSG(EtcdCode(res->status), res->status.ToString());
      BW_ASSERT_GE(a.revision(), before);
      BW_ASSERT_EQ(a.digest(), b.digest());
      (void)a.TakeEvents();
      continue;
    }
    etcdserverpb::RangeRequest range;
    if (range.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) &&
        bw::kv::ValidateRange(range).ok()) {
      etcdserverpb::RangeResponse out;
      const absl::Status s = a.Range(range, &out);
      BW_ASSERT_MSG(s.ok() || absl::IsOutOfRange(s), s.ToString());
      std::vector<mvccpb::Event> events;
      (void)a.EventsSince(range.key(), range.range_end(), range.revision(), 100, &events);
    }
  }
  BW_ASSERT_EQ(a.digest(), b.digest());
  BW_ASSERT_EQ(a.HashKV(0), b.HashKV(0));
  BW_ASSERT_EQ(a.revision(), b.revision());
  CheckSnapshotRoundTrip(a);
}

void SnapshotBytes(std::string_view bytes) {
  bw::kv::MvccStore store;
  const absl::Status s = store.Restore(bytes);
  if (!s.ok()) {
    BW_ASSERT_MSG(absl::IsDataLoss(s), s.ToString());
    return;
  }
  CheckSnapshotRoundTrip(store);
  // A restored store must take writes and reads like any other.
  Request put;
  put.mutable_put()->set_key("k");
  put.mutable_put()->set_value("v");
  (void)store.Apply(put);
  etcdserverpb::RangeRequest range;
  range.set_key(std::string(1, '\0'));
  range.set_range_end(std::string(1, '\0'));
  etcdserverpb::RangeResponse out;
  (void)store.Range(range, &out);
}

std::string Chunk(const google::protobuf::Message& m) {
  const std::string bytes = m.SerializeAsString();
  BW_ASSERT_LT(bytes.size(), 1024u);
  std::string out;
  // Length = byte << 2 | next byte % 4.
  out.push_back(static_cast<char>(bytes.size() >> 2));
  out.push_back(static_cast<char>(bytes.size() & 3));
  return out + bytes;
}

std::vector<std::string> Seeds() {
  std::vector<std::string> out;
  std::string writes(1, '\0');
  Request r;
  r.set_id(1);
  r.set_time_us(1'000'000);
  r.mutable_put()->set_key("a");
  r.mutable_put()->set_value("1");
  writes += Chunk(r);
  r.Clear();
  r.set_id(2);
  r.mutable_lease_grant()->set_ttl(10);
  r.mutable_lease_grant()->set_id(7);
  writes += Chunk(r);
  r.Clear();
  r.set_id(3);
  r.mutable_put()->set_key("b");
  r.mutable_put()->set_lease(7);
  r.mutable_idempotency()->set_scope("s");
  r.mutable_idempotency()->set_key("k1");
  r.mutable_idempotency()->set_fingerprint(99);
  writes += Chunk(r);
  writes += Chunk(r);  // the retry
  r.Clear();
  r.set_id(4);
  etcdserverpb::TxnRequest* t = r.mutable_txn();
  etcdserverpb::Compare* c = t->add_compare();
  c->set_key("a");
  c->set_target(etcdserverpb::Compare::VALUE);
  c->set_value("1");
  t->add_success()->mutable_request_put()->set_key("c");
  t->add_success()->mutable_request_range()->set_key("a");
  t->add_failure()->mutable_request_delete_range()->set_key("a");
  writes += Chunk(r);
  r.Clear();
  r.set_id(5);
  r.mutable_tick()->set_now_us(20'000'000);
  writes += Chunk(r);
  r.Clear();
  r.set_id(6);
  r.mutable_compaction()->set_revision(3);
  writes += Chunk(r);
  r.Clear();
  r.set_id(7);
  r.mutable_member_add()->set_id(12);
  r.mutable_member_add()->set_name("m2");
  r.mutable_member_add()->add_peer_urls("http://127.0.0.1:2382");
  writes += Chunk(r);
  r.Clear();
  r.set_id(8);
  r.mutable_idem_begin()->set_scope("pay");
  r.mutable_idem_begin()->set_key("order-1");
  writes += Chunk(r);
  etcdserverpb::RangeRequest range;
  range.set_key("a");
  range.set_range_end(std::string(1, '\0'));
  range.set_revision(2);
  writes += Chunk(range);
  out.push_back(writes);

  // A snapshot of a store with keys, leases, members and records.
  bw::kv::MvccStore store;
  bw::fuzz::Input in(std::string_view(writes).substr(1));
  int64_t index = 0;
  while (!in.empty()) {
    const size_t n = size_t{in.Byte()} << 2 | in.Below(4);
    const std::string_view bytes = in.Take(n);
    Request req;
    if (req.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      (void)store.ApplyEntry(bw::LogIndex(++index), bytes);
  }
  out.push_back(std::string(1, '\x01') + store.Serialize());
  return out;
}

// Fuzzed strings are often not UTF-8; protobuf logs every such parse, which
// would bury a finding in the run's log.
[[maybe_unused]] const bool kQuietProtobuf = (google::protobuf::SetLogHandler(nullptr), true);

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bw::fuzz::Input in(data, size);
  if (in.Byte() % 2 == 0) {
    Entries(in);
  } else {
    SnapshotBytes(in.Rest());
  }
  return 0;
}
