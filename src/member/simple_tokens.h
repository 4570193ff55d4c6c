// The simple tokens a member accepts: token -> user, each valid until it has
// gone unused for the TTL (etcd's --auth-token-ttl). Every member learns
// every token from the log (the Authenticate entry), so a client may take
// its token to any member; tokens live in memory only, and a restarted
// member sends its clients back to Authenticate (etcd's tokens do the same).
//
// Thread-safety: none; used on the member's event loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"

namespace bw::member {

class SimpleTokens {
 public:
  explicit SimpleTokens(int64_t ttl_us) : ttl_us_(ttl_us) {}

  void Issue(const std::string& token, const std::string& user, int64_t now_us) {
    tokens_[token] = Entry{user, now_us + ttl_us_};
    if (tokens_.size() > next_sweep_) Sweep(now_us);
  }
  // The token's user, and its life extended; nullopt when unknown or expired.
  std::optional<std::string> Use(const std::string& token, int64_t now_us) {
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    if (it->second.expires_us <= now_us) {
      tokens_.erase(it);
      return std::nullopt;
    }
    it->second.expires_us = now_us + ttl_us_;
    return it->second.user;
  }
  // A user deleted or with a new password: its tokens end.
  void DropUser(const std::string& user) {
    absl::erase_if(tokens_, [&](const auto& kv) { return kv.second.user == user; });
  }
  void Clear() { tokens_.clear(); }
  size_t size() const { return tokens_.size(); }

 private:
  struct Entry {
    std::string user;
    int64_t expires_us;
  };
  // Expired tokens go whenever the table has doubled since the last sweep,
  // so clients that authenticate and vanish cannot grow it without bound.
  void Sweep(int64_t now_us) {
    absl::erase_if(tokens_, [&](const auto& kv) { return kv.second.expires_us <= now_us; });
    next_sweep_ = std::max<size_t>(1024, 2 * tokens_.size());
  }

  int64_t ttl_us_;
  size_t next_sweep_ = 1024;
  absl::flat_hash_map<std::string, Entry> tokens_;
};

}  // namespace bw::member
