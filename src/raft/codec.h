// The binary wire and storage format of the Raft value types (format
// version 1). Encoding is deterministic and canonical: every value has exactly
// one encoding, and the decoders accept only that encoding, so for any bytes
// `b` that decode, re-encoding the result gives `b` back.
//
// Format, all integers unsigned little-endian base-128 varints (LEB128, at
// most 10 bytes, no redundant trailing zero groups), byte strings a varint
// length then the bytes:
//
//   message     = version:u8(=1) type:u8 fields:varint [field]...
//     `fields` is a presence bitmask; a field is written, in bit order, only
//     when its value differs from the default (a heartbeat is ~12 bytes).
//     bit 0 from, 1 to, 2 term, 3 commit, 4 context, 5 log_term, 6 index,
//     7 reject (no payload), 8 reject_hint, 9 entries (count:varint entry...),
//     10 snapshot_meta, 11 snapshot_offset, 12 snapshot_size, 13 data.
//   entry       = header:u8 [index:varint] [term:varint] [time:varint] data:bytes
//     header bits 0-3 EntryType, bit 4 "index is previous index + 1",
//     bit 5 "term equals the previous term" (the field is then omitted),
//     bit 6 "stamped": the leader's cluster time follows (Entry::time_us,
//     never 0 when present; entries written before stamping have the bit
//     clear and decode with time 0), bit 7 zero. In a message the "previous" of the first entry is
//     the message's (index, log_term); standalone (AppendEntry) it is (0, 0).
//   hard_state  = version:u8 term:varint vote:varint commit:varint
//   conf_state  = version:u8 voters voters_outgoing learners learners_next auto_leave:u8
//     each list count:varint then ids:varint
//   conf_change = version:u8 transition:u8 count:varint (type:u8 node:varint)...
//   snapshot_meta = version:u8 index:varint term:varint conf_state-without-version
//   (Inside a message the snapshot meta has no version byte of its own.)
//
// Decoders are defensive (their input comes from the network or disk): any
// malformed input returns INVALID_ARGUMENT with a message naming what is
// wrong and where ("raft message: truncated in entry 3 data"); they never
// crash, never read out of bounds, and allocate only in proportion to the
// input (every length and count is checked against the bytes left first).
// DecodeMessage enforces limits::kMaxMessageBytes and
// limits::kMaxEntriesPerMessage.
//
// All functions are stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "raft/types.h"

namespace bw::raft {

inline constexpr uint8_t kCodecVersion = 1;

// The exact size EncodeMessage(m) returns. Lets a caller check the limits
// below before encoding.
size_t EncodedMessageSize(const Message& m);

// Precondition (asserted): m.entries.size() <= limits::kMaxEntriesPerMessage
// and EncodedMessageSize(m) <= limits::kMaxMessageBytes, and every enum field
// holds a declared value.
std::string EncodeMessage(const Message& m);
[[nodiscard]] absl::StatusOr<Message> DecodeMessage(std::string_view data);

// Appends one self-contained entry record (no version byte: the container,
// e.g. a WAL record, carries the format version). Records may be
// concatenated and read back one at a time with DecodeEntry.
void AppendEntry(std::string* out, const Entry& e);
// Decodes the entry record at the front of `*in` and advances `*in` past it.
// On error `*in` is unchanged.
[[nodiscard]] absl::StatusOr<Entry> DecodeEntry(std::string_view* in);

// Standalone values: a version byte and the value; the decoders reject
// trailing bytes.
std::string EncodeHardState(const HardState& hs);
[[nodiscard]] absl::StatusOr<HardState> DecodeHardState(std::string_view data);

// The payload of an EntryType::kConfChange entry.
std::string EncodeConfChange(const ConfChange& cc);
[[nodiscard]] absl::StatusOr<ConfChange> DecodeConfChange(std::string_view data);

std::string EncodeConfState(const ConfState& cs);
[[nodiscard]] absl::StatusOr<ConfState> DecodeConfState(std::string_view data);

std::string EncodeSnapshotMeta(const SnapshotMeta& meta);
[[nodiscard]] absl::StatusOr<SnapshotMeta> DecodeSnapshotMeta(std::string_view data);

}  // namespace bw::raft
