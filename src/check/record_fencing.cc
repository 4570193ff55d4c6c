#include "check/record_fencing.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bw::check {

void RecordFencingChecker::Fail(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

const RecordFencingChecker::Holder* RecordFencingChecker::NewerBy(const Key& k, uint64_t token,
                                                                  int64_t before_us) const {
  for (const Holder& h : k.holders) {
    if (h.token > token && h.started_answered_us < before_us) return &h;
  }
  return nullptr;
}

void RecordFencingChecker::OnApplied(uint64_t token, int64_t at_us) {
  applied_us_.emplace(token, at_us);  // the first replica's
}

void RecordFencingChecker::OnStarted(const std::string& key, uint64_t token, bool took_over,
                                     int64_t ttl_ms, int64_t sent_us, int64_t answered_us) {
  if (!tokens_.insert(token).second) {
    Fail(absl::StrCat("records: token ", token, " was given twice (", key, ")"));
    return;
  }
  Key& k = keys_[key];
  if (k.completed && k.completed_answered_us < sent_us) {
    Fail(absl::StrCat("records: ", key, " was completed (answered at ", k.completed_answered_us,
                      " us) but a Begin sent at ", sent_us, " us started it again (token ", token,
                      ")"));
    return;
  }
  for (const Holder& h : k.holders) {
    if (h.started_answered_us < sent_us && h.token >= token) {
      Fail(absl::StrCat("records: ", key, ": token ", token, " after token ", h.token,
                        " was already answered: fencing tokens went backwards"));
      return;
    }
  }
  if (took_over && !k.holders.empty()) {
    ++takeovers_;
    // The holder before it, as far as answers tell: the largest smaller token.
    const Holder* prev = nullptr;
    for (const Holder& h : k.holders) {
      if (h.token < token && (prev == nullptr || h.token > prev->token)) prev = &h;
    }
    auto applied = applied_us_.find(token);
    // A released lock may be taken at once: from when the Release was sent.
    const bool released = prev != nullptr && prev->released_sent_us >= 0 &&
                          applied != applied_us_.end() && applied->second >= prev->released_sent_us;
    if (prev != nullptr && applied != applied_us_.end() && !released) {
      const int64_t earliest =
          prev->last_renewal_sent_us +
          static_cast<int64_t>(static_cast<double>(prev->ttl_ms) * 1000.0 / max_rate_);
      if (applied->second < earliest) {
        Fail(absl::StrFormat(
            "records: %s taken over (token %d) at %.3f s, %.3f s before holder %d's %d ms lock "
            "could have run out (renewed by a request sent at %.3f s)",
            key, token, applied->second / 1e6, (earliest - applied->second) / 1e6, prev->token,
            prev->ttl_ms, prev->last_renewal_sent_us / 1e6));
        return;
      }
    }
  }
  Holder h;
  h.token = token;
  h.started_answered_us = answered_us;
  h.ttl_ms = ttl_ms;
  h.last_renewal_sent_us = sent_us;
  k.holders.push_back(h);
  std::sort(k.holders.begin(), k.holders.end(),
            [](const Holder& a, const Holder& b) { return a.token < b.token; });
}

void RecordFencingChecker::OnSawCompleted(const std::string& key, const std::string& response,
                                          int64_t sent_us) {
  Key& k = keys_[key];
  if (k.completed && k.completed_answered_us < sent_us && response != k.response) {
    Fail(absl::StrCat("records: ", key, " answered COMPLETED with '", response,
                      "' but it was completed with '", k.response, "'"));
  }
}

void RecordFencingChecker::OnCheckpointed(const std::string& key, uint64_t token, int64_t sent_us) {
  Key& k = keys_[key];
  if (const Holder* newer = NewerBy(k, token, sent_us)) {
    Fail(absl::StrCat("records: ", key, ": a Checkpoint with token ", token, " sent after token ",
                      newer->token, " had started was honoured"));
    return;
  }
  for (Holder& h : k.holders) {
    if (h.token == token) h.last_renewal_sent_us = std::max(h.last_renewal_sent_us, sent_us);
  }
}

void RecordFencingChecker::OnReleased(const std::string& key, uint64_t token, int64_t sent_us) {
  for (Holder& h : keys_[key].holders) {
    if (h.token == token) h.released_sent_us = sent_us;
  }
}

void RecordFencingChecker::OnCompleted(const std::string& key, uint64_t token,
                                       const std::string& response, int64_t sent_us,
                                       int64_t answered_us) {
  Key& k = keys_[key];
  if (const Holder* newer = NewerBy(k, token, sent_us)) {
    Fail(absl::StrCat("records: ", key, ": a Complete with token ", token, " sent after token ",
                      newer->token, " had started was honoured"));
    return;
  }
  if (k.completed) {
    Fail(absl::StrCat("records: ", key, " completed twice ('", k.response, "', then '", response,
                      "' with token ", token, ")"));
    return;
  }
  ++completions_;
  k.completed = true;
  k.response = response;
  k.completed_answered_us = answered_us;
}

}  // namespace bw::check
