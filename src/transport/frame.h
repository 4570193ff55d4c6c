// Framing of peer messages on a byte stream (TCP), pure and testable.
//
//   magic:u32 ("BWPF")  length:u32  crc:u32 (CRC-32C of the payload)  payload[length]
//
// A connection opens with one handshake frame from the dialling side:
// version, cluster id, the sender's node id and the node id it meant to
// reach; the accepting side checks them before any message is delivered.
//
// Thread-safety: none; a FrameReader belongs to one connection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace bw::transport {

inline constexpr uint32_t kFrameMagic = 0x46505742;  // "BWPF" little-endian
inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr uint32_t kHandshakeVersion = 1;

// Appends one frame holding `payload` to `out`.
void AppendFrame(std::string* out, std::string_view payload);

struct Handshake {
  uint32_t version = kHandshakeVersion;
  uint64_t cluster_id = 0;
  NodeId from;
  NodeId to;
};
std::string EncodeHandshake(const Handshake& h);
[[nodiscard]] absl::StatusOr<Handshake> DecodeHandshake(std::string_view payload);

// Cuts a byte stream into frames. Feed what arrives; take the payloads that
// are complete. Any damage (bad magic, a checksum that fails, a frame longer
// than the limit) is an error that ends the connection: a stream that lost
// its framing cannot be resynchronized safely.
class FrameReader {
 public:
  explicit FrameReader(size_t max_payload_bytes) : max_payload_(max_payload_bytes) {}
  // Appends `bytes`, then moves every complete payload into `out`.
  [[nodiscard]] absl::Status Feed(std::string_view bytes, std::vector<std::string>* out);
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  const size_t max_payload_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace bw::transport
