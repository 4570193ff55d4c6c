// Passwords and simple tokens for the Auth service.
//
// A password is stored only as a salted PBKDF2-HMAC-SHA256 hash, in the
// form "pbkdf2-sha256$<iterations>$<salt, hex>$<hash, hex>"; the member that
// takes the password hashes it before proposing, so the log, snapshots and
// other members never see it. Hashing is slow on purpose (~tens of ms):
// callers run it off the member's event loop.
//
// Thread-safety: every function is safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace bw::server {

// The iterations of a new hash (stored in it, so it can change later).
inline constexpr int kPasswordIterations = 100'000;

std::string HashPassword(std::string_view password, int iterations = kPasswordIterations);
// Whether `password` matches a stored hash (constant time in the hash); a
// stored value that is not a hash of this form never matches.
bool CheckPassword(std::string_view password, std::string_view stored);
// A bearer token: 32 random letters and digits from the system's
// cryptographic generator, a dot, then `suffix` (etcd's simple tokens read
// "<random>.<index>").
std::string NewSimpleToken(uint64_t suffix);

}  // namespace bw::server
