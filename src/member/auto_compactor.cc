#include "member/auto_compactor.h"

#include <algorithm>

#include "core/assert.h"

namespace bw::member {

AutoCompactor::AutoCompactor(AutoCompaction options, int64_t now_us)
    : o_(options), next_look_us_(now_us), last_success_us_(now_us) {
  BW_ASSERT(o_.enabled());
  if (o_.mode == AutoCompaction::Mode::kPeriodic) {
    interval_us_ = std::min(o_.retention, kHourUs);
    retry_us_ = std::max<int64_t>(1, interval_us_ / 10);
    retentions_ = static_cast<size_t>(o_.retention / retry_us_) + 1;
    wait_us_ = o_.retention;
  }
}

std::optional<int64_t> AutoCompactor::Step(int64_t now_us, int64_t revision, bool leader) {
  if (now_us < next_look_us_) return std::nullopt;
  return o_.mode == AutoCompaction::Mode::kPeriodic ? StepPeriodic(now_us, revision, leader)
                                                    : StepRevision(now_us, revision, leader);
}

std::optional<int64_t> AutoCompactor::StepPeriodic(int64_t now_us, int64_t revision, bool leader) {
  next_look_us_ = now_us + retry_us_;
  revs_.push_back(revision);
  if (revs_.size() > retentions_) revs_.pop_front();  // revs_.front(): about T ago
  if (!leader || in_flight_ || now_us - last_success_us_ < wait_us_) return std::nullopt;
  wait_us_ = interval_us_;
  in_flight_ = true;
  asked_ = revs_.front();
  return asked_;
}

std::optional<int64_t> AutoCompactor::StepRevision(int64_t now_us, int64_t revision, bool leader) {
  next_look_us_ = now_us + kRevisionCheckUs;
  const int64_t rev = revision - o_.retention;
  if (!leader || in_flight_ || rev <= 0 || rev == last_revision_) return std::nullopt;
  in_flight_ = true;
  asked_ = rev;
  return asked_;
}

void AutoCompactor::Done(bool ok, int64_t now_us) {
  BW_ASSERT(in_flight_);
  in_flight_ = false;
  if (!ok) return;
  last_success_us_ = now_us;
  last_revision_ = asked_;
}

}  // namespace bw::member
