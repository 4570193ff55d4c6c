#include "transport/frame.h"

#include "absl/strings/str_format.h"
#include "core/bytes.h"
#include "core/crc32c.h"

namespace bw::transport {

void AppendFrame(std::string* out, std::string_view payload) {
  core::ByteWriter w(out);
  w.Fixed32(kFrameMagic);
  w.Fixed32(static_cast<uint32_t>(payload.size()));
  w.Fixed32(core::Crc32c(payload));
  out->append(payload);
}

std::string EncodeHandshake(const Handshake& h) {
  std::string out;
  core::ByteWriter w(&out);
  w.Fixed32(h.version);
  w.Varint(h.cluster_id);
  w.Varint(h.from.value());
  w.Varint(h.to.value());
  return out;
}

absl::StatusOr<Handshake> DecodeHandshake(std::string_view payload) {
  core::ByteReader r(payload);
  Handshake h;
  h.version = r.Fixed32();
  h.cluster_id = r.Varint();
  h.from = NodeId(r.Varint());
  h.to = NodeId(r.Varint());
  if (!r.ok() || !r.done()) return absl::InvalidArgumentError("handshake: malformed");
  if (h.version != kHandshakeVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "handshake: version %d, this build speaks %d", h.version, kHandshakeVersion));
  }
  return h;
}

absl::Status FrameReader::Feed(std::string_view bytes, std::vector<std::string>* out) {
  buf_.append(bytes);
  for (;;) {
    std::string_view rest = std::string_view(buf_).substr(pos_);
    if (rest.size() < kFrameHeaderBytes) break;
    core::ByteReader r(rest);
    const uint32_t magic = r.Fixed32();
    const uint32_t len = r.Fixed32();
    const uint32_t crc = r.Fixed32();
    if (magic != kFrameMagic) {
      return absl::DataLossError(
          absl::StrFormat("frame: bad magic %08x (expected %08x)", magic, kFrameMagic));
    }
    if (len > max_payload_) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("frame: %d bytes, more than the limit of %d", len, max_payload_));
    }
    if (rest.size() < kFrameHeaderBytes + len) break;
    std::string_view payload = rest.substr(kFrameHeaderBytes, len);
    const uint32_t want = core::Crc32c(payload);
    if (want != crc) {
      return absl::DataLossError(
          absl::StrFormat("frame: checksum mismatch (stored %08x, computed %08x)", crc, want));
    }
    out->emplace_back(payload);
    pos_ += kFrameHeaderBytes + len;
  }
  // Drop what was consumed once it is most of the buffer.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return absl::OkStatus();
}

}  // namespace bw::transport
