#include "kv/mvcc.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <vector>
#include "absl/strings/str_cat.h"

namespace bw::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnRequest;

class MvccTest : public ::testing::Test {
 protected:
  MvccResult Put(const std::string& k, const std::string& v, bool prev_kv = false) {
    bulwark::internal::Request req;
    req.set_id(++id_);
    req.mutable_put()->set_key(k);
    req.mutable_put()->set_value(v);
    req.mutable_put()->set_prev_kv(prev_kv);
    return Roundtrip(req);
  }
  MvccResult Delete(const std::string& k, const std::string& end = "", bool prev_kv = false) {
    bulwark::internal::Request req;
    req.mutable_delete_range()->set_key(k);
    req.mutable_delete_range()->set_range_end(end);
    req.mutable_delete_range()->set_prev_kv(prev_kv);
    return Roundtrip(req);
  }
  MvccResult Compact(int64_t rev) {
    bulwark::internal::Request req;
    req.mutable_compaction()->set_revision(rev);
    return Roundtrip(req);
  }
  MvccResult Txn(const TxnRequest& t) {
    bulwark::internal::Request req;
    *req.mutable_txn() = t;
    return Roundtrip(req);
  }
  // Through the encoded entry, as the node applies it.
  MvccResult Roundtrip(const bulwark::internal::Request& req) {
    std::string data;
    req.SerializeToString(&data);
    StateMachine::Applied a = store_.ApplyEntry(LogIndex(++index_), data);
    EXPECT_EQ(a.request_id, req.id());
    return std::any_cast<MvccResult>(a.result);
  }
  RangeResponse Get(const std::string& k, const std::string& end = "", int64_t rev = 0) {
    RangeRequest r;
    r.set_key(k);
    r.set_range_end(end);
    r.set_revision(rev);
    RangeResponse out;
    absl::Status s = store_.Range(r, &out);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
  std::vector<std::string> Keys(const RangeResponse& r) {
    std::vector<std::string> out;
    for (const auto& kv : r.kvs())
      out.push_back(kv.key());
    return out;
  }

  MvccStore store_;
  uint64_t id_ = 0;
  uint64_t index_ = 0;
};

TEST_F(MvccTest, RevisionsVersionsAndGenerations) {
  EXPECT_EQ(store_.revision(), 1);
  MvccResult r = Put("a", "1");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, 2);
  EXPECT_EQ(r.response.response_put().header().revision(), 2);
  Put("a", "2");
  RangeResponse g = Get("a");
  ASSERT_EQ(g.kvs_size(), 1);
  EXPECT_EQ(g.kvs(0).value(), "2");
  EXPECT_EQ(g.kvs(0).create_revision(), 2);
  EXPECT_EQ(g.kvs(0).mod_revision(), 3);
  EXPECT_EQ(g.kvs(0).version(), 2);
  EXPECT_EQ(g.header().revision(), 3);
  // A delete ends the generation; the next put starts a new one.
  EXPECT_EQ(Delete("a").response.response_delete_range().deleted(), 1);
  EXPECT_EQ(Get("a").kvs_size(), 0);
  Put("a", "3");
  g = Get("a");
  EXPECT_EQ(g.kvs(0).create_revision(), 5);
  EXPECT_EQ(g.kvs(0).version(), 1);
  // History stays readable.
  EXPECT_EQ(Get("a", "", 2).kvs(0).value(), "1");
  EXPECT_EQ(Get("a", "", 4).kvs_size(), 0);
  EXPECT_EQ(Get("a", "", 4).header().revision(), 5);
}

TEST_F(MvccTest, DeleteOfNothingKeepsTheRevision) {
  Put("a", "1");
  MvccResult r = Delete("zzz");
  EXPECT_EQ(r.response.response_delete_range().deleted(), 0);
  EXPECT_EQ(r.revision, 2);
  EXPECT_EQ(store_.revision(), 2);
}

TEST_F(MvccTest, PrevKvOnPutAndDelete) {
  Put("a", "1");
  MvccResult r = Put("a", "2", /*prev_kv=*/true);
  EXPECT_EQ(r.response.response_put().prev_kv().value(), "1");
  EXPECT_FALSE(Put("b", "x", true).response.response_put().has_prev_kv());
  r = Delete("a", "c", /*prev_kv=*/true);
  ASSERT_EQ(r.response.response_delete_range().prev_kvs_size(), 2);
  EXPECT_EQ(r.response.response_delete_range().prev_kvs(0).value(), "2");
  EXPECT_EQ(r.response.response_delete_range().prev_kvs(1).key(), "b");
}

TEST_F(MvccTest, RangesPrefixesFromKeyLimitAndCount) {
  for (const char* k : {"a", "b", "b1", "b2", "c"})
    Put(k, k);
  EXPECT_EQ(Keys(Get("b", "c")), (std::vector<std::string>{"b", "b1", "b2"}));
  EXPECT_EQ(Keys(Get("b1", std::string("\0", 1))), (std::vector<std::string>{"b1", "b2", "c"}));
  EXPECT_EQ(Keys(Get(std::string("\0", 1), std::string("\0", 1))).size(), 5u);
  EXPECT_TRUE(Get("c", "a").kvs().empty());  // end before begin: nothing
  RangeRequest r;
  r.set_key("a");
  r.set_range_end("z");
  r.set_limit(2);
  RangeResponse out;
  ASSERT_TRUE(store_.Range(r, &out).ok());
  EXPECT_EQ(Keys(out), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(out.more());
  EXPECT_EQ(out.count(), 5);
  r.set_limit(5);
  out.Clear();
  ASSERT_TRUE(store_.Range(r, &out).ok());
  EXPECT_FALSE(out.more());
  r.set_limit(0);
  r.set_count_only(true);
  out.Clear();
  ASSERT_TRUE(store_.Range(r, &out).ok());
  EXPECT_EQ(out.count(), 5);
  EXPECT_EQ(out.kvs_size(), 0);
  r.set_count_only(false);
  r.set_keys_only(true);
  out.Clear();
  ASSERT_TRUE(store_.Range(r, &out).ok());
  EXPECT_EQ(out.kvs(0).key(), "a");
  EXPECT_TRUE(out.kvs(0).value().empty());
}

TEST_F(MvccTest, SortAndRevisionFilters) {
  Put("a", "3");  // rev 2
  Put("b", "1");  // rev 3
  Put("c", "2");  // rev 4
  Put("a", "4");  // rev 5
  RangeRequest r;
  r.set_key("a");
  r.set_range_end("z");
  r.set_sort_target(RangeRequest::VALUE);
  RangeResponse out;
  ASSERT_TRUE(store_.Range(r, &out).ok());  // another target: ascending by default
  EXPECT_EQ(Keys(out), (std::vector<std::string>{"b", "c", "a"}));
  r.set_sort_target(RangeRequest::MOD);
  r.set_sort_order(RangeRequest::DESCEND);
  r.set_limit(2);
  out.Clear();
  ASSERT_TRUE(store_.Range(r, &out).ok());
  EXPECT_EQ(Keys(out), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(out.more());
  RangeRequest f;
  f.set_key("a");
  f.set_range_end("z");
  f.set_min_mod_revision(3);
  f.set_max_mod_revision(4);
  out.Clear();
  ASSERT_TRUE(store_.Range(f, &out).ok());
  EXPECT_EQ(Keys(out), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(out.count(), 3);  // count is of the range, before filters (etcd)
  f.Clear();
  f.set_key("a");
  f.set_range_end("z");
  f.set_max_create_revision(2);
  out.Clear();
  ASSERT_TRUE(store_.Range(f, &out).ok());
  EXPECT_EQ(Keys(out), (std::vector<std::string>{"a"}));
  f.set_sort_order(static_cast<RangeRequest::SortOrder>(9));
  EXPECT_EQ(store_.Range(f, &out).message(), "etcdserver: invalid sort option");
}

TEST_F(MvccTest, CompactionForgetsHistoryAndRefusesOldReads) {
  Put("a", "1");  // 2
  Put("a", "2");  // 3
  Put("b", "1");  // 4
  Delete("b");    // 5
  Put("c", "1");  // 6
  size_t before = store_.versions();
  ASSERT_TRUE(Compact(5).status.ok());
  EXPECT_EQ(store_.compact_revision(), 5);
  // a@2 goes, a@3 stays (visible at 5); b's put goes, and its tombstone
  // stays while it is the compaction point itself: a watch from 5 sees b's
  // delete. It reads as no key.
  EXPECT_EQ(store_.versions(), before - 2);
  EXPECT_EQ(Get("a", "", 5).kvs(0).value(), "2");
  EXPECT_EQ(Get("b", "", 5).kvs_size(), 0);
  std::vector<mvccpb::Event> events;
  ASSERT_TRUE(store_.EventsSince("a", "z", 5, 100, &events).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[0].kv().key(), "b");
  EXPECT_EQ(events[0].kv().mod_revision(), 5);
  RangeRequest r;
  r.set_key("a");
  r.set_revision(4);
  RangeResponse out;
  EXPECT_EQ(store_.Range(r, &out).message(),
            "etcdserver: mvcc: required revision has been compacted");
  r.set_revision(7);
  EXPECT_EQ(store_.Range(r, &out).message(),
            "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(Compact(5).status.message(), "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(Compact(99).status.message(),
            "etcdserver: mvcc: required revision is a future revision");
  EXPECT_TRUE(absl::IsOutOfRange(Compact(4).status));
  Put("d", "1");                        // 7
  ASSERT_TRUE(Compact(6).status.ok());  // the next compaction takes the tombstone
  EXPECT_EQ(store_.versions(), 3u);     // a@3, c@6, d@7
}

TEST_F(MvccTest, TxnComparesEveryTarget) {
  Put("k", "v1");  // 2
  Put("k", "v2");  // 3
  auto txn = [&](Compare c) {
    TxnRequest t;
    *t.add_compare() = c;
    return Txn(t).response.response_txn().succeeded();
  };
  Compare c;
  c.set_key("k");
  c.set_target(Compare::VALUE);
  c.set_value("v2");
  EXPECT_TRUE(txn(c));
  c.set_result(Compare::NOT_EQUAL);
  EXPECT_FALSE(txn(c));
  c.Clear();
  c.set_key("k");
  c.set_target(Compare::VERSION);
  c.set_result(Compare::GREATER);
  c.set_version(1);
  EXPECT_TRUE(txn(c));
  c.Clear();
  c.set_key("k");
  c.set_target(Compare::CREATE);
  c.set_create_revision(2);
  EXPECT_TRUE(txn(c));
  c.Clear();
  c.set_key("k");
  c.set_target(Compare::MOD);
  c.set_result(Compare::LESS);
  c.set_mod_revision(3);
  EXPECT_FALSE(txn(c));
  c.Clear();
  c.set_key("k");
  c.set_target(Compare::LEASE);
  c.set_lease(0);
  EXPECT_TRUE(txn(c));
  // A missing key: version 0 matches, a value compare always fails.
  c.Clear();
  c.set_key("missing");
  c.set_target(Compare::VERSION);
  c.set_version(0);
  EXPECT_TRUE(txn(c));
  c.Clear();
  c.set_key("missing");
  c.set_target(Compare::VALUE);
  c.set_value("");
  EXPECT_FALSE(txn(c));
  // A range compare holds only if it holds for every key in it.
  Put("k2", "v2");
  c.Clear();
  c.set_key("k");
  c.set_range_end("l");
  c.set_target(Compare::VALUE);
  c.set_value("v2");
  EXPECT_TRUE(txn(c));
  Put("k3", "other");
  EXPECT_FALSE(txn(c));
}

TEST_F(MvccTest, TxnBranchesShareOneRevisionAndSeeTheirOwnWrites) {
  Put("x", "0");  // 2
  TxnRequest t;
  Compare* c = t.add_compare();
  c->set_key("x");
  c->set_target(Compare::VALUE);
  c->set_value("0");
  auto* put = t.add_success()->mutable_request_put();
  put->set_key("y");
  put->set_value("1");
  t.add_success()->mutable_request_range()->set_key("y");
  auto* del = t.add_success()->mutable_request_delete_range();
  del->set_key("x");
  t.add_failure()->mutable_request_range()->set_key("x");
  MvccResult r = Txn(t);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& resp = r.response.response_txn();
  EXPECT_TRUE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 3);
  ASSERT_EQ(resp.responses_size(), 3);
  EXPECT_EQ(resp.responses(1).response_range().kvs(0).value(), "1");
  EXPECT_EQ(resp.responses(1).response_range().kvs(0).mod_revision(), 3);
  EXPECT_EQ(resp.responses(2).response_delete_range().deleted(), 1);
  EXPECT_EQ(store_.revision(), 3);
  // Now the compare fails: the failure branch, a read only, no new revision.
  r = Txn(t);
  EXPECT_FALSE(r.response.response_txn().succeeded());
  EXPECT_EQ(r.response.response_txn().responses(0).response_range().kvs_size(), 0);
  EXPECT_EQ(store_.revision(), 3);
}

TEST_F(MvccTest, NestedTxnComparesSeeTheStateBeforeTheTxn) {
  TxnRequest inner;
  Compare* c = inner.add_compare();
  c->set_key("a");
  c->set_target(Compare::VERSION);
  c->set_version(0);  // true before the outer put
  auto* p = inner.add_success()->mutable_request_put();
  p->set_key("seen-missing");
  TxnRequest outer;
  auto* put = outer.add_success()->mutable_request_put();
  put->set_key("a");
  put->set_value("1");
  *outer.add_success()->mutable_request_txn() = inner;
  MvccResult r = Txn(outer);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.response.response_txn().responses(1).response_txn().succeeded());
  EXPECT_EQ(Get("seen-missing").kvs_size(), 1);
}

TEST_F(MvccTest, TxnValidationLikeEtcd) {
  TxnRequest t;
  for (int i = 0; i < kMaxTxnOps + 1; i++)
    t.add_success()->mutable_request_range()->set_key("a");
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: too many operations in txn request");
  t.Clear();
  t.add_success()->mutable_request_put()->set_key("a");
  t.add_success()->mutable_request_put()->set_key("a");
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: duplicate key given in txn request");
  t.Clear();
  t.add_success()->mutable_request_put()->set_key("b");
  auto* d = t.add_success()->mutable_request_delete_range();
  d->set_key("a");
  d->set_range_end("c");
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: duplicate key given in txn request");
  // Puts in different branches are fine; a nested put of an outer key is not.
  t.Clear();
  t.add_success()->mutable_request_put()->set_key("a");
  t.add_failure()->mutable_request_put()->set_key("a");
  EXPECT_TRUE(ValidateTxn(t).ok());
  TxnRequest nested;
  nested.add_failure()->mutable_request_put()->set_key("a");
  *t.add_success()->mutable_request_txn() = nested;
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: duplicate key given in txn request");
  t.Clear();
  t.add_success()->mutable_request_put();
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: key is not provided");
  // Errors at apply time change nothing.
  Put("x", "1");
  int64_t rev = store_.revision();
  t.Clear();
  t.add_success()->mutable_request_put()->set_key("y");
  auto* bad = t.add_success()->mutable_request_put();
  bad->set_key("z");
  bad->set_lease(42);
  MvccResult r = Txn(t);
  EXPECT_EQ(r.status.message(), "etcdserver: requested lease not found");
  EXPECT_EQ(store_.revision(), rev);
  EXPECT_EQ(Get("y").kvs_size(), 0);
}

// The corners where etcd 3.4's checks are not what one would guess; each
// answer here is etcd's own (tests/etcd_api_test.py compares them live).
TEST_F(MvccTest, TxnValidationQuirksOfEtcd) {
  const std::string dup = "etcdserver: duplicate key given in txn request";
  // An op with nothing in it is refused, with etcd's "key not found".
  TxnRequest t;
  t.add_success();
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: key not found");
  // The limit runs across nesting: 100 ops leave 28 for a nested txn.
  t.Clear();
  for (int i = 0; i < 99; i++)
    t.add_success()->mutable_request_range()->set_key("r");
  TxnRequest inner;
  for (int i = 0; i < 29; i++)
    inner.add_success()->mutable_request_range()->set_key("r");
  *t.add_success()->mutable_request_txn() = inner;
  EXPECT_EQ(ValidateTxn(t).message(), "etcdserver: too many operations in txn request");
  t.mutable_success()->RemoveLast();
  inner.mutable_success()->RemoveLast();
  *t.add_success()->mutable_request_txn() = inner;
  EXPECT_TRUE(ValidateTxn(t).ok());
  // A from-key delete ("\0") or an inverted range covers no put.
  for (const char* end : {"\0", "a"}) {
    t.Clear();
    auto* d = t.add_success()->mutable_request_delete_range();
    d->set_key("m");
    d->set_range_end(std::string(end, std::strlen(end) == 0 ? 1 : std::strlen(end)));
    t.add_success()->mutable_request_put()->set_key("n");
    EXPECT_TRUE(ValidateTxn(t).ok()) << "range end " << d->range_end();
  }
  // A nested txn's branches may put the same key; its puts may not fall in a
  // delete before them, but its deletes are not checked against puts.
  t.Clear();
  inner.Clear();
  inner.add_success()->mutable_request_put()->set_key("k");
  inner.add_failure()->mutable_request_put()->set_key("k");
  *t.add_success()->mutable_request_txn() = inner;
  EXPECT_TRUE(ValidateTxn(t).ok());
  auto* d = t.add_success()->mutable_request_delete_range();
  d->set_key("a");
  d->set_range_end("z");
  EXPECT_EQ(ValidateTxn(t).message(), dup);
  // ... not against the puts of a nested txn before it, that is; a put of
  // the level itself is checked against every delete below it.
  t.Clear();
  inner.Clear();
  inner.add_success()->mutable_request_put()->set_key("k");
  *t.add_success()->mutable_request_txn() = inner;
  TxnRequest deleting;
  d = deleting.add_success()->mutable_request_delete_range();
  d->set_key("a");
  d->set_range_end("z");
  *t.add_success()->mutable_request_txn() = deleting;
  EXPECT_TRUE(ValidateTxn(t).ok());
  t.add_success()->mutable_request_put()->set_key("m");
  EXPECT_EQ(ValidateTxn(t).message(), dup);
}

// Alarms are replicated state, with etcd's effects: NOSPACE refuses puts,
// txns that put and lease grants (deletes and compaction go on, so room can
// be made); CORRUPT refuses every write; both survive a snapshot.
TEST_F(MvccTest, AlarmsAreStateAndRefuseWhatEtcdRefuses) {
  auto alarm = [this](etcdserverpb::AlarmRequest::AlarmAction action, uint64_t member,
                      etcdserverpb::AlarmType type) {
    bulwark::internal::Request req;
    req.mutable_alarm()->set_action(action);
    req.mutable_alarm()->set_memberid(member);
    req.mutable_alarm()->set_alarm(type);
    etcdserverpb::AlarmResponse resp;
    EXPECT_TRUE(resp.ParseFromString(Roundtrip(req).service_response));
    return resp;
  };
  Put("a", "1");
  etcdserverpb::AlarmResponse r =
      alarm(etcdserverpb::AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE);
  ASSERT_EQ(r.alarms_size(), 1);
  EXPECT_EQ(r.alarms(0).memberid(), 7u);
  EXPECT_TRUE(store_.alarm_raised(etcdserverpb::NOSPACE));
  const std::string full = "etcdserver: mvcc: database space exceeded";
  EXPECT_EQ(Put("b", "1").status.message(), full);
  TxnRequest t;
  t.add_success()->mutable_request_put()->set_key("b");
  EXPECT_EQ(Txn(t).status.message(), full);
  t.Clear();
  t.add_success()->mutable_request_delete_range()->set_key("a");
  EXPECT_TRUE(Txn(t).status.ok());
  bulwark::internal::Request grant;
  grant.mutable_lease_grant()->set_id(5);
  grant.mutable_lease_grant()->set_ttl(60);
  EXPECT_EQ(Roundtrip(grant).status.message(), full);

  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.alarms().size(), 1u);
  EXPECT_EQ(copy.digest(), store_.digest());

  // Deactivating another member's alarm clears nothing and answers nothing.
  EXPECT_EQ(alarm(etcdserverpb::AlarmRequest::DEACTIVATE, 8, etcdserverpb::NOSPACE).alarms_size(),
            0);
  EXPECT_EQ(alarm(etcdserverpb::AlarmRequest::DEACTIVATE, 7, etcdserverpb::NOSPACE).alarms_size(),
            1);
  EXPECT_TRUE(store_.alarms().empty());
  EXPECT_TRUE(Put("b", "1").status.ok());

  alarm(etcdserverpb::AlarmRequest::ACTIVATE, 7, etcdserverpb::CORRUPT);
  EXPECT_EQ(Put("c", "1").status.message(), "etcdserver: corrupt cluster");
  EXPECT_EQ(Put("c", "1").status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Txn(t).status.message(), "etcdserver: corrupt cluster");
  t.Clear();
  t.add_success()->mutable_request_range()->set_key("a");
  EXPECT_TRUE(Txn(t).status.ok());  // read-only: etcd serves it without the log
}

// Log time is the latest stamp applied, not only the latest tick: a leader
// restored from a snapshot starts cluster time from it (the records
// workload of the simulator found it running back to the last tick).
TEST_F(MvccTest, LogTimeIsTheLatestStampApplied) {
  bulwark::internal::Request req;
  req.mutable_put()->set_key("k");
  std::string data = req.SerializeAsString();
  (void)store_.ApplyEntry(LogIndex(1), 5'000'000, data);
  (void)store_.ApplyEntry(LogIndex(2), 7'000'000, data);
  EXPECT_EQ(store_.log_time_us(), 7'000'000);
  (void)store_.ApplyEntry(LogIndex(3), 0, data);  // unstamped: no time
  EXPECT_EQ(store_.log_time_us(), 7'000'000);
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.log_time_us(), 7'000'000);
}

TEST_F(MvccTest, ANestedTxnAnswersWithAnEmptyHeader) {
  TxnRequest inner;
  inner.add_success()->mutable_request_put()->set_key("n");
  TxnRequest outer;
  *outer.add_success()->mutable_request_txn() = inner;
  MvccResult r = Txn(outer);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const etcdserverpb::TxnResponse& nested = r.response.response_txn().responses(0).response_txn();
  EXPECT_TRUE(nested.has_header());
  EXPECT_EQ(nested.header().revision(), 0);
  EXPECT_EQ(nested.responses(0).response_put().header().revision(), store_.revision());
}
TEST_F(MvccTest, PutOptions) {
  bulwark::internal::Request req;
  req.mutable_put()->set_key("a");
  req.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(Roundtrip(req).status.message(), "etcdserver: key not found");
  Put("a", "keep");
  MvccResult r = Roundtrip(req);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(Get("a").kvs(0).value(), "keep");
  EXPECT_EQ(Get("a").kvs(0).version(), 2);
  req.mutable_put()->set_value("x");
  EXPECT_EQ(ValidatePut(req.put()).message(), "etcdserver: value is provided");
  req.mutable_put()->set_ignore_value(false);
  req.mutable_put()->set_ignore_lease(true);
  req.mutable_put()->set_lease(5);
  EXPECT_EQ(ValidatePut(req.put()).message(), "etcdserver: lease is provided");
  EXPECT_EQ(ValidateDeleteRange({}).message(), "etcdserver: key is not provided");
}

TEST_F(MvccTest, SnapshotRestoresEverythingAndTheDigest) {
  Put("a", "1");
  Put("b", "2");
  Put("a", "3");
  Delete("b");
  Compact(3);
  Put("c", "4");
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_EQ(copy.revision(), store_.revision());
  EXPECT_EQ(copy.compact_revision(), 3);
  EXPECT_EQ(copy.HashKV(0), store_.HashKV(0));
  EXPECT_EQ(copy.live_keys(), 2u);
  // The digest follows the state: a different history differs.
  MvccStore other;
  EXPECT_NE(other.digest(), store_.digest());
  EXPECT_FALSE(copy.Restore("\xff\xff garbage").ok());
}

// Serialize writes the snapshot a key at a time (no second copy of the
// state in memory); the bytes must still be protobuf's own encoding of the
// whole message, whatever the store holds.
TEST_F(MvccTest, SnapshotIsTheCanonicalEncoding) {
  Put("a", "1");
  Put("b", std::string(300, 'x'));  // a length past one varint byte
  Put("a", "3");
  Delete("b");
  bulwark::internal::Request grant;
  grant.mutable_lease_grant()->set_id(9);
  grant.mutable_lease_grant()->set_ttl(60);
  ASSERT_TRUE(store_.Apply(grant).status.ok());
  bulwark::internal::Request keyed;
  keyed.mutable_put()->set_key("leased");
  keyed.mutable_put()->set_lease(9);
  keyed.mutable_idempotency()->set_scope("s");
  keyed.mutable_idempotency()->set_key("k1");
  keyed.mutable_idempotency()->set_fingerprint(1);
  ASSERT_TRUE(store_.Apply(keyed).status.ok());
  bulwark::internal::Request pub;
  pub.mutable_publish()->set_id(7);
  pub.mutable_publish()->set_name("m7");
  ASSERT_TRUE(store_.Apply(pub).status.ok());
  for (int i = 0; i < 200; ++i)
    Put(absl::StrCat("k", i), std::string(static_cast<size_t>(i), 'v'));
  const std::string snap = store_.Serialize();
  bulwark::internal::MvccSnapshot parsed;
  ASSERT_TRUE(parsed.ParseFromString(snap));
  EXPECT_EQ(parsed.keys_size(), 203);
  EXPECT_EQ(parsed.leases_size(), 1);
  EXPECT_EQ(parsed.members_size(), 1);
  EXPECT_EQ(parsed.idempotency_size(), 1);
  EXPECT_EQ(parsed.SerializeAsString(), snap);
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(snap).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_EQ(copy.Serialize(), snap);
}

// Found by fuzzing (fuzz/request_fuzz.cc): a snapshot naming a key twice
// restored, with the second list of versions appended after the first out
// of order; the store then served reads from an unsorted history and
// serialized to a snapshot that it refused to restore. Refused now.
TEST_F(MvccTest, SnapshotWithARepeatedKeyIsDataLoss) {
  bulwark::internal::MvccSnapshot snap;
  snap.set_revision(5);
  for (int64_t mod : {4, 2}) {
    bulwark::internal::KeyHistory* kh = snap.add_keys();
    kh->set_key("a");
    bulwark::internal::Version* v = kh->add_versions();
    v->set_mod_revision(mod);
    v->set_create_revision(mod);
    v->set_version(1);
    v->set_value("x");
  }
  MvccStore copy;
  const absl::Status s = copy.Restore(snap.SerializeAsString());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_EQ(s.message(), "mvcc: snapshot key repeated");
  // The store is left as it was.
  EXPECT_EQ(copy.revision(), 1);
  snap.mutable_keys()->RemoveLast();
  EXPECT_TRUE(copy.Restore(snap.SerializeAsString()).ok());
}

class MvccLeaseTest : public MvccTest {
 protected:
  MvccResult Grant(int64_t id, int64_t ttl, int64_t now_us) {
    bulwark::internal::Request req;
    req.set_time_us(now_us);
    req.mutable_lease_grant()->set_id(id);
    req.mutable_lease_grant()->set_ttl(ttl);
    return Roundtrip(req);
  }
  MvccResult Tick(int64_t now_us) {
    bulwark::internal::Request req;
    req.mutable_tick()->set_now_us(now_us);
    return Roundtrip(req);
  }
  MvccResult Renew(int64_t id, int64_t now_us) {
    bulwark::internal::Request req;
    req.set_time_us(now_us);
    req.mutable_lease_renew()->set_id(id);
    return Roundtrip(req);
  }
  MvccResult PutWithLease(const std::string& k, int64_t lease) {
    bulwark::internal::Request req;
    req.mutable_put()->set_key(k);
    req.mutable_put()->set_value("v");
    req.mutable_put()->set_lease(lease);
    return Roundtrip(req);
  }
};

TEST_F(MvccLeaseTest, ExpiryIsDecidedByTicksAndDeletesAttachedKeys) {
  store_.set_record_events(true);
  ASSERT_TRUE(Grant(7, 10, 1'000'000).status.ok());
  EXPECT_EQ(Grant(7, 10, 1'000'000).status.message(), "etcdserver: lease already exists");
  EXPECT_EQ(Grant(8, kMaxLeaseTtl + 1, 0).status.message(), "etcdserver: too large lease TTL");
  ASSERT_TRUE(PutWithLease("a", 7).status.ok());
  ASSERT_TRUE(PutWithLease("b", 7).status.ok());
  EXPECT_EQ(PutWithLease("c", 99).status.message(), "etcdserver: requested lease not found");
  std::optional<LeaseInfo> info = store_.GetLease(7, 0, true);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->keys, (std::vector<std::string>{"a", "b"}));
  // A local clock far ahead does not expire it; only log time does.
  EXPECT_LE(store_.GetLease(7, 100'000'000, false)->remaining_s, 0);
  ASSERT_TRUE(store_.GetLease(7, 100'000'000, false).has_value());
  Tick(10'999'999);
  EXPECT_EQ(Get("a").kvs_size(), 1);
  // A renewal proposed with a slow clock (5 s) counts from log time:
  // the expiry moves to 11 s + 10 s.
  EXPECT_EQ(Renew(7, 5'000'000).lease_ttl, 10);
  Tick(11'000'000);
  EXPECT_EQ(Get("a").kvs_size(), 1);
  store_.TakeEvents();
  int64_t rev = store_.revision();
  Tick(20'999'998);
  EXPECT_EQ(Get("a").kvs_size(), 1);
  Tick(20'999'999);
  EXPECT_EQ(Get("a").kvs_size(), 0);
  EXPECT_EQ(Get("b").kvs_size(), 0);
  EXPECT_FALSE(store_.GetLease(7, 0, false).has_value());
  EXPECT_EQ(store_.revision(), rev + 1);  // one revision for the lease's keys
  std::vector<mvccpb::Event> ev = store_.TakeEvents();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(ev[0].prev_kv().lease(), 7);
  EXPECT_EQ(Renew(7, 0).status.message(), "etcdserver: requested lease not found");
}

// Renewals that arrived together are one entry: each lease in it is renewed
// as a lone renewal would be, and each gets its own answer.
TEST_F(MvccLeaseTest, ABatchOfRenewalsAnswersEachLease) {
  ASSERT_TRUE(Grant(7, 10, 1'000'000).status.ok());
  ASSERT_TRUE(Grant(8, 30, 1'000'000).status.ok());
  ASSERT_TRUE(PutWithLease("a", 7).status.ok());
  Tick(9'000'000);
  bulwark::internal::Request req;
  req.set_time_us(9'000'000);
  for (int64_t id : {8, 99, 7, 7})
    req.mutable_lease_renew_batch()->add_ids(id);
  MvccResult r = Roundtrip(req);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.lease_ttls, (std::vector<int64_t>{30, -1, 10, 10}));
  // Lease 7 now lasts until 19 s, not 11 s.
  Tick(18'999'999);
  EXPECT_EQ(Get("a").kvs_size(), 1);
  Tick(19'000'000);
  EXPECT_EQ(Get("a").kvs_size(), 0);
  EXPECT_TRUE(store_.GetLease(8, 0, false).has_value());
}

TEST_F(MvccLeaseTest, RevokeAndReattachAndSnapshot) {
  Grant(1, 60, 0);
  Grant(2, 60, 0);
  PutWithLease("k", 1);
  PutWithLease("k", 2);  // moves to lease 2
  EXPECT_TRUE(store_.GetLease(1, 0, true)->keys.empty());
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_EQ(copy.GetLease(2, 0, true)->keys, (std::vector<std::string>{"k"}));
  bulwark::internal::Request req;
  req.mutable_lease_revoke()->set_id(2);
  ASSERT_TRUE(Roundtrip(req).status.ok());
  EXPECT_EQ(Get("k").kvs_size(), 0);
  EXPECT_EQ(Roundtrip(req).status.message(), "etcdserver: requested lease not found");
}

TEST_F(MvccTest, EventsSinceReplaysHistoryInRevisionOrder) {
  Put("a", "1");  // 2
  Put("b", "1");  // 3
  Put("a", "2");  // 4
  Delete("b");    // 5
  std::vector<mvccpb::Event> ev;
  ASSERT_TRUE(store_.EventsSince("a", "z", 3, 100, &ev).ok());
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kv().key(), "b");
  EXPECT_EQ(ev[1].kv().mod_revision(), 4);
  EXPECT_EQ(ev[1].prev_kv().value(), "1");
  EXPECT_EQ(ev[2].type(), mvccpb::Event::DELETE);
  Compact(4);
  ev.clear();
  EXPECT_TRUE(absl::IsOutOfRange(store_.EventsSince("a", "z", 3, 100, &ev)));
}

TEST_F(MvccTest, MemberRecordsMergeAndSurviveSnapshots) {
  bulwark::internal::Request add;
  add.mutable_member_add()->set_id(7);
  add.mutable_member_add()->add_peer_urls("http://10.0.0.7:2380");
  add.mutable_member_add()->set_learner(true);
  uint64_t v0 = store_.members_version();
  ASSERT_TRUE(Roundtrip(add).status.ok());
  EXPECT_GT(store_.members_version(), v0);
  // Publishing a name and client URLs keeps where the member is reached.
  bulwark::internal::Request pub;
  pub.mutable_publish()->set_id(7);
  pub.mutable_publish()->set_name("m7");
  pub.mutable_publish()->add_client_urls("http://10.0.0.7:2379");
  ASSERT_TRUE(Roundtrip(pub).status.ok());
  const auto& m = store_.members().at(7);
  EXPECT_EQ(m.name(), "m7");
  EXPECT_EQ(m.peer_urls(0), "http://10.0.0.7:2380");
  EXPECT_EQ(m.client_urls(0), "http://10.0.0.7:2379");
  EXPECT_TRUE(m.learner());
  bulwark::internal::Request upd;
  upd.mutable_member_update()->set_id(8);
  upd.mutable_member_update()->add_peer_urls("http://x:1");
  EXPECT_EQ(Roundtrip(upd).status.message(), "etcdserver: member not found");
  upd.mutable_member_update()->set_id(7);
  ASSERT_TRUE(Roundtrip(upd).status.ok());
  EXPECT_EQ(store_.members().at(7).peer_urls(0), "http://x:1");
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_EQ(copy.members().at(7).name(), "m7");
}

class MvccIdempotencyTest : public MvccTest {
 protected:
  MvccResult KeyedPut(const std::string& scope, const std::string& key, uint64_t fp,
                      const std::string& k, const std::string& v, int64_t now_us = 0,
                      int64_t retention_us = 0) {
    bulwark::internal::Request req;
    req.set_time_us(now_us);
    req.mutable_idempotency()->set_retention_us(retention_us);
    req.mutable_idempotency()->set_scope(scope);
    req.mutable_idempotency()->set_key(key);
    req.mutable_idempotency()->set_fingerprint(fp);
    req.mutable_put()->set_key(k);
    req.mutable_put()->set_value(v);
    req.mutable_put()->set_prev_kv(true);
    return Roundtrip(req);
  }
};

TEST_F(MvccIdempotencyTest, ARetryGetsTheFirstAnswerAndAppliesNothing) {
  Put("k", "before");
  MvccResult first = KeyedPut("", "op-1", 11, "k", "v1");
  ASSERT_TRUE(first.status.ok());
  EXPECT_FALSE(first.replayed);
  Put("k", "someone else");
  int64_t rev = store_.revision();
  MvccResult again = KeyedPut("", "op-1", 11, "k", "v1");
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.revision, first.revision);
  EXPECT_EQ(again.response.response_put().prev_kv().value(), "before");
  EXPECT_EQ(store_.revision(), rev);  // nothing applied
  EXPECT_EQ(Get("k").kvs(0).value(), "someone else");
  // The same key with another request is refused; another scope is another key.
  MvccResult reused = KeyedPut("", "op-1", 12, "k", "v2");
  EXPECT_TRUE(absl::IsFailedPrecondition(reused.status));
  EXPECT_NE(reused.status.message().find("reused"), absl::string_view::npos);
  EXPECT_FALSE(KeyedPut("tenant-b", "op-1", 12, "k", "v2").replayed);
}

TEST_F(MvccIdempotencyTest, ErrorsAreAnswersToo) {
  bulwark::internal::Request req;
  req.mutable_idempotency()->set_key("grant-1");
  req.mutable_idempotency()->set_fingerprint(5);
  req.mutable_put()->set_key("k");
  req.mutable_put()->set_lease(777);
  MvccResult first = Roundtrip(req);
  EXPECT_EQ(first.status.message(), "etcdserver: requested lease not found");
  MvccResult again = Roundtrip(req);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.status, first.status);
}

// Answers are kept for their own retention (the request's, or the store's
// default), by log time, and never removed sooner: there is no table bound
// to evict them (the member's quota refuses new keyed writes instead).
TEST_F(MvccIdempotencyTest, EachAnswerIsKeptForItsRetentionAndNeverEvicted) {
  store_.set_idempotency_limits({/*retention_us=*/10'000'000});
  // Records are stamped with log time, which Ticks advance.
  auto tick = [&](int64_t now_us) {
    bulwark::internal::Request t;
    t.mutable_tick()->set_now_us(now_us);
    Roundtrip(t);
  };
  tick(1'000'000);
  KeyedPut("", "a", 1, "k", "1");                                 // the default: until 11 s
  KeyedPut("", "b", 1, "k", "2", 0, /*retention_us=*/3'000'000);  // until 4 s
  const uint64_t two = store_.idempotency_bytes();
  EXPECT_GT(two, 0u);
  // Many more keyed writes: every one is kept (once there was a bound of
  // 1,000,000 past which the oldest were forgotten).
  for (int i = 0; i < 5000; ++i)
    KeyedPut("", absl::StrCat("bulk-", i), 1, "bulk", "v", 0, /*retention_us=*/20'000'000);
  EXPECT_EQ(store_.idempotency_records(), 5002u);
  EXPECT_GT(store_.idempotency_bytes(), two + 5000 * 20);
  EXPECT_TRUE(KeyedPut("", "a", 1, "k", "1").replayed);
  EXPECT_TRUE(KeyedPut("", "bulk-0", 1, "bulk", "v").replayed);

  tick(4'500'000);                                        // past b's retention only
  EXPECT_FALSE(KeyedPut("", "b", 1, "k", "2").replayed);  // applied again: a new answer
  EXPECT_TRUE(KeyedPut("", "a", 1, "k", "1").replayed);
  // Kept answers survive a snapshot, expiries, digest and byte count alike.
  MvccStore copy;
  copy.set_idempotency_limits({/*retention_us=*/10'000'000});
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_EQ(copy.idempotency_records(), store_.idempotency_records());
  EXPECT_EQ(copy.idempotency_bytes(), store_.idempotency_bytes());

  tick(11'500'000);  // past a's (and the new b's, 4.5 s + 10 s, not yet)
  EXPECT_FALSE(KeyedPut("", "a", 1, "k", "1").replayed);
  EXPECT_TRUE(KeyedPut("", "b", 1, "k", "2").replayed);
  EXPECT_TRUE(KeyedPut("", "bulk-4999", 1, "bulk", "v").replayed);
  tick(30'000'000);  // everything
  EXPECT_EQ(store_.idempotency_records(), 0u);
  EXPECT_EQ(store_.idempotency_bytes(), 0u);
}

class RecordsTest : public MvccTest {
 protected:
  bulwark::v1::BeginResponse Begin(const std::string& key, const std::string& fp, int64_t now_us,
                                   int64_t ttl_ms = 1000) {
    bulwark::internal::Request req;
    req.set_time_us(now_us);
    auto* b = req.mutable_idem_begin();
    b->set_scope("pay");
    b->set_key(key);
    b->set_fingerprint(fp);
    b->set_lock_ttl_ms(ttl_ms);
    MvccResult r = Roundtrip(req);
    EXPECT_TRUE(r.status.ok()) << r.status;
    bulwark::v1::BeginResponse out;
    out.ParseFromString(r.service_response);
    return out;
  }
  absl::Status Checkpoint(const std::string& key, uint64_t token, const std::string& point,
                          int64_t now_us) {
    bulwark::internal::Request req;
    req.set_time_us(now_us);
    auto* c = req.mutable_idem_checkpoint();
    c->set_scope("pay");
    c->set_key(key);
    c->set_token(token);
    c->set_recovery_point(point);
    c->set_data("d-" + point);
    return Roundtrip(req).status;
  }
  absl::Status Complete(const std::string& key, uint64_t token, const std::string& response) {
    bulwark::internal::Request req;
    auto* c = req.mutable_idem_complete();
    c->set_scope("pay");
    c->set_key(key);
    c->set_token(token);
    c->set_response(response);
    c->set_status(200);
    return Roundtrip(req).status;
  }
};

TEST_F(RecordsTest, BeginInProgressCompletedMismatch) {
  using R = bulwark::v1::BeginResponse;
  R a = Begin("charge-1", "fp", 1'000'000);
  EXPECT_EQ(a.outcome(), R::STARTED);
  EXPECT_GT(a.token(), 0u);
  R b = Begin("charge-1", "fp", 1'200'000);
  EXPECT_EQ(b.outcome(), R::IN_PROGRESS);
  EXPECT_EQ(b.lock_remaining_ms(), 800);
  EXPECT_EQ(Begin("charge-1", "other", 1'200'000).outcome(), R::MISMATCH);
  ASSERT_TRUE(Complete("charge-1", a.token(), "receipt-42").ok());
  R c = Begin("charge-1", "fp", 5'000'000);
  EXPECT_EQ(c.outcome(), R::COMPLETED);
  EXPECT_EQ(c.response(), "receipt-42");
  EXPECT_EQ(c.status(), 200);
  EXPECT_TRUE(absl::IsFailedPrecondition(Complete("charge-1", a.token(), "again")));
}

// A Begin retried with its own idempotency key (the SDK does this after a
// lost reply) gets the first answer again, token included, instead of
// IN_PROGRESS against its own lock.
TEST_F(RecordsTest, AKeyedBeginRetriedGetsItsTokenBack) {
  bulwark::internal::Request req;
  req.set_time_us(1'000'000);
  auto* b = req.mutable_idem_begin();
  b->set_scope("pay");
  b->set_key("order-9");
  b->set_fingerprint("fp");
  b->set_lock_ttl_ms(60'000);
  ASSERT_TRUE(
      AttachIdempotencyKey("/bulwark.v1.Idempotency/Begin", *b, "", "attempt-key", &req).ok());
  MvccResult first = Roundtrip(req);
  MvccResult again = Roundtrip(req);
  bulwark::v1::BeginResponse r1, r2;
  ASSERT_TRUE(r1.ParseFromString(first.service_response));
  ASSERT_TRUE(r2.ParseFromString(again.service_response));
  EXPECT_EQ(r1.outcome(), bulwark::v1::BeginResponse::STARTED);
  EXPECT_EQ(r2.outcome(), bulwark::v1::BeginResponse::STARTED);
  EXPECT_EQ(r2.token(), r1.token());
  EXPECT_FALSE(first.replayed);
  EXPECT_TRUE(again.replayed);
  // Without the key the same Begin meets its own lock.
  EXPECT_EQ(Begin("order-9", "fp", 1'000'001).outcome(), bulwark::v1::BeginResponse::IN_PROGRESS);
}

TEST_F(RecordsTest, AStalledWorkerIsFencedAndItsSuccessorResumes) {
  using R = bulwark::v1::BeginResponse;
  R a = Begin("charge-2", "fp", 1'000'000, /*ttl_ms=*/500);
  ASSERT_TRUE(Checkpoint("charge-2", a.token(), "card-charged", 1'100'000).ok());
  // A stalls past its lock (renewed to 1.6 s by the checkpoint); B takes over.
  R b = Begin("charge-2", "fp", 1'700'000, 500);
  EXPECT_EQ(b.outcome(), R::STARTED);
  EXPECT_TRUE(b.took_over());
  EXPECT_GT(b.token(), a.token());
  EXPECT_EQ(b.recovery_point(), "card-charged");  // resume, do not charge again
  EXPECT_EQ(b.checkpoint_data(), "d-card-charged");
  // A wakes up: its token is stale for everything.
  EXPECT_TRUE(absl::IsFailedPrecondition(Checkpoint("charge-2", a.token(), "x", 1'800'000)));
  EXPECT_TRUE(absl::IsFailedPrecondition(Complete("charge-2", a.token(), "A's receipt")));
  ASSERT_TRUE(Complete("charge-2", b.token(), "B's receipt").ok());
  EXPECT_EQ(store_.GetRecord("pay", "charge-2")->response(), "B's receipt");
}

TEST_F(RecordsTest, ReleaseRetentionListAndSnapshots) {
  using R = bulwark::v1::BeginResponse;
  R a = Begin("r-1", "fp", 0);
  bulwark::internal::Request rel;
  rel.mutable_idem_release()->set_scope("pay");
  rel.mutable_idem_release()->set_key("r-1");
  rel.mutable_idem_release()->set_token(a.token());
  ASSERT_TRUE(Roundtrip(rel).status.ok());
  EXPECT_EQ(store_.GetRecord("pay", "r-1"), nullptr);  // nothing kept: a retry starts over
  EXPECT_EQ(Begin("r-1", "fp", 0).outcome(), R::STARTED);
  Begin("r-2", "fp", 0);
  Begin("s-1", "fp", 0);
  bool more = false;
  EXPECT_EQ(store_.ListRecords("pay", "r-", 10, &more).size(), 2u);
  EXPECT_EQ(store_.ListRecords("pay", "r-", 1, &more).size(), 1u);
  EXPECT_TRUE(more);
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_EQ(copy.records(), 3u);
  // Retention (24 h default) by log time.
  bulwark::internal::Request tick;
  tick.mutable_tick()->set_now_us(int64_t{24} * 3600 * 1'000'000 + 1);
  Roundtrip(tick);
  EXPECT_EQ(store_.records(), 0u);
  bulwark::internal::Request bad;
  bad.mutable_idem_begin()->set_key(std::string(256, 'k'));
  bad.mutable_idem_begin()->set_lock_ttl_ms(1);
  EXPECT_TRUE(absl::IsInvalidArgument(Roundtrip(bad).status));
}

}  // namespace
}  // namespace bw::kv
