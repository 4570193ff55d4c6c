#include "core/crc32c.h"

#include <array>
#include <cstring>

#include "core/assert.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace bw::core {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78;

// kTable[0] is the classic byte-at-a-time table; kTable[k][b] is the CRC of
// byte b followed by k zero bytes, which lets the loop fold 8 bytes at once.
using SliceTable = std::array<std::array<uint32_t, 256>, 8>;

constexpr SliceTable MakeTable() {
  SliceTable t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int i = 0; i < 8; ++i)
      crc = (crc >> 1) ^ ((crc & 1) ? kPolyReflected : 0);
    t[0][b] = crc;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b)
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr SliceTable kTable = MakeTable();

uint64_t LoadLe64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Crc32cSoftware assumes little-endian");
  return v;
}

}  // namespace

namespace internal {

uint32_t Crc32cSoftware(std::string_view data, uint32_t init) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint32_t crc = ~init;
  while (n >= 8) {
    const uint64_t v = LoadLe64(p) ^ crc;
    crc = kTable[7][v & 0xFF] ^ kTable[6][(v >> 8) & 0xFF] ^ kTable[5][(v >> 16) & 0xFF] ^
          kTable[4][(v >> 24) & 0xFF] ^ kTable[3][(v >> 32) & 0xFF] ^ kTable[2][(v >> 40) & 0xFF] ^
          kTable[1][(v >> 48) & 0xFF] ^ kTable[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    crc = (crc >> 8) ^ kTable[0][(crc ^ *p) & 0xFF];
    ++p;
    --n;
  }
  return ~crc;
}

#if defined(__x86_64__)

__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(std::string_view data, uint32_t init) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint64_t crc = ~init;
  while (n >= 8) {
    crc = _mm_crc32_u64(crc, LoadLe64(p));
    p += 8;
    n -= 8;
  }
  auto crc32 = static_cast<uint32_t>(crc);
  while (n > 0) {
    crc32 = _mm_crc32_u8(crc32, *p);
    ++p;
    --n;
  }
  return ~crc32;
}

bool Crc32cHardwareAvailable() {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}

#else

uint32_t Crc32cHardware(std::string_view data, uint32_t init) {
  BW_ASSERT_MSG(false, "no hardware CRC-32C on this architecture");
}

bool Crc32cHardwareAvailable() {
  return false;
}

#endif

}  // namespace internal

uint32_t Crc32c(std::string_view data, uint32_t init) {
  static const bool hardware = internal::Crc32cHardwareAvailable();
  return hardware ? internal::Crc32cHardware(data, init) : internal::Crc32cSoftware(data, init);
}

}  // namespace bw::core
