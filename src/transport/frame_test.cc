// Proves the peer framing: frames cut at every byte boundary reassemble to
// the same payloads; damage (bad magic, any flipped payload bit, a length
// past the limit) is an error, never a wrong payload; handshakes round-trip
// and a wrong version is refused.
#include "transport/frame.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bw::transport {
namespace {

TEST(FrameTest, FramesSplitAtEveryByteReassemble) {
  std::string stream;
  std::vector<std::string> want = {"", "a", std::string(1000, 'x'), "hello"};
  for (const std::string& p : want)
    AppendFrame(&stream, p);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameReader r(1 << 20);
    std::vector<std::string> got;
    ASSERT_TRUE(r.Feed(stream.substr(0, cut), &got).ok());
    ASSERT_TRUE(r.Feed(stream.substr(cut), &got).ok());
    EXPECT_EQ(got, want) << "cut at " << cut;
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(FrameTest, DamageIsAnErrorNeverAWrongPayload) {
  std::string frame;
  AppendFrame(&frame, "payload bytes");
  for (size_t bit = 0; bit < 8 * frame.size(); ++bit) {
    std::string bad = frame;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    FrameReader r(1 << 20);
    std::vector<std::string> got;
    absl::Status s = r.Feed(bad, &got);
    // A flipped length may leave the frame incomplete (waiting for more);
    // it must never yield a payload.
    EXPECT_TRUE(got.empty()) << "bit " << bit;
    if (bit >= 8 * kFrameHeaderBytes) {
      EXPECT_TRUE(absl::IsDataLoss(s)) << "bit " << bit << s;
    }
  }
}

TEST(FrameTest, OversizeFramesAreRefusedBeforeTheyArrive) {
  std::string frame;
  AppendFrame(&frame, std::string(100, 'x'));
  FrameReader r(99);
  std::vector<std::string> got;
  absl::Status s = r.Feed(frame.substr(0, kFrameHeaderBytes), &got);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("limit of 99"), std::string::npos);
}

TEST(FrameTest, HandshakeRoundTripsAndAWrongVersionIsRefused) {
  Handshake h;
  h.cluster_id = 0xC1;
  h.from = NodeId(2);
  h.to = NodeId(3);
  absl::StatusOr<Handshake> back = DecodeHandshake(EncodeHandshake(h));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->cluster_id, 0xC1u);
  EXPECT_EQ(back->from, NodeId(2));
  EXPECT_EQ(back->to, NodeId(3));
  h.version = 2;
  EXPECT_TRUE(absl::IsFailedPrecondition(DecodeHandshake(EncodeHandshake(h)).status()));
  EXPECT_FALSE(DecodeHandshake("x").ok());
}

}  // namespace
}  // namespace bw::transport
