#include "env/real/secure_random.h"

#include <openssl/rand.h>

#include "core/assert.h"

namespace bw::env {

std::string SecureRandomBytes(size_t n) {
  std::string b(n, '\0');
  BW_ASSERT_MSG(RAND_bytes(reinterpret_cast<unsigned char*>(b.data()), static_cast<int>(n)) == 1,
                "the system's cryptographic random generator failed");
  return b;
}

}  // namespace bw::env
