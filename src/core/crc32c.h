// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum used
// for every byte bulwark writes to disk or the network.
//
// Thread-safe, stateless. Uses the SSE4.2 CRC32 instruction when the CPU has
// it (checked once at runtime) and a slicing-by-8 table otherwise; both give
// identical results.
#pragma once

#include <cstdint>
#include <string_view>

namespace bw::core {

// The CRC-32C of `data`, continuing from `init` (the CRC of the bytes that
// precede `data`; 0 for none). Extendable:
//   Crc32c(b, Crc32c(a)) == Crc32c(a + b).
// Check value: Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(std::string_view data, uint32_t init = 0);

namespace internal {
// The two implementations behind Crc32c, exposed for tests. Same contract.
uint32_t Crc32cSoftware(std::string_view data, uint32_t init);
// Precondition: Crc32cHardwareAvailable().
uint32_t Crc32cHardware(std::string_view data, uint32_t init);
bool Crc32cHardwareAvailable();
}  // namespace internal

}  // namespace bw::core
