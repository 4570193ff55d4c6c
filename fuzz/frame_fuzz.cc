// libFuzzer target: peer framing and the handshake (transport/frame.h), the
// first code that sees bytes from the network.
//
// The input is a byte stream as a peer could send it, preceded by a few
// bytes of choices: the payload limit and how the stream is cut into reads.
// Asserted:
//   - FrameReader gives the same payloads and the same verdict however the
//     stream is cut (whole, or in reads of fuzz-chosen sizes);
//   - every payload it gives, framed again with AppendFrame, is exactly the
//     bytes it consumed, in order, and no payload exceeds the limit;
//   - an error is DATA_LOSS (bad magic or checksum) or RESOURCE_EXHAUSTED
//     (over the limit); without one, what is left is a partial frame;
//   - a payload that decodes as a handshake re-encodes to a handshake that
//     decodes to the same values; a rejected one is INVALID_ARGUMENT
//     (malformed) or FAILED_PRECONDITION (another version).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/assert.h"
#include "fuzz/fuzz_util.h"
#include "transport/frame.h"

namespace {

using bw::transport::AppendFrame;
using bw::transport::DecodeHandshake;
using bw::transport::EncodeHandshake;
using bw::transport::FrameReader;
using bw::transport::Handshake;

std::vector<std::string> Seeds() {
  std::vector<std::string> out;
  // Choices: limit selector, then cut sizes; then the stream.
  auto with_choices = [](std::string_view stream) {
    std::string s;
    s.push_back(static_cast<char>(0xff));  // the largest limit
    for (int i = 0; i < 8; ++i)
      s.push_back(static_cast<char>(3 + 5 * i));
    s.append(stream);
    return s;
  };
  Handshake h;
  h.cluster_id = 0x1234abcd;
  h.from = bw::NodeId(1);
  h.to = bw::NodeId(2);
  std::string stream;
  AppendFrame(&stream, EncodeHandshake(h));
  AppendFrame(&stream, "hello");
  AppendFrame(&stream, "");
  out.push_back(with_choices(stream));
  std::string one;
  AppendFrame(&one, std::string(300, 'x'));
  out.push_back(with_choices(one));
  Handshake v2 = h;
  v2.version = 2;
  std::string other;
  AppendFrame(&other, EncodeHandshake(v2));
  out.push_back(with_choices(other));
  return out;
}

struct Outcome {
  std::vector<std::string> payloads;
  absl::Status status;
};

// Feeds `stream` in pieces whose sizes come from `cuts` (0: the rest),
// stopping at the first error as a connection does.
Outcome Run(size_t limit, std::string_view stream, const std::vector<size_t>& cuts) {
  FrameReader reader(limit);
  Outcome o;
  size_t i = 0;
  while (!stream.empty()) {
    size_t n = cuts.empty() ? stream.size() : cuts[i++ % cuts.size()];
    if (n == 0 || n > stream.size()) n = stream.size();
    o.status = reader.Feed(stream.substr(0, n), &o.payloads);
    stream.remove_prefix(n);
    if (!o.status.ok()) break;
  }
  return o;
}

void CheckHandshake(std::string_view payload) {
  absl::StatusOr<Handshake> h = DecodeHandshake(payload);
  if (!h.ok()) {
    BW_ASSERT(absl::IsInvalidArgument(h.status()) || absl::IsFailedPrecondition(h.status()));
    return;
  }
  absl::StatusOr<Handshake> again = DecodeHandshake(EncodeHandshake(*h));
  BW_ASSERT(again.ok());
  BW_ASSERT_EQ(again->version, h->version);
  BW_ASSERT_EQ(again->cluster_id, h->cluster_id);
  BW_ASSERT(again->from == h->from);
  BW_ASSERT(again->to == h->to);
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bw::fuzz::Input in(data, size);
  // Limits from tiny to one larger than any input here.
  const size_t limit = size_t{in.Byte()} * 4;
  std::vector<size_t> cuts;
  for (int i = 0; i < 8; ++i)
    cuts.push_back(in.Byte() % 64);
  const std::string_view stream = in.Rest();

  const Outcome whole = Run(limit, stream, {});
  const Outcome cut = Run(limit, stream, cuts);
  BW_ASSERT(whole.payloads == cut.payloads);
  BW_ASSERT_EQ(whole.status.code(), cut.status.code());

  std::string reframed;
  for (const std::string& p : whole.payloads) {
    BW_ASSERT_LE(p.size(), limit);
    AppendFrame(&reframed, p);
    CheckHandshake(p);
  }
  BW_ASSERT(stream.substr(0, reframed.size()) == reframed);
  if (whole.status.ok()) {
    // What is left over is an incomplete frame: shorter than its header, or
    // a header that promised more than arrived.
    BW_ASSERT_LT(stream.size() - reframed.size(), bw::transport::kFrameHeaderBytes + limit + 1);
  } else {
    BW_ASSERT(absl::IsDataLoss(whole.status) || absl::IsResourceExhausted(whole.status));
  }
  CheckHandshake(stream);
  return 0;
}
