#include "kv/testing/kv_state.h"

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "core/bytes.h"

namespace bw::kv {

namespace {

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint64_t HashBytes(std::string_view s, uint64_t seed) {
  uint64_t h = seed ^ (s.size() * 0x9E3779B97F4A7C15ULL);
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001B3ULL;
  return Mix(h);
}

uint64_t PairHash(std::string_view k, std::string_view v) {
  return Mix(HashBytes(k, 1) + 31 * HashBytes(v, 2));
}

constexpr uint8_t kSnapshotVersion = 1;

}  // namespace

std::string EncodeKvCommand(const KvCommand& cmd) {
  std::string out;
  out.reserve(16 + cmd.key.size() + cmd.value.size() + cmd.expected.size());
  core::ByteWriter w(&out);
  w.U8(static_cast<uint8_t>(cmd.op));
  w.Varint(cmd.request_id);
  w.Bytes(cmd.key);
  w.Bytes(cmd.value);
  if (cmd.op == KvOp::kCas) w.Bytes(cmd.expected);
  return out;
}

absl::StatusOr<KvCommand> DecodeKvCommand(std::string_view data) {
  core::ByteReader r(data);
  KvCommand cmd;
  uint8_t op = r.U8();
  if (r.ok() && op != static_cast<uint8_t>(KvOp::kPut) && op != static_cast<uint8_t>(KvOp::kCas)) {
    return absl::InvalidArgumentError(absl::StrCat("kv command: unknown op ", op));
  }
  cmd.op = static_cast<KvOp>(op);
  cmd.request_id = r.Varint();
  cmd.key = std::string(r.Bytes());
  cmd.value = std::string(r.Bytes());
  if (cmd.op == KvOp::kCas) cmd.expected = std::string(r.Bytes());
  if (!r.ok()) return absl::InvalidArgumentError("kv command: truncated");
  if (!r.done()) return absl::InvalidArgumentError("kv command: trailing bytes");
  return cmd;
}

void KvStateMachine::Set(const std::string& key, std::string value) {
  auto it = data_.find(key);
  if (it != data_.end()) {
    digest_ ^= PairHash(it->first, it->second);
    it->second = std::move(value);
    digest_ ^= PairHash(it->first, it->second);
  } else {
    digest_ ^= PairHash(key, value);
    data_.emplace(key, std::move(value));
  }
}

KvResult KvStateMachine::Apply(const KvCommand& cmd) {
  KvResult res;
  res.request_id = cmd.request_id;
  if (cmd.request_id != 0) {
    uint64_t client = cmd.request_id >> kRequestSeqBits;
    uint64_t seq = cmd.request_id & ((uint64_t{1} << kRequestSeqBits) - 1);
    uint64_t& last = last_seq_[client];
    if (seq <= last) {
      res.applied = false;
      res.duplicate = true;
      return res;
    }
    digest_ ^= Mix(client * 0x51ED27ULL + last);
    last = seq;
    digest_ ^= Mix(client * 0x51ED27ULL + last);
  }
  if (cmd.op == KvOp::kCas) {
    auto it = data_.find(cmd.key);
    res.applied = it != data_.end() && it->second == cmd.expected;
  }
  if (res.applied) Set(cmd.key, cmd.value);
  if (track_requests_ && requests_.insert(cmd.request_id).second) {
    digest_ ^= Mix(cmd.request_id ^ 0xA5A5A5A5ULL);
  }
  return res;
}

StateMachine::Applied KvStateMachine::ApplyEntry(LogIndex index, int64_t time_us,
                                                 std::string_view data) {
  absl::StatusOr<KvCommand> cmd = DecodeKvCommand(data);
  BW_ASSERT_MSG(cmd.ok(), cmd.status().ToString());
  KvResult res = Apply(*cmd);
  return Applied{res.request_id, res};
}

std::optional<std::string> KvStateMachine::Get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvStateMachine::Serialize() const {
  std::string out;
  core::ByteWriter w(&out);
  w.U8(kSnapshotVersion);
  w.Varint(data_.size());
  for (const auto& [k, v] : data_) {
    w.Bytes(k);
    w.Bytes(v);
  }
  w.Varint(last_seq_.size());
  for (const auto& [client, seq] : last_seq_) {
    w.Varint(client);
    w.Varint(seq);
  }
  w.Varint(requests_.size());
  for (uint64_t id : requests_)
    w.Varint(id);
  return out;
}

absl::Status KvStateMachine::Restore(std::string_view snapshot) {
  core::ByteReader r(snapshot);
  if (r.U8() != kSnapshotVersion || !r.ok()) {
    return absl::InvalidArgumentError("kv snapshot: unknown version");
  }
  KvStateMachine next(track_requests_);
  uint64_t n = r.Varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    std::string k(r.Bytes());
    std::string v(r.Bytes());
    next.Set(k, std::move(v));
  }
  uint64_t clients = r.Varint();
  for (uint64_t i = 0; i < clients && r.ok(); ++i) {
    uint64_t client = r.Varint();
    uint64_t seq = r.Varint();
    next.digest_ ^= Mix(client * 0x51ED27ULL + 0);
    next.last_seq_[client] = seq;
    next.digest_ ^= Mix(client * 0x51ED27ULL + seq);
  }
  uint64_t m = r.Varint();
  for (uint64_t i = 0; i < m && r.ok(); ++i) {
    uint64_t id = r.Varint();
    if (next.requests_.insert(id).second) next.digest_ ^= Mix(id ^ 0xA5A5A5A5ULL);
  }
  if (!r.ok() || !r.done())
    return absl::InvalidArgumentError("kv snapshot: truncated or trailing bytes");
  *this = std::move(next);
  return absl::OkStatus();
}

}  // namespace bw::kv
