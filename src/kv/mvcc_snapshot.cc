// The MVCC store's digest (equal on replicas that hold the same state) and
// its snapshot: Serialize and Restore.
#include <string>
#include <utility>

#include "core/assert.h"
#include "core/bytes.h"
#include "kv/mvcc.h"
#include "kv/mvcc_internal.h"

namespace bw::kv {

using mvcc_internal::HashBytes;
using mvcc_internal::Mix;
using mvcc_internal::RecordKey;

namespace {

// The tags of MvccSnapshot.keys (field 3) and .idempotency (field 7), both
// length-delimited, on the wire.
constexpr uint8_t kSnapshotKeysTag = (3 << 3) | 2;
constexpr uint8_t kSnapshotIdempotencyTag = (7 << 3) | 2;

}  // namespace

// --- digest and snapshots ----------------------------------------------------

uint64_t MvccStore::VersionHash(const std::string& key, const Version& v) {
  uint64_t h = HashBytes(key, 0x6B657973ULL);
  h ^= Mix(static_cast<uint64_t>(v.mod) * 31 + static_cast<uint64_t>(v.sub));
  h ^= Mix(static_cast<uint64_t>(v.create) ^ (static_cast<uint64_t>(v.version) << 20) ^
           (v.tombstone ? 0x8000000000000000ULL : 0));
  h ^= Mix(static_cast<uint64_t>(v.lease) + 0x9E37ULL);
  return h ^ HashBytes(v.value, 0x76616CULL);
}

uint64_t MvccStore::digest() const {
  uint64_t d = version_sum_ ^ Mix(static_cast<uint64_t>(revision_)) ^
               Mix(static_cast<uint64_t>(compact_revision_) + 0x5151ULL) ^
               Mix(static_cast<uint64_t>(log_time_us_) + 0x7177ULL);
  for (const auto& [id, m] : members_) {
    d += Mix(id ^ HashBytes(m.SerializeAsString(), 0x6D656DULL));
  }
  d ^= Mix(idem_sum_ + idem_seq_);
  d ^= Mix(records_sum_ + record_token_seq_ * 0x9E3779B97F4A7C15ULL);
  d ^= Mix(auth_.digest() + 0x61757468ULL);
  for (const etcdserverpb::AlarmMember& a : alarms_) {
    d += Mix(a.memberid() ^ (static_cast<uint64_t>(a.alarm()) << 56) ^ 0x616C61726DULL);
  }
  for (const auto& [id, l] : leases_) {
    d += Mix(static_cast<uint64_t>(id) ^ Mix(static_cast<uint64_t>(l.expiry_us)) ^
             Mix(static_cast<uint64_t>(l.ttl) + l.keys.size()));
  }
  return d;
}

std::string MvccStore::Serialize() const {
  // Written a key at a time, not built as one MvccSnapshot message first:
  // that message was a second copy of every version (more than the state
  // itself, with protobuf's per-message overhead) alive next to the string,
  // and made a snapshot of 100,000 keys raise a member's peak memory by
  // about two thirds. The bytes are the same: fields 1-2, then every key
  // (field 3), then fields 4-12, which is the order SerializeToString
  // writes them in (MvccTest.SnapshotIsTheCanonicalEncoding checks it).
  std::string out;
  out.reserve(bytes_ + versions_ * 32 + keys_.size() * 8 + 4096);
  bulwark::internal::MvccSnapshot head;
  head.set_revision(revision_);
  head.set_compact_revision(compact_revision_);
  BW_ASSERT(head.AppendToString(&out));
  bulwark::internal::KeyHistory kh;  // reused: its versions keep their memory
  core::ByteWriter w(&out);
  for (const auto& [key, h] : keys_) {
    kh.Clear();
    kh.set_key(key);
    for (const Version& v : h) {
      bulwark::internal::Version* pv = kh.add_versions();
      pv->set_mod_revision(v.mod);
      pv->set_sub(v.sub);
      pv->set_tombstone(v.tombstone);
      pv->set_create_revision(v.create);
      pv->set_version(v.version);
      pv->set_lease(v.lease);
      pv->set_value(v.value);
    }
    w.U8(kSnapshotKeysTag);
    w.Varint(kh.ByteSizeLong());
    BW_ASSERT(kh.AppendToString(&out));
  }
  // Fields 4-6, then each idempotency record (7) written from the table as
  // it is (copying a million records into the message first cost more than
  // the rest of the snapshot), then fields 8-12.
  bulwark::internal::MvccSnapshot mid;
  for (const auto& [id, l] : leases_) {
    bulwark::internal::Lease* pl = mid.add_leases();
    pl->set_id(id);
    pl->set_ttl(l.ttl);
    pl->set_expiry_us(l.expiry_us);
  }
  mid.set_log_time_us(log_time_us_);
  for (const auto& [id, m] : members_)
    *mid.add_members() = m;
  BW_ASSERT(mid.AppendToString(&out));
  for (const auto& [when, k] : idem_by_expiry_) {
    const bulwark::internal::IdempotencyRecord& r = idem_.at(k);
    w.U8(kSnapshotIdempotencyTag);
    w.Varint(r.ByteSizeLong());
    BW_ASSERT(r.AppendToString(&out));
  }
  bulwark::internal::MvccSnapshot tail;
  tail.set_idempotency_seq(idem_seq_);
  for (const auto& [k, r] : records_)
    *tail.add_records() = r;
  tail.set_record_token_seq(record_token_seq_);
  auth_.SaveTo(tail.mutable_auth());
  for (const etcdserverpb::AlarmMember& a : alarms_)
    *tail.add_alarms() = a;
  BW_ASSERT(tail.AppendToString(&out));
  return out;
}

absl::Status MvccStore::Restore(std::string_view snapshot) {
  bulwark::internal::MvccSnapshot snap;
  if (!snap.ParseFromArray(snapshot.data(), static_cast<int>(snapshot.size()))) {
    return absl::DataLossError("mvcc: snapshot does not parse");
  }
  MvccStore fresh;
  fresh.revision_ = snap.revision();
  fresh.compact_revision_ = snap.compact_revision();
  fresh.log_time_us_ = snap.log_time_us();
  for (const bulwark::internal::MemberAttributes& m : snap.members())
    fresh.members_[m.id()] = m;
  fresh.alarms_.assign(snap.alarms().begin(), snap.alarms().end());
  fresh.idem_limits_ = idem_limits_;
  fresh.idem_seq_ = snap.idempotency_seq();
  for (bulwark::internal::IdempotencyRecord r : snap.idempotency()) {
    const std::string k = RecordKey(r.scope(), r.key());
    // Kept before answers carried their expiry: the default retention.
    if (r.expires_us() == 0) r.set_expires_us(r.created_us() + fresh.idem_limits_.retention_us);
    if (r.seq() == 0 || r.seq() > fresh.idem_seq_ || !fresh.idem_.emplace(k, r).second ||
        fresh.idem_by_expiry_.count(std::make_pair(r.expires_us(), r.seq())) > 0) {
      return absl::DataLossError("mvcc: snapshot idempotency records inconsistent");
    }
    fresh.IndexAnswer(k, r);
  }
  fresh.record_token_seq_ = snap.record_token_seq();
  for (const bulwark::v1::Record& r : snap.records()) {
    if (r.token() > fresh.record_token_seq_) {
      return absl::DataLossError("mvcc: snapshot record token past the sequence");
    }
    fresh.SetRecord(RecordKey(r.scope(), r.key()), r);
  }
  BW_RETURN_IF_ERROR(fresh.auth_.LoadFrom(snap.auth()));
  fresh.record_events_ = record_events_;
  fresh.planted_skip_dedup_ = planted_skip_dedup_;
  fresh.planted_proposer_time_ = planted_proposer_time_;
  fresh.planted_compaction_drops_delete_ = planted_compaction_drops_delete_;
  fresh.planted_stale_token_ = planted_stale_token_;
  fresh.planted_skip_apply_auth_ = planted_skip_apply_auth_;
  for (const bulwark::internal::Lease& pl : snap.leases()) {
    Lease& l = fresh.leases_[pl.id()];
    l.ttl = pl.ttl();
    l.expiry_us = pl.expiry_us();
  }
  for (const bulwark::internal::KeyHistory& kh : snap.keys()) {
    if (kh.versions().empty()) return absl::DataLossError("mvcc: snapshot key without versions");
    // Serialize writes each key once; versions of a repeated key would be
    // appended out of order, and a store that serializes to a snapshot it
    // cannot restore (and whose reads search unsorted histories) would result.
    if (fresh.keys_.count(kh.key()) != 0) return absl::DataLossError("mvcc: snapshot key repeated");
    int64_t last_mod = 0, last_sub = -1;
    for (const bulwark::internal::Version& pv : kh.versions()) {
      if (pv.mod_revision() < last_mod || (pv.mod_revision() == last_mod && pv.sub() <= last_sub) ||
          pv.mod_revision() > fresh.revision_) {
        return absl::DataLossError("mvcc: snapshot versions out of order");
      }
      last_mod = pv.mod_revision();
      last_sub = pv.sub();
      Version v{pv.mod_revision(), pv.sub(),   pv.tombstone(), pv.create_revision(),
                pv.version(),      pv.lease(), pv.value()};
      fresh.AddVersion(kh.key(), std::move(v));
    }
    // A key's lease is its latest version's, if that is live.
    const Version& last = fresh.keys_[kh.key()].back();
    if (!last.tombstone && last.lease != 0) {
      auto l = fresh.leases_.find(last.lease);
      if (l == fresh.leases_.end()) return absl::DataLossError("mvcc: snapshot key of no lease");
      l->second.keys.insert(kh.key());
    }
  }
  *this = std::move(fresh);
  return absl::OkStatus();
}

}  // namespace bw::kv
