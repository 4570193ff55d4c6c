// Little helpers for building and parsing binary records: LEB128 varints and
// length-prefixed strings. ByteReader never reads past its input; every
// failure leaves it in an error state that the caller checks once at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bw::core {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_->append(s);
  }
  void Fixed32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

  uint8_t U8() {
    if (!ok_ || in_.empty()) return Fail<uint8_t>();
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!ok_ || in_.empty()) return Fail<uint64_t>();
      uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail<uint64_t>();
  }
  std::string_view Bytes() {
    uint64_t n = Varint();
    if (!ok_ || n > in_.size()) return Fail<std::string_view>();
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  uint32_t Fixed32() {
    if (!ok_ || in_.size() < 4) return Fail<uint32_t>();
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    return v;
  }

 private:
  template <typename T>
  T Fail() {
    ok_ = false;
    return T{};
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace bw::core
