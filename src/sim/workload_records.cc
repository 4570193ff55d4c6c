// The records workload (Workload::kRecords): workers use the
// bulwark.v1.Idempotency records of the MVCC store through every fault,
// checked by check::RecordFencingChecker.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

namespace {

constexpr char kScope[] = "sim";

std::string JobKey(size_t slot, uint64_t gen) {
  return absl::StrCat("job-", slot, "-", gen);
}

}  // namespace

void Simulation::ObserveRecords(NodeId id) {
  auto it = stores_.find(id);
  if (it == stores_.end()) return;
  for (size_t slot = 0; slot < record_gen_.size(); ++slot) {
    const bulwark::v1::Record* r = it->second->GetRecord(kScope, JobKey(slot, record_gen_[slot]));
    if (r != nullptr) record_checker_.OnApplied(r->token(), world_.now_us());
  }
}

void Simulation::RecordsClientStep(Client& c) {
  if (record_gen_.empty()) record_gen_.assign(static_cast<size_t>(std::max(1, o_.keys)), 0);
  bulwark::internal::Request r;
  enum { kBegin, kCheckpoint, kComplete, kRelease } what;
  if (c.record_token == 0) {
    what = kBegin;
    const size_t slot = rng().Below(record_gen_.size());
    c.record_key = JobKey(slot, record_gen_[slot]);
    c.record_ttl_ms = 300 + static_cast<int64_t>(rng().Below(1200));
    bulwark::v1::BeginRequest* b = r.mutable_idem_begin();
    b->set_scope(kScope);
    b->set_key(c.record_key);
    b->set_fingerprint(c.record_key);
    b->set_lock_ttl_ms(c.record_ttl_ms);
  } else if (c.record_steps_left > 0) {
    what = kCheckpoint;
    --c.record_steps_left;
    bulwark::v1::CheckpointRequest* p = r.mutable_idem_checkpoint();
    p->set_scope(kScope);
    p->set_key(c.record_key);
    p->set_token(c.record_token);
    p->set_recovery_point(absl::StrCat("step-", c.record_steps_left));
  } else if (rng().Chance(0.9)) {
    what = kComplete;
    bulwark::v1::CompleteRequest* p = r.mutable_idem_complete();
    p->set_scope(kScope);
    p->set_key(c.record_key);
    p->set_token(c.record_token);
    p->set_response(absl::StrCat("done by client ", c.id, " with token ", c.record_token));
  } else {
    what = kRelease;
    bulwark::v1::ReleaseRequest* p = r.mutable_idem_release();
    p->set_scope(kScope);
    p->set_key(c.record_key);
    p->set_token(c.record_token);
  }
  const int64_t sent_us = world_.now_us();
  Client* cp = &c;
  // The next step: work between checkpoints takes a while, and now and then
  // a worker stalls past its lock (another may take the job over).
  Finish finish = StartOp(c, [this](Client& w, bool answered) {
    if (!answered) w.record_token = 0;  // whatever it held, it starts over
    int64_t pause = 20'000 + static_cast<int64_t>(rng().Below(200'000));
    if (w.record_token != 0 && rng().Chance(0.15)) pause += w.record_ttl_ms * 1000;
    return pause;
  });
  const uint64_t serial = c.op_serial;
  // What was sent, as it was: a late answer still tells the checker the
  // truth, but only the current one moves the worker on.
  const std::string key = c.record_key;
  const uint64_t token = c.record_token;
  const int64_t ttl_ms = c.record_ttl_ms;
  ProposeAsMember(
      c.target, std::move(r), kv::MakeRequestId(c.id, ++c.seq),
      [this, cp, finish, what, sent_us, serial, key, token, ttl_ms](absl::StatusOr<std::any> res) {
        if (failed() || !res.ok()) {
          if (!failed()) finish(false);
          return;
        }
        const kv::MvccResult& m = std::any_cast<const kv::MvccResult&>(*res);
        const int64_t now = world_.now_us();
        const bool current = cp->op_serial == serial && cp->busy;
        if (heal_stamp_ >= 0 && sent_us * 1000 >= heal_stamp_ && m.status.ok() &&
            what == kComplete) {
          record_served_after_heal_ = true;
        }
        switch (what) {
          case kBegin: {
            bulwark::v1::BeginResponse b;
            if (!m.status.ok() || !b.ParseFromString(m.service_response)) break;
            if (b.outcome() == bulwark::v1::BeginResponse::STARTED) {
              ++result_.stats.records_started;
              if (b.took_over()) ++result_.stats.records_taken_over;
              record_checker_.OnStarted(key, b.token(), b.took_over(), ttl_ms, sent_us, now);
              if (current) {
                cp->record_token = b.token();
                cp->record_steps_left = static_cast<int>(rng().Below(4));
              }
            } else if (b.outcome() == bulwark::v1::BeginResponse::COMPLETED) {
              record_checker_.OnSawCompleted(key, b.response(), sent_us);
              // Done: its slot moves on to a new job.
              for (size_t slot = 0; slot < record_gen_.size(); ++slot) {
                if (JobKey(slot, record_gen_[slot]) == key) ++record_gen_[slot];
              }
            }
            break;
          }
          case kCheckpoint:
            if (m.status.ok()) {
              record_checker_.OnCheckpointed(key, token, sent_us);
            } else if (current) {
              cp->record_token = 0;  // superseded: another worker took it over
            }
            break;
          case kComplete:
            if (m.status.ok()) {
              ++result_.stats.records_completed;
              record_checker_.OnCompleted(
                  key, token, absl::StrCat("done by client ", cp->id, " with token ", token),
                  sent_us, now);
            }
            if (current) cp->record_token = 0;
            break;
          case kRelease:
            if (m.status.ok()) record_checker_.OnReleased(key, token, sent_us);
            if (current) cp->record_token = 0;
            break;
        }
        if (!record_checker_.ok()) {
          Fail(record_checker_.violation());
          return;
        }
        finish(true);
      });
}

void Simulation::CheckRecordsServed() {
  if (o_.clients > 0 && !record_served_after_heal_) {
    Fail("liveness: no job completed after healing");
  }
}

}  // namespace bw::sim::detail
