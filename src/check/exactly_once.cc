#include "check/exactly_once.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bw::check {

absl::Status CheckExactlyOnce(const std::vector<KeyedRequest>& requests,
                              const AppliedValues& applied) {
  const std::vector<int64_t> none;
  for (const KeyedRequest& k : requests) {
    auto it = applied.find(k.value);
    const std::vector<int64_t>& revs = it == applied.end() ? none : it->second;
    if (k.reuse) {
      if (!revs.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("exactly-once: key ", k.key, " reused for a different request (", k.value,
                         ") was applied at revision ", revs[0]));
      }
      continue;
    }
    if (revs.size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("exactly-once: request ", k.key, " was applied ", revs.size(),
                       " times (revisions ", absl::StrJoin(revs, ", "), ")"));
    }
    if ((k.answered || !k.answers.empty()) && revs.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("lost write: keyed request ", k.key, " was answered but never applied"));
    }
    for (const auto& [response, revision] : k.answers) {
      if (revision != revs[0] || response != k.answers.front().first) {
        return absl::FailedPreconditionError(
            absl::StrCat("exactly-once: request ", k.key, " applied at revision ", revs[0],
                         " was answered with revision ", revision,
                         response == k.answers.front().first ? "" : " and a different response"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace bw::check
