// libFuzzer target for the Raft codec. Feeds arbitrary bytes to every
// decoder; whatever decodes must re-encode to the same bytes (the format is
// canonical) and decode again to an equal value. Crashes, sanitizer reports
// and failed assertions are findings.
//
// Build and run (from /work/main; one command):
// clang-format off
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address -DBW_FUZZ -I/work/main/src src/raft/codec_fuzz.cc src/raft/codec.cc src/core/crc32c.cc src/core/assert.cc -labsl_status -labsl_statusor -labsl_strings -labsl_str_format_internal -labsl_raw_logging_internal -o /tmp/codec_fuzz && /tmp/codec_fuzz -max_total_time=60
// clang-format on
//
// Compiled only with -DBW_FUZZ, so the library glob of src/**/*.cc builds it
// to nothing.
#ifdef BW_FUZZ

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/assert.h"
#include "raft/codec.h"

namespace bw::raft {
namespace {

// Message has no operator==.
bool MessagesEqual(const Message& a, const Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.entries == b.entries &&
         a.commit == b.commit && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.snapshot_meta == b.snapshot_meta && a.snapshot_offset == b.snapshot_offset &&
         a.snapshot_size == b.snapshot_size && a.data == b.data && a.context == b.context;
}

void FuzzMessage(std::string_view in) {
  absl::StatusOr<Message> m = DecodeMessage(in);
  if (!m.ok()) {
    BW_ASSERT(absl::IsInvalidArgument(m.status()));
    return;
  }
  const std::string again = EncodeMessage(*m);
  BW_ASSERT(again == in);
  absl::StatusOr<Message> m2 = DecodeMessage(again);
  BW_ASSERT(m2.ok());
  BW_ASSERT(MessagesEqual(*m, *m2));
}

template <typename T>
void FuzzValue(std::string_view in, absl::StatusOr<T> (*decode)(std::string_view),
               std::string (*encode)(const T&)) {
  absl::StatusOr<T> v = decode(in);
  if (!v.ok()) {
    BW_ASSERT(absl::IsInvalidArgument(v.status()));
    return;
  }
  const std::string again = encode(*v);
  BW_ASSERT(again == in);
  absl::StatusOr<T> v2 = decode(again);
  BW_ASSERT(v2.ok());
  BW_ASSERT(*v == *v2);
}

void FuzzEntries(std::string_view in) {
  const std::string_view whole = in;
  std::string again;
  while (!in.empty()) {
    absl::StatusOr<Entry> e = DecodeEntry(&in);
    if (!e.ok()) {
      BW_ASSERT(absl::IsInvalidArgument(e.status()));
      return;
    }
    AppendEntry(&again, *e);
  }
  BW_ASSERT(again == whole);
}

}  // namespace
}  // namespace bw::raft

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bw::raft;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  FuzzMessage(in);
  FuzzValue<HardState>(in, DecodeHardState, EncodeHardState);
  FuzzValue<ConfChange>(in, DecodeConfChange, EncodeConfChange);
  FuzzValue<ConfState>(in, DecodeConfState, EncodeConfState);
  FuzzValue<SnapshotMeta>(in, DecodeSnapshotMeta, EncodeSnapshotMeta);
  FuzzEntries(in);
  return 0;
}

#endif  // BW_FUZZ
