#include "check/auth_revocation.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace bw::check {

uint64_t AuthRevocationChecker::OnChangeInvoked(const std::string& user, bool grant,
                                                int64_t invoked_us) {
  const uint64_t id = next_id_++;
  changes_[id] = Change{user, grant, invoked_us, -1, false};
  return id;
}

void AuthRevocationChecker::OnChangeAnswered(uint64_t id, bool ok, int64_t answered_us) {
  auto it = changes_.find(id);
  if (it == changes_.end() || it->second.answered_us >= 0 || it->second.refused) return;
  if (!ok) {
    it->second.refused = true;
    return;
  }
  it->second.answered_us = answered_us;
  if (!it->second.grant) ++revocations_;
}

void AuthRevocationChecker::OnHonoured(const std::string& user, const std::string& what,
                                       int64_t invoked_us, int64_t done_us) {
  if (!violation_.empty()) return;
  // The latest revocation acknowledged before the operation began: a grant
  // that can follow it in the log's order can follow every earlier one too.
  const Change* revoke = nullptr;
  for (const auto& [id, c] : changes_) {
    if (c.user != user || c.grant || c.refused || c.answered_us < 0) continue;
    if (c.answered_us >= invoked_us) continue;
    if (revoke == nullptr || c.invoked_us > revoke->invoked_us) revoke = &c;
  }
  if (revoke == nullptr) return;
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  for (const auto& [id, g] : changes_) {
    if (g.user != user || !g.grant || g.refused) continue;
    const int64_t latest_effect = g.answered_us < 0 ? kNever : g.answered_us;
    if (g.invoked_us < done_us && latest_effect > revoke->invoked_us) return;
  }
  violation_ = absl::StrCat("auth: ", what, " by user ", user, " (invoked at ", invoked_us,
                            " us, answered at ", done_us,
                            " us) was honoured although a revocation of its permission was "
                            "acknowledged at ",
                            revoke->answered_us, " us and not granted again since");
}

}  // namespace bw::check
