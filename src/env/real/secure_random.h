// Bytes from the operating system's cryptographic generator, for secrets
// (password salts, bearer tokens). Not env::Random: that one is a fast,
// seedable generator so simulations replay; secrets must never replay.
#pragma once

#include <cstddef>
#include <string>

namespace bw::env {

std::string SecureRandomBytes(size_t n);

}  // namespace bw::env
