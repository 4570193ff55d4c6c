#include "raft/codec.h"

#include <bit>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/assert.h"
#include "core/limits.h"

namespace bw::raft {
namespace {

// Presence bits of the message field mask, in encoding order. The fields a
// heartbeat carries come first so its mask fits in one varint byte.
constexpr uint64_t kFieldFrom = 1 << 0;
constexpr uint64_t kFieldTo = 1 << 1;
constexpr uint64_t kFieldTerm = 1 << 2;
constexpr uint64_t kFieldCommit = 1 << 3;
constexpr uint64_t kFieldContext = 1 << 4;
constexpr uint64_t kFieldLogTerm = 1 << 5;
constexpr uint64_t kFieldIndex = 1 << 6;
constexpr uint64_t kFieldReject = 1 << 7;
constexpr uint64_t kFieldRejectHint = 1 << 8;
constexpr uint64_t kFieldEntries = 1 << 9;
constexpr uint64_t kFieldSnapshotMeta = 1 << 10;
constexpr uint64_t kFieldSnapshotOffset = 1 << 11;
constexpr uint64_t kFieldSnapshotSize = 1 << 12;
constexpr uint64_t kFieldData = 1 << 13;
constexpr uint64_t kFieldAll = (1 << 14) - 1;

// Entry header bits.
constexpr uint8_t kEntryTypeMask = 0x0F;
constexpr uint8_t kEntryNextIndex = 0x10;
constexpr uint8_t kEntrySameTerm = 0x20;
constexpr uint8_t kEntryTime = 0x40;
constexpr uint8_t kEntryReserved = 0x80;
// The smallest entry record: header and an empty data length.
constexpr size_t kMinEntryBytes = 2;
// The smallest conf change: type and node.
constexpr size_t kMinConfChangeSingleBytes = 2;

constexpr uint8_t kMaxEntryType = static_cast<uint8_t>(EntryType::kConfChange);
constexpr uint8_t kMaxConfChangeType = static_cast<uint8_t>(ConfChangeType::kRemoveNode);
constexpr uint8_t kMaxConfTransition = static_cast<uint8_t>(ConfTransition::kJointExplicit);

constexpr size_t kMaxVarintBytes = 10;

size_t VarintSize(uint64_t v) {
  return (std::bit_width(v | 1) + 6) / 7;
}
size_t BytesSize(std::string_view s) {
  return VarintSize(s.size()) + s.size();
}

// ---------------------------------------------------------------- encoding

// Writes into a buffer already sized by the matching *Size function.
class Writer {
 public:
  explicit Writer(char* p) : p_(p) {}

  char* pos() const { return p_; }

  void Byte(uint8_t b) { *p_++ = static_cast<char>(b); }

  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }

  void Bytes(std::string_view s) {
    Varint(s.size());
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }

 private:
  char* p_;
};

// The entry before the one being coded; its index and term are the implicit
// values of the next entry's fields.
struct EntryPrev {
  Term term;
  LogIndex index;
};

uint8_t EntryHeader(const Entry& e, const EntryPrev& prev) {
  const auto type = static_cast<uint8_t>(e.type);
  BW_ASSERT_LE(type, kMaxEntryType);
  uint8_t h = type;
  if (e.index == prev.index + 1) h |= kEntryNextIndex;
  if (e.term == prev.term) h |= kEntrySameTerm;
  BW_ASSERT_GE(e.time_us, 0);
  if (e.time_us != 0) h |= kEntryTime;
  return h;
}

size_t EntrySize(const Entry& e, const EntryPrev& prev) {
  size_t n = 1 + BytesSize(e.data);
  if (e.index != prev.index + 1) n += VarintSize(e.index.value());
  if (e.term != prev.term) n += VarintSize(e.term.value());
  if (e.time_us != 0) n += VarintSize(static_cast<uint64_t>(e.time_us));
  return n;
}

void WriteEntry(Writer& w, const Entry& e, const EntryPrev& prev) {
  const uint8_t h = EntryHeader(e, prev);
  w.Byte(h);
  if (!(h & kEntryNextIndex)) w.Varint(e.index.value());
  if (!(h & kEntrySameTerm)) w.Varint(e.term.value());
  if (h & kEntryTime) w.Varint(static_cast<uint64_t>(e.time_us));
  w.Bytes(e.data);
}

size_t NodeListSize(const std::vector<NodeId>& ids) {
  size_t n = VarintSize(ids.size());
  for (NodeId id : ids)
    n += VarintSize(id.value());
  return n;
}

void WriteNodeList(Writer& w, const std::vector<NodeId>& ids) {
  w.Varint(ids.size());
  for (NodeId id : ids)
    w.Varint(id.value());
}

size_t ConfStateSize(const ConfState& cs) {
  return NodeListSize(cs.voters) + NodeListSize(cs.voters_outgoing) + NodeListSize(cs.learners) +
         NodeListSize(cs.learners_next) + 1;
}

void WriteConfState(Writer& w, const ConfState& cs) {
  WriteNodeList(w, cs.voters);
  WriteNodeList(w, cs.voters_outgoing);
  WriteNodeList(w, cs.learners);
  WriteNodeList(w, cs.learners_next);
  w.Byte(cs.auto_leave ? 1 : 0);
}

size_t SnapshotMetaSize(const SnapshotMeta& meta) {
  return VarintSize(meta.index.value()) + VarintSize(meta.term.value()) + ConfStateSize(meta.conf);
}

void WriteSnapshotMeta(Writer& w, const SnapshotMeta& meta) {
  w.Varint(meta.index.value());
  w.Varint(meta.term.value());
  WriteConfState(w, meta.conf);
}

uint64_t FieldMask(const Message& m) {
  uint64_t mask = 0;
  if (m.from != kNoNode) mask |= kFieldFrom;
  if (m.to != kNoNode) mask |= kFieldTo;
  if (m.term != Term(0)) mask |= kFieldTerm;
  if (m.commit != LogIndex(0)) mask |= kFieldCommit;
  if (m.context != 0) mask |= kFieldContext;
  if (m.log_term != Term(0)) mask |= kFieldLogTerm;
  if (m.index != LogIndex(0)) mask |= kFieldIndex;
  if (m.reject) mask |= kFieldReject;
  if (m.reject_hint != LogIndex(0)) mask |= kFieldRejectHint;
  if (!m.entries.empty()) mask |= kFieldEntries;
  if (m.snapshot_meta != SnapshotMeta{}) mask |= kFieldSnapshotMeta;
  if (m.snapshot_offset != 0) mask |= kFieldSnapshotOffset;
  if (m.snapshot_size != 0) mask |= kFieldSnapshotSize;
  if (!m.data.empty()) mask |= kFieldData;
  return mask;
}

size_t MessageSize(const Message& m, uint64_t mask) {
  size_t n = 2 + VarintSize(mask);
  if (mask & kFieldFrom) n += VarintSize(m.from.value());
  if (mask & kFieldTo) n += VarintSize(m.to.value());
  if (mask & kFieldTerm) n += VarintSize(m.term.value());
  if (mask & kFieldCommit) n += VarintSize(m.commit.value());
  if (mask & kFieldContext) n += VarintSize(m.context);
  if (mask & kFieldLogTerm) n += VarintSize(m.log_term.value());
  if (mask & kFieldIndex) n += VarintSize(m.index.value());
  if (mask & kFieldRejectHint) n += VarintSize(m.reject_hint.value());
  if (mask & kFieldEntries) {
    n += VarintSize(m.entries.size());
    EntryPrev prev{m.log_term, m.index};
    for (const Entry& e : m.entries) {
      n += EntrySize(e, prev);
      prev = {e.term, e.index};
    }
  }
  if (mask & kFieldSnapshotMeta) n += SnapshotMetaSize(m.snapshot_meta);
  if (mask & kFieldSnapshotOffset) n += VarintSize(m.snapshot_offset);
  if (mask & kFieldSnapshotSize) n += VarintSize(m.snapshot_size);
  if (mask & kFieldData) n += BytesSize(m.data);
  return n;
}

// Sizes a string for `size` bytes, lets `write` fill them, and checks that it
// wrote exactly that many.
template <typename F>
std::string EncodeExact(size_t size, F&& write) {
  std::string out(size, '\0');
  Writer w(out.data());
  std::forward<F>(write)(w);
  BW_ASSERT_EQ(static_cast<size_t>(w.pos() - out.data()), size);
  return out;
}

// ---------------------------------------------------------------- decoding

// Reads from a bounded buffer. Every read checks bounds; on failure it records
// an INVALID_ARGUMENT status naming the object, the item (e.g. "entry 3") and
// the field, and returns false. Messages are built only on failure.
class Reader {
 public:
  Reader(std::string_view in, const char* object)
      : begin_(in.data()), p_(in.data()), end_(in.data() + in.size()), object_(object) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  size_t consumed() const { return static_cast<size_t>(p_ - begin_); }
  const absl::Status& status() const { return status_; }

  // Names the item being read in error messages; `kind` must be a literal.
  void SetItem(const char* kind, size_t i) {
    item_kind_ = kind;
    item_ = i;
  }
  void ClearItem() { item_kind_ = nullptr; }

  // Records "<object>: <problem>[ in <item> <i>][ <field>]"; returns false.
  bool Fail(absl::string_view problem, const char* field = nullptr) {
    std::string msg = absl::StrCat(object_, ": ", problem);
    if (item_kind_ != nullptr || field != nullptr) absl::StrAppend(&msg, " in");
    if (item_kind_ != nullptr) absl::StrAppend(&msg, " ", item_kind_, " ", item_);
    if (field != nullptr) absl::StrAppend(&msg, " ", field);
    status_ = absl::InvalidArgumentError(msg);
    return false;
  }

  bool Byte(uint8_t* out, const char* field) {
    if (p_ == end_) return Fail("truncated", field);
    *out = static_cast<uint8_t>(*p_++);
    return true;
  }

  bool Varint(uint64_t* out, const char* field) {
    uint64_t v = 0;
    for (size_t i = 0; i < kMaxVarintBytes; ++i) {
      if (p_ == end_) return Fail("truncated", field);
      const auto b = static_cast<uint8_t>(*p_++);
      // The tenth byte holds bit 63 only and must end the varint.
      if (i == kMaxVarintBytes - 1 && b > 1) return Fail("varint overflow", field);
      v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) {
        if (b == 0 && i > 0) return Fail("overlong varint", field);
        *out = v;
        return true;
      }
    }
    return Fail("varint overflow", field);  // unreachable: the tenth byte returns
  }

  template <typename T>
  bool Id(T* out, const char* field) {
    uint64_t v = 0;
    if (!Varint(&v, field)) return false;
    *out = T(v);
    return true;
  }

  bool Bool(bool* out, const char* field) {
    uint8_t b = 0;
    if (!Byte(&b, field)) return false;
    if (b > 1) return Fail(absl::StrCat("invalid bool ", b), field);
    *out = b == 1;
    return true;
  }

  bool Bytes(std::string* out, const char* field) {
    uint64_t n = 0;
    if (!Varint(&n, field)) return false;
    if (n > remaining()) {
      return Fail(absl::StrCat("truncated (length ", n, ", ", remaining(), " bytes left)"), field);
    }
    out->assign(p_, n);
    p_ += n;
    return true;
  }

  // Reads a count of items each at least `min_item_bytes` long, rejecting a
  // count the remaining input cannot hold, so the caller may allocate for it.
  bool Count(uint64_t* out, size_t min_item_bytes, const char* field) {
    if (!Varint(out, field)) return false;
    if (*out > remaining() / min_item_bytes) {
      return Fail(absl::StrCat("truncated (count ", *out, ", ", remaining(), " bytes left)"),
                  field);
    }
    return true;
  }

  bool ExpectEnd() {
    if (p_ == end_) return true;
    ClearItem();
    return Fail(absl::StrCat(remaining(), " trailing bytes"));
  }

  bool ExpectVersion() {
    uint8_t version = 0;
    if (!Byte(&version, "version")) return false;
    if (version != kCodecVersion) return Fail(absl::StrCat("unknown format version ", version));
    return true;
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
  const char* object_;
  const char* item_kind_ = nullptr;
  size_t item_ = 0;
  absl::Status status_;
};

bool ReadEntry(Reader& r, const EntryPrev& prev, Entry* e) {
  uint8_t h = 0;
  if (!r.Byte(&h, "header")) return false;
  if (h & kEntryReserved) return r.Fail("reserved header bits set", "header");
  const uint8_t type = h & kEntryTypeMask;
  if (type > kMaxEntryType) return r.Fail(absl::StrCat("unknown entry type ", type), "header");
  e->type = static_cast<EntryType>(type);
  if (h & kEntryNextIndex) {
    e->index = prev.index + 1;
  } else {
    if (!r.Id(&e->index, "index")) return false;
    if (e->index == prev.index + 1) return r.Fail("implicit value encoded", "index");
  }
  if (h & kEntrySameTerm) {
    e->term = prev.term;
  } else {
    if (!r.Id(&e->term, "term")) return false;
    if (e->term == prev.term) return r.Fail("implicit value encoded", "term");
  }
  if (h & kEntryTime) {
    uint64_t t = 0;
    if (!r.Varint(&t, "time")) return false;
    if (t == 0) return r.Fail("implicit value encoded", "time");
    if (t > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return r.Fail("time out of range", "time");
    }
    e->time_us = static_cast<int64_t>(t);
  } else {
    e->time_us = 0;
  }
  return r.Bytes(&e->data, "data");
}

bool ReadNodeList(Reader& r, const char* field, std::vector<NodeId>* ids) {
  uint64_t n = 0;
  if (!r.Count(&n, 1, field)) return false;
  ids->resize(n);
  for (NodeId& id : *ids) {
    if (!r.Id(&id, field)) return false;
  }
  return true;
}

bool ReadConfState(Reader& r, ConfState* cs) {
  return ReadNodeList(r, "conf voters", &cs->voters) &&
         ReadNodeList(r, "conf voters_outgoing", &cs->voters_outgoing) &&
         ReadNodeList(r, "conf learners", &cs->learners) &&
         ReadNodeList(r, "conf learners_next", &cs->learners_next) &&
         r.Bool(&cs->auto_leave, "conf auto_leave");
}

bool ReadSnapshotMeta(Reader& r, SnapshotMeta* meta) {
  return r.Id(&meta->index, "snapshot index") && r.Id(&meta->term, "snapshot term") &&
         ReadConfState(r, &meta->conf);
}

bool ReadConfChange(Reader& r, ConfChange* cc) {
  uint8_t transition = 0;
  if (!r.Byte(&transition, "transition")) return false;
  if (transition > kMaxConfTransition) {
    return r.Fail(absl::StrCat("unknown conf transition ", transition));
  }
  cc->transition = static_cast<ConfTransition>(transition);
  uint64_t n = 0;
  if (!r.Count(&n, kMinConfChangeSingleBytes, "change count")) return false;
  cc->changes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    r.SetItem("change", i);
    ConfChangeSingle& c = cc->changes[i];
    uint8_t type = 0;
    if (!r.Byte(&type, "type")) return false;
    if (type > kMaxConfChangeType) {
      return r.Fail(absl::StrCat("unknown conf change type ", type), "type");
    }
    c.type = static_cast<ConfChangeType>(type);
    if (!r.Id(&c.node, "node")) return false;
  }
  r.ClearItem();
  return true;
}

bool ReadHardState(Reader& r, HardState* hs) {
  return r.Id(&hs->term, "term") && r.Id(&hs->vote, "vote") && r.Id(&hs->commit, "commit");
}

// Reads an optional varint field: absent means the default (zero); present
// must not be zero (canonical form).
template <typename T>
bool ReadField(Reader& r, uint64_t mask, uint64_t bit, const char* field, T* out) {
  if (!(mask & bit)) return true;
  uint64_t v = 0;
  if (!r.Varint(&v, field)) return false;
  if (v == 0) return r.Fail("default value encoded", field);
  *out = T(v);
  return true;
}

bool ReadEntries(Reader& r, Message* m) {
  uint64_t n = 0;
  if (!r.Varint(&n, "entry count")) return false;
  if (n == 0) return r.Fail("default value encoded", "entry count");
  if (n > limits::kMaxEntriesPerMessage) {
    return r.Fail(absl::StrCat(n, " entries exceed the limit of ", limits::kMaxEntriesPerMessage));
  }
  if (n > r.remaining() / kMinEntryBytes) {
    return r.Fail(absl::StrCat("truncated (count ", n, ", ", r.remaining(), " bytes left)"),
                  "entry count");
  }
  m->entries.resize(n);
  EntryPrev prev{m->log_term, m->index};
  for (size_t i = 0; i < n; ++i) {
    r.SetItem("entry", i);
    Entry& e = m->entries[i];
    if (!ReadEntry(r, prev, &e)) return false;
    prev = {e.term, e.index};
  }
  r.ClearItem();
  return true;
}

bool ReadMessage(Reader& r, Message* m) {
  if (!r.ExpectVersion()) return false;
  uint8_t type = 0;
  if (!r.Byte(&type, "type")) return false;
  if (type >= kMessageTypeCount) return r.Fail(absl::StrCat("unknown message type ", type));
  m->type = static_cast<MessageType>(type);
  uint64_t mask = 0;
  if (!r.Varint(&mask, "field mask")) return false;
  if (mask & ~kFieldAll) {
    return r.Fail(absl::StrCat("unknown fields 0x", absl::Hex(mask & ~kFieldAll)), "field mask");
  }
  if (!ReadField(r, mask, kFieldFrom, "from", &m->from) ||
      !ReadField(r, mask, kFieldTo, "to", &m->to) ||
      !ReadField(r, mask, kFieldTerm, "term", &m->term) ||
      !ReadField(r, mask, kFieldCommit, "commit", &m->commit) ||
      !ReadField(r, mask, kFieldContext, "context", &m->context) ||
      !ReadField(r, mask, kFieldLogTerm, "log_term", &m->log_term) ||
      !ReadField(r, mask, kFieldIndex, "index", &m->index)) {
    return false;
  }
  m->reject = (mask & kFieldReject) != 0;
  if (!ReadField(r, mask, kFieldRejectHint, "reject_hint", &m->reject_hint)) return false;
  if ((mask & kFieldEntries) && !ReadEntries(r, m)) return false;
  if (mask & kFieldSnapshotMeta) {
    if (!ReadSnapshotMeta(r, &m->snapshot_meta)) return false;
    if (m->snapshot_meta == SnapshotMeta{}) {
      return r.Fail("default value encoded", "snapshot meta");
    }
  }
  if (!ReadField(r, mask, kFieldSnapshotOffset, "snapshot_offset", &m->snapshot_offset) ||
      !ReadField(r, mask, kFieldSnapshotSize, "snapshot_size", &m->snapshot_size)) {
    return false;
  }
  if (mask & kFieldData) {
    if (!r.Bytes(&m->data, "data")) return false;
    if (m->data.empty()) return r.Fail("default value encoded", "data");
  }
  return r.ExpectEnd();
}

// Decodes a standalone value: version byte, the value, nothing after.
template <typename T, typename ReadFn>
absl::StatusOr<T> DecodeStandalone(std::string_view data, const char* object, ReadFn read) {
  Reader r(data, object);
  T value;
  if (!r.ExpectVersion() || !read(r, &value) || !r.ExpectEnd()) return r.status();
  return value;
}

}  // namespace

size_t EncodedMessageSize(const Message& m) {
  return MessageSize(m, FieldMask(m));
}

std::string EncodeMessage(const Message& m) {
  const auto type = static_cast<uint8_t>(m.type);
  BW_ASSERT_LT(type, kMessageTypeCount);
  BW_ASSERT_LE(m.entries.size(), limits::kMaxEntriesPerMessage);
  const uint64_t mask = FieldMask(m);
  const size_t size = MessageSize(m, mask);
  BW_ASSERT_LE(size, limits::kMaxMessageBytes);
  return EncodeExact(size, [&](Writer& w) {
    w.Byte(kCodecVersion);
    w.Byte(type);
    w.Varint(mask);
    if (mask & kFieldFrom) w.Varint(m.from.value());
    if (mask & kFieldTo) w.Varint(m.to.value());
    if (mask & kFieldTerm) w.Varint(m.term.value());
    if (mask & kFieldCommit) w.Varint(m.commit.value());
    if (mask & kFieldContext) w.Varint(m.context);
    if (mask & kFieldLogTerm) w.Varint(m.log_term.value());
    if (mask & kFieldIndex) w.Varint(m.index.value());
    if (mask & kFieldRejectHint) w.Varint(m.reject_hint.value());
    if (mask & kFieldEntries) {
      w.Varint(m.entries.size());
      EntryPrev prev{m.log_term, m.index};
      for (const Entry& e : m.entries) {
        WriteEntry(w, e, prev);
        prev = {e.term, e.index};
      }
    }
    if (mask & kFieldSnapshotMeta) WriteSnapshotMeta(w, m.snapshot_meta);
    if (mask & kFieldSnapshotOffset) w.Varint(m.snapshot_offset);
    if (mask & kFieldSnapshotSize) w.Varint(m.snapshot_size);
    if (mask & kFieldData) w.Bytes(m.data);
  });
}

absl::StatusOr<Message> DecodeMessage(std::string_view data) {
  if (data.size() > limits::kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft message: ", data.size(), " bytes exceed the limit of ", limits::kMaxMessageBytes));
  }
  Reader r(data, "raft message");
  Message m;
  if (!ReadMessage(r, &m)) return r.status();
  return m;
}

void AppendEntry(std::string* out, const Entry& e) {
  const EntryPrev prev{};
  const size_t old_size = out->size();
  const size_t size = EntrySize(e, prev);
  out->resize(old_size + size);
  Writer w(out->data() + old_size);
  WriteEntry(w, e, prev);
  BW_ASSERT_EQ(static_cast<size_t>(w.pos() - out->data()), old_size + size);
}

absl::StatusOr<Entry> DecodeEntry(std::string_view* in) {
  Reader r(*in, "raft entry");
  Entry e;
  if (!ReadEntry(r, EntryPrev{}, &e)) return r.status();
  in->remove_prefix(r.consumed());
  return e;
}

std::string EncodeHardState(const HardState& hs) {
  const size_t size =
      1 + VarintSize(hs.term.value()) + VarintSize(hs.vote.value()) + VarintSize(hs.commit.value());
  return EncodeExact(size, [&](Writer& w) {
    w.Byte(kCodecVersion);
    w.Varint(hs.term.value());
    w.Varint(hs.vote.value());
    w.Varint(hs.commit.value());
  });
}

absl::StatusOr<HardState> DecodeHardState(std::string_view data) {
  return DecodeStandalone<HardState>(data, "hard state", ReadHardState);
}

std::string EncodeConfChange(const ConfChange& cc) {
  const auto transition = static_cast<uint8_t>(cc.transition);
  BW_ASSERT_LE(transition, kMaxConfTransition);
  size_t size = 2 + VarintSize(cc.changes.size());
  for (const ConfChangeSingle& c : cc.changes) {
    BW_ASSERT_LE(static_cast<uint8_t>(c.type), kMaxConfChangeType);
    size += 1 + VarintSize(c.node.value());
  }
  return EncodeExact(size, [&](Writer& w) {
    w.Byte(kCodecVersion);
    w.Byte(transition);
    w.Varint(cc.changes.size());
    for (const ConfChangeSingle& c : cc.changes) {
      w.Byte(static_cast<uint8_t>(c.type));
      w.Varint(c.node.value());
    }
  });
}

absl::StatusOr<ConfChange> DecodeConfChange(std::string_view data) {
  return DecodeStandalone<ConfChange>(data, "conf change", ReadConfChange);
}

std::string EncodeConfState(const ConfState& cs) {
  return EncodeExact(1 + ConfStateSize(cs), [&](Writer& w) {
    w.Byte(kCodecVersion);
    WriteConfState(w, cs);
  });
}

absl::StatusOr<ConfState> DecodeConfState(std::string_view data) {
  return DecodeStandalone<ConfState>(data, "conf state", ReadConfState);
}

std::string EncodeSnapshotMeta(const SnapshotMeta& meta) {
  return EncodeExact(1 + SnapshotMetaSize(meta), [&](Writer& w) {
    w.Byte(kCodecVersion);
    WriteSnapshotMeta(w, meta);
  });
}

absl::StatusOr<SnapshotMeta> DecodeSnapshotMeta(std::string_view data) {
  return DecodeStandalone<SnapshotMeta>(data, "snapshot meta", ReadSnapshotMeta);
}

}  // namespace bw::raft
