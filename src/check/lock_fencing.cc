#include "check/lock_fencing.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace bw::check {

namespace {

std::string Describe(const FencedWrite& w) {
  return absl::StrCat("client ", w.client, " (token ", w.token, ", revision ", w.revision,
                      ", invoked ", w.invoke_us, " us, answered ", w.complete_us, " us)");
}

}  // namespace

absl::Status CheckLockFencing(std::vector<FencedWrite> writes) {
  std::sort(writes.begin(), writes.end(),
            [](const FencedWrite& a, const FencedWrite& b) { return a.revision < b.revision; });
  std::map<int64_t, uint64_t> owner;  // token -> client
  for (size_t i = 0; i < writes.size(); ++i) {
    const FencedWrite& w = writes[i];
    auto [it, fresh] = owner.emplace(w.token, w.client);
    if (!fresh && it->second != w.client) {
      return absl::FailedPreconditionError(absl::StrCat(
          "lock: token ", w.token, " used by clients ", it->second, " and ", w.client));
    }
    if (i == 0) continue;
    const FencedWrite& prev = writes[i - 1];
    if (prev.revision == w.revision) {
      return absl::FailedPreconditionError(absl::StrCat(
          "lock: two writes applied at one revision: ", Describe(prev), " and ", Describe(w)));
    }
    if (w.token < prev.token) {
      return absl::FailedPreconditionError(absl::StrCat("lock: two holders at once: ", Describe(w),
                                                        " was applied after ", Describe(prev),
                                                        ", which held a newer lock"));
    }
  }
  // Real time: a write answered before another was sent must come first.
  // Sorted by revision, a write whose completion is earlier than the
  // latest invocation seen before it is out of order.
  int64_t latest_invoke = INT64_MIN;
  size_t latest = 0;
  for (size_t i = 0; i < writes.size(); ++i) {
    if (latest_invoke != INT64_MIN && writes[i].complete_us < latest_invoke) {
      return absl::FailedPreconditionError(
          absl::StrCat("lock: ", Describe(writes[i]), " was answered before ",
                       Describe(writes[latest]), " was sent, yet applied after it"));
    }
    if (writes[i].invoke_us > latest_invoke) {
      latest_invoke = writes[i].invoke_us;
      latest = i;
    }
  }
  return absl::OkStatus();
}

}  // namespace bw::check
