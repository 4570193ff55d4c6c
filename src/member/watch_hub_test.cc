#include "member/watch_hub.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bw::member {
namespace {

class WatchHubTest : public ::testing::Test {
 protected:
  WatchHubTest()
      : hub_(
            store_, [this](etcdserverpb::ResponseHeader* h) { h->set_revision(store_.revision()); },
            /*fragment_bytes=*/200) {
    store_.set_record_events(true);
    sid_ = hub_.AddStream([this](WatchReply r) {
      if (full_) return false;
      if (r.events != nullptr) shared_.push_back(r.events);
      out_.push_back(r.Full());
      return true;
    });
  }
  void Put(const std::string& k, const std::string& v) {
    bulwark::internal::Request req;
    req.mutable_put()->set_key(k);
    req.mutable_put()->set_value(v);
    store_.Apply(req);
    hub_.OnApplied();
  }
  void Delete(const std::string& k) {
    bulwark::internal::Request req;
    req.mutable_delete_range()->set_key(k);
    store_.Apply(req);
    hub_.OnApplied();
  }
  void Watch(const std::string& key, const std::string& end, int64_t start = 0,
             bool prev_kv = false, bool fragment = false,
             std::vector<etcdserverpb::WatchCreateRequest::FilterType> filters = {}) {
    etcdserverpb::WatchRequest r;
    auto* c = r.mutable_create_request();
    c->set_key(key);
    c->set_range_end(end);
    c->set_start_revision(start);
    c->set_prev_kv(prev_kv);
    c->set_fragment(fragment);
    for (auto f : filters)
      c->add_filters(f);
    hub_.OnRequest(sid_, r);
  }
  std::vector<std::string> Events() {
    std::vector<std::string> s;
    for (const auto& r : out_) {
      for (const auto& e : r.events()) {
        s.push_back((e.type() == mvccpb::Event::PUT ? "PUT " : "DEL ") + e.kv().key() + "@" +
                    std::to_string(e.kv().mod_revision()));
      }
    }
    return s;
  }

  kv::MvccStore store_;
  WatchHub hub_;
  uint64_t sid_ = 0;
  std::vector<etcdserverpb::WatchResponse> out_;
  std::vector<std::shared_ptr<const std::string>> shared_;  // each reply's shared events
  bool full_ = false;
};

TEST_F(WatchHubTest, LiveEventsInRangeWithPrevKvAndFilters) {
  Watch("a", "c", 0, /*prev_kv=*/true);
  Watch("a", "c", 0, false, false, {etcdserverpb::WatchCreateRequest::NOPUT});
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_TRUE(out_[0].created());
  EXPECT_EQ(out_[0].watch_id(), 0);
  EXPECT_EQ(out_[1].watch_id(), 1);
  out_.clear();
  Put("a", "1");
  Put("z", "ignored");
  Put("a", "2");
  Delete("a");
  // Watcher 0: three events, prev_kv on the second put and the delete.
  // Watcher 1: only the delete (NOPUT).
  std::vector<std::string> want = {"PUT a@2", "PUT a@4", "DEL a@5", "DEL a@5"};
  std::vector<std::string> got = Events();
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  for (const auto& r : out_) {
    for (const auto& e : r.events()) {
      if (r.watch_id() == 0 && e.kv().mod_revision() == 4) {
        EXPECT_EQ(e.prev_kv().value(), "1");
      }
      if (r.watch_id() == 1) {
        EXPECT_FALSE(e.has_prev_kv());
      }
    }
  }
}

// Live events are encoded once per applied entry and shared by the watchers
// that get the same ones; each still gets exactly its own view of them.
TEST_F(WatchHubTest, WatchersOfTheSameEventsShareOneEncoding) {
  Watch("k", "");
  Watch("k", "");
  Watch("j", "l");
  Watch("k", "", 0, /*prev_kv=*/true);
  const size_t created = out_.size();
  Put("k", "1");
  Put("k", "2");
  ASSERT_EQ(out_.size(), created + 8);
  ASSERT_EQ(shared_.size(), 8u);
  // Per put: the three without prev_kv share one encoding, the fourth has
  // its own; nothing is shared across puts.
  EXPECT_EQ(shared_[0], shared_[1]);
  EXPECT_EQ(shared_[0], shared_[2]);
  EXPECT_NE(shared_[0], shared_[3]);
  EXPECT_NE(shared_[0], shared_[4]);
  for (size_t i = created; i < out_.size(); ++i) {
    const etcdserverpb::WatchResponse& r = out_[i];
    ASSERT_EQ(r.events_size(), 1) << i;
    EXPECT_EQ(r.watch_id(), static_cast<int64_t>((i - created) % 4));
    EXPECT_EQ(r.header().revision(), r.events(0).kv().mod_revision());
    const bool with_prev = r.watch_id() == 3;
    const bool second_put = i - created >= 4;
    EXPECT_EQ(r.events(0).has_prev_kv(), with_prev && second_put) << i;
    if (with_prev && second_put) {
      EXPECT_EQ(r.events(0).prev_kv().value(), "1");
    }
    EXPECT_EQ(r.events(0).kv().value(), second_put ? "2" : "1");
  }
}

TEST_F(WatchHubTest, HistoryThenLiveWithoutGapsOrDuplicates) {
  Put("k", "1");  // 2
  Put("k", "2");  // 3
  Put("x", "1");  // 4
  Watch("k", "", /*start=*/2);
  Put("k", "3");  // 5
  EXPECT_EQ(Events(), (std::vector<std::string>{"PUT k@2", "PUT k@3", "PUT k@5"}));
}

TEST_F(WatchHubTest, AStartThisMemberHasNotReachedGetsNothingBeforeIt) {
  // A client resuming a watch on a member that is behind (or asking for a
  // future revision) must get events from its start on, never earlier ones.
  Put("k", "1");      // 2
  Watch("k", "", 5);  // the store is at 2
  Put("k", "2");      // 3
  Put("k", "3");      // 4
  Put("k", "4");      // 5
  Put("k", "5");      // 6
  EXPECT_EQ(Events(), (std::vector<std::string>{"PUT k@5", "PUT k@6"}));
}

TEST_F(WatchHubTest, CompactedStartIsCancelledWithTheCompactRevision) {
  Put("k", "1");
  Put("k", "2");
  Put("k", "3");
  bulwark::internal::Request c;
  c.mutable_compaction()->set_revision(3);
  store_.Apply(c);
  Watch("k", "", /*start=*/2);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_TRUE(out_[1].canceled());
  EXPECT_EQ(out_[1].compact_revision(), 3);
  // etcd's shape: no reason, a header without a revision.
  EXPECT_EQ(out_[1].cancel_reason(), "");
  EXPECT_EQ(out_[1].header().revision(), 0);
  EXPECT_EQ(hub_.watchers(), 0u);
}

TEST_F(WatchHubTest, FragmentsSplitLargeResponses) {
  Watch("f", "g", 0, false, /*fragment=*/true);
  Watch("f", "g", 0, false, /*fragment=*/false);
  out_.clear();
  bulwark::internal::Request txn;
  for (int i = 0; i < 5; ++i) {
    auto* p = txn.mutable_txn()->add_success()->mutable_request_put();
    p->set_key("f" + std::to_string(i));
    p->set_value(std::string(80, 'v'));
  }
  store_.Apply(txn);
  hub_.OnApplied();
  int pieces = 0, whole = 0;
  for (const auto& r : out_) {
    if (r.watch_id() == 0) {
      ++pieces;
      EXPECT_LE(r.ByteSizeLong(), 400u);
    } else {
      ++whole;
      EXPECT_EQ(r.events_size(), 5);
    }
  }
  EXPECT_GE(pieces, 3);
  EXPECT_EQ(whole, 1);
  // Every piece but the last says more follows.
  int flagged = 0;
  for (const auto& r : out_)
    flagged += r.watch_id() == 0 && r.fragment();
  EXPECT_EQ(flagged, pieces - 1);
}

TEST_F(WatchHubTest, CancelAndASlowStreamLosesItsWatchers) {
  Watch("k", "");
  etcdserverpb::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(0);
  hub_.OnRequest(sid_, cancel);
  EXPECT_TRUE(out_.back().canceled());
  EXPECT_EQ(hub_.watchers(), 0u);
  Watch("k", "");
  full_ = true;  // the client stopped reading
  Put("k", "1");
  EXPECT_EQ(hub_.watchers(), 0u);
}

TEST_F(WatchHubTest, ASnapshotInstallSendsWhatTheWatchersMissed) {
  Put("k", "1");  // 2
  Watch("k", "");
  // Another replica went further; this one installs its snapshot.
  kv::MvccStore ahead;
  ASSERT_TRUE(ahead.Restore(store_.Serialize()).ok());
  for (const char* v : {"2", "3"}) {
    bulwark::internal::Request req;
    req.mutable_put()->set_key("k");
    req.mutable_put()->set_value(v);
    ahead.Apply(req);
  }
  ASSERT_TRUE(store_.Restore(ahead.Serialize()).ok());
  out_.clear();
  hub_.Resync();
  EXPECT_EQ(Events(), (std::vector<std::string>{"PUT k@3", "PUT k@4"}));
  Put("k", "4");  // live again, no duplicates
  EXPECT_EQ(Events(), (std::vector<std::string>{"PUT k@3", "PUT k@4", "PUT k@5"}));
}

}  // namespace
}  // namespace bw::member

namespace bw::member {
namespace {

// A stream at its watcher limit is refused one more, in etcd's shape for a
// watcher it cannot create; its other watchers go on, and after a cancel
// there is room again.
TEST_F(WatchHubTest, AStreamPastItsWatcherLimitIsRefusedOneMore) {
  hub_.set_max_watchers_per_stream(2);
  Watch("a", "");
  Watch("b", "");
  Watch("c", "");
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_TRUE(out_[2].created());
  EXPECT_TRUE(out_[2].canceled());
  EXPECT_EQ(out_[2].watch_id(), -1);
  EXPECT_NE(out_[2].cancel_reason().find("--max-watchers-per-stream"), std::string::npos);
  EXPECT_EQ(hub_.watchers(), 2u);
  Put("a", "1");
  EXPECT_EQ(Events(), std::vector<std::string>{"PUT a@2"});
  etcdserverpb::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(out_[0].watch_id());
  hub_.OnRequest(sid_, cancel);
  out_.clear();
  Watch("c", "");
  ASSERT_FALSE(out_.empty());
  EXPECT_FALSE(out_.back().canceled());
  EXPECT_EQ(hub_.watchers(), 2u);
}

// etcd refuses a watch on an empty or inverted range and a watch id already
// in use on the stream, with watch id -1 and mvcc's words; a from-key watch
// ("\0") and a watch of key "" (the first key) are fine.
TEST_F(WatchHubTest, RefusesWhatEtcdRefusesInEtcdsWords) {
  Watch("w", "w");
  Watch("x", "a");
  Watch("m", std::string(1, '\0'));
  Watch("", "");
  ASSERT_EQ(out_.size(), 4u);
  for (int i : {0, 1}) {
    EXPECT_TRUE(out_[i].created() && out_[i].canceled()) << i;
    EXPECT_EQ(out_[i].watch_id(), -1) << i;
    EXPECT_EQ(out_[i].cancel_reason(), "mvcc: watcher range is empty") << i;
  }
  EXPECT_FALSE(out_[2].canceled());
  EXPECT_FALSE(out_[3].canceled());
  EXPECT_EQ(hub_.watchers(), 2u);
  out_.clear();
  etcdserverpb::WatchRequest r;
  r.mutable_create_request()->set_key("k");
  r.mutable_create_request()->set_watch_id(7);
  hub_.OnRequest(sid_, r);
  hub_.OnRequest(sid_, r);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].watch_id(), 7);
  EXPECT_FALSE(out_[0].canceled());
  EXPECT_EQ(out_[1].watch_id(), -1);
  EXPECT_EQ(out_[1].cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  Put("z", "1");
  EXPECT_EQ(Events(), std::vector<std::string>{"PUT z@2"});
}

}  // namespace
}  // namespace bw::member
