// Proves GroupCommitter against a real WAL on a RealDisk (SimDisk is
// single-threaded), in a fresh directory under ::testing::TempDir() that
// each test removes. The committer's append and sync stages run on
// env::Threads. Faults come from FaultyDisk, which delegates to RealDisk and
// wraps every AppendFile it opens so that Sync can be held until released
// (to create overlap deterministically) or made to fail as an fdatasync
// hitting EIO does, and counts Sync calls and the threads that made them.
//
// Many writers mixing Submit, SubmitBatch and Write: every callback runs
// exactly once and never concurrently with another, the indexes handed out
// tile 1..N (a batch gets its last entry's index, its entries consecutive),
// callbacks and on_durable see the log in order, and a reopen of the WAL
// returns every payload at its index with the commit index N.
// Grouping: entries submitted while a sync is held are made durable by a
// handful of syncs, which stats() counts. Durability: no callback runs and
// no Write returns while the sync covering it is held, and each callback
// runs only after a sync that began after its Submit returned OK.
// A lone Write on an idle committer appends and syncs on the caller's
// thread (one sync), with or without the stages running.
// Failure: a failed sync fails every entry in flight with its DATA_LOSS,
// later calls get the same error at once, no sync is attempted after it and
// both stages return. Stop drains what is queued; later calls are
// UNAVAILABLE. An empty batch is INVALID_ARGUMENT and writes nothing.

#include "storage/group_commit.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "env/real/real_disk.h"
#include "env/real/testing/eventually.h"
#include "env/real/thread.h"
#include "raft/types.h"
#include "storage/wal.h"

namespace bw::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kCluster = 0xC1;
constexpr uint64_t kTerm = 3;
constexpr std::chrono::milliseconds kPatience(20000);

using env::testing::Eventually;

// Gives other threads a moment to do what they should not.
void Pause() {
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// RealDisk, with each AppendFile it opens wrapped so that Sync can be held or
// failed, and counted. Thread-safe.
class FaultyDisk final : public env::Disk {
 public:
  // Syncs from now on wait, before reaching the file, until ReleaseSyncs.
  void HoldSyncs() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void ReleaseSyncs() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  // Syncs from now on (including held ones, once released) fail as an
  // fdatasync that hits EIO does.
  void FailSyncs() { fail_ = true; }
  // Only the next Sync fails (a later fdatasync of the same file then
  // succeeds, as Linux reports a writeback error once).
  void FailNextSync() { fail_once_ = true; }

  // Sync calls made, including held and failed ones.
  int syncs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return syncs_;
  }
  // Syncs waiting on the hold.
  int waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }
  // The number (1-based, in call order) of the newest Sync that returned OK.
  int last_durable_sync() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_durable_;
  }
  // The thread of each Sync call, in call order.
  std::vector<std::thread::id> sync_threads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sync_threads_;
  }
  // Append calls made on wrapped files.
  int appends() const { return appends_.load(); }

  [[nodiscard]] absl::StatusOr<std::unique_ptr<env::AppendFile>> OpenAppend(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<env::AppendFile>> f = base_.OpenAppend(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<env::AppendFile>(new File(*this, path, std::move(*f)));
  }
  [[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    return base_.ReadFile(path);
  }
  [[nodiscard]] absl::Status WriteFileAtomic(const std::string& path,
                                             std::string_view data) override {
    return base_.WriteFileAtomic(path, data);
  }
  [[nodiscard]] absl::Status Truncate(const std::string& path, uint64_t size) override {
    return base_.Truncate(path, size);
  }
  [[nodiscard]] absl::Status Remove(const std::string& path) override { return base_.Remove(path); }
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List(const std::string& dir) override {
    return base_.List(dir);
  }
  [[nodiscard]] absl::Status CreateDir(const std::string& dir) override {
    return base_.CreateDir(dir);
  }
  bool Exists(const std::string& path) override { return base_.Exists(path); }
  [[nodiscard]] absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return base_.FileSize(path);
  }

 private:
  class File final : public env::AppendFile {
   public:
    File(FaultyDisk& disk, std::string path, std::unique_ptr<env::AppendFile> base)
        : disk_(disk), path_(std::move(path)), base_(std::move(base)) {}
    [[nodiscard]] absl::Status Append(std::string_view data) override {
      ++disk_.appends_;
      return base_->Append(data);
    }
    [[nodiscard]] absl::Status Sync() override { return disk_.SyncFile(path_, *base_); }
    uint64_t Size() const override { return base_->Size(); }
    [[nodiscard]] absl::Status Preallocate(uint64_t total_bytes) override {
      return base_->Preallocate(total_bytes);
    }

   private:
    FaultyDisk& disk_;
    const std::string path_;
    std::unique_ptr<env::AppendFile> base_;
  };

  absl::Status SyncFile(const std::string& path, env::AppendFile& file) {
    int n = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      n = ++syncs_;
      sync_threads_.push_back(std::this_thread::get_id());
      ++waiting_;
      cv_.wait(lock, [&] { return !held_; });
      --waiting_;
    }
    if (fail_.load() || fail_once_.exchange(false)) {
      return absl::DataLossError(
          absl::StrCat("fdatasync ", path, ": Input/output error (injected)"));
    }
    absl::Status s = file.Sync();
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      last_durable_ = std::max(last_durable_, n);
    }
    return s;
  }

  env::RealDisk base_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int syncs_ = 0;
  int waiting_ = 0;
  int last_durable_ = 0;
  std::vector<std::thread::id> sync_threads_;
  std::atomic<bool> fail_{false};
  std::atomic<bool> fail_once_{false};
  std::atomic<int> appends_{0};
};

// A committer's append and sync stages, each on its own env::Thread. When
// destroyed (also when a test fails part-way) releases held syncs, stops the
// committer and joins both.
class Stages {
 public:
  Stages(GroupCommitter& gc, FaultyDisk& disk)
      : gc_(gc),
        disk_(disk),
        run_(std::make_unique<env::Thread>("gc-append",
                                           [this] {
                                             gc_.Run();
                                             run_returned_ = true;
                                           })),
        sync_(std::make_unique<env::Thread>("gc-sync", [this] {
          {
            std::lock_guard<std::mutex> lock(mu_);
            sync_id_ = std::this_thread::get_id();
          }
          gc_.RunSyncer();
          sync_returned_ = true;
        })) {}
  ~Stages() {
    disk_.ReleaseSyncs();
    gc_.Stop();
    Join();
  }
  Stages(const Stages&) = delete;
  Stages& operator=(const Stages&) = delete;

  void Join() {
    run_.reset();
    sync_.reset();
  }
  // Both Run and RunSyncer have returned.
  bool returned() const { return run_returned_.load() && sync_returned_.load(); }
  std::thread::id sync_thread() {
    std::lock_guard<std::mutex> lock(mu_);
    return sync_id_;
  }

 private:
  GroupCommitter& gc_;
  FaultyDisk& disk_;
  std::atomic<bool> run_returned_{false};
  std::atomic<bool> sync_returned_{false};
  std::mutex mu_;
  std::thread::id sync_id_;
  // Last, so that they start once everything above is built.
  std::unique_ptr<env::Thread> run_;
  std::unique_ptr<env::Thread> sync_;
};

// What a callback was given, and how often it ran. Thread-safe.
class Outcome {
 public:
  GroupCommitter::Done Callback() {
    return [this](absl::StatusOr<LogIndex> r) {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::move(r);
      ++calls_;
    };
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  absl::StatusOr<LogIndex> result() const {
    std::lock_guard<std::mutex> lock(mu_);
    return result_;
  }

 private:
  mutable std::mutex mu_;
  int calls_ = 0;
  absl::StatusOr<LogIndex> result_ = absl::UnknownError("callback not run");
};

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "bw_group_commit_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    root_ = tmpl;
    dir_ = root_ + "/wal";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  WalOptions Opts() const {
    WalOptions o;
    o.cluster_id = kCluster;
    o.node_id = NodeId(1);
    o.segment_bytes = segment_bytes_;
    return o;
  }
  std::unique_ptr<Wal> OpenWal() {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(disk_, dir_, Opts(), LogIndex(0));
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(wal).value() : nullptr;
  }
  // Reopens the log (the committer's Wal must be closed) and returns it all.
  WalRecovered Reopen() {
    std::unique_ptr<Wal> wal = OpenWal();
    return wal ? wal->TakeRecovered() : WalRecovered{};
  }

  std::string root_;
  std::string dir_;
  uint64_t segment_bytes_ = 1 << 20;
  FaultyDisk disk_;
};

// One writer's call: what it wrote and what it got back.
struct Op {
  std::vector<std::string> payloads;
  std::atomic<int> calls{0};
  absl::StatusOr<LogIndex> result = absl::UnknownError("not completed");
  bool submitted = false;  // Submit/SubmitBatch rather than Write
};

class GroupCommitManyWritersTest : public GroupCommitTest,
                                   public ::testing::WithParamInterface<size_t> {};

// With the default bound on groups waiting for the sync stage, and with a
// bound of 1, which the append stage meets all the time (a leading Write
// must never overtake a group that waits there).
INSTANTIATE_TEST_SUITE_P(GroupsAhead, GroupCommitManyWritersTest, ::testing::Values(4, 1));

TEST_P(GroupCommitManyWritersTest, EveryIndexOnceAndTheLogHoldsEveryPayloadInOrder) {
  constexpr int kWriters = 8;
  constexpr int kOpsEach = 500;
  segment_bytes_ = 64 << 10;  // the log rotates several times
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);

  std::mutex order_mu;
  std::vector<uint64_t> durable_order;   // on_durable, entry by entry
  std::vector<uint64_t> callback_order;  // Submit callbacks, as they ran
  std::atomic<int> in_callback{0};
  std::atomic<int> overlapping{0};
  GroupCommitter gc(
      *wal, Term(kTerm), 64 << 20,
      [&](const std::vector<raft::Entry>& group) {
        std::lock_guard<std::mutex> lock(order_mu);
        for (const raft::Entry& e : group)
          durable_order.push_back(e.index.value());
      },
      4 << 20, GetParam());

  std::vector<Op> ops(kWriters * kOpsEach);
  {
    Stages stages(gc, disk_);
    std::vector<std::unique_ptr<env::Thread>> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.push_back(std::make_unique<env::Thread>("gc-writer", [&, w] {
        for (int i = 0; i < kOpsEach; ++i) {
          Op& op = ops[w * kOpsEach + i];
          const int kind = (i + w) % 3;
          const int count = kind == 0 ? 1 : 1 + (i * 7 + w) % 5;
          for (int k = 0; k < count; ++k)
            op.payloads.push_back(absl::StrCat("w", w, "-op", i, "-", k));
          if (kind == 2) {
            op.result = gc.Write(op.payloads);
            ++op.calls;
            continue;
          }
          op.submitted = true;
          GroupCommitter::Done done = [&, o = &op](absl::StatusOr<LogIndex> r) {
            if (in_callback.fetch_add(1) != 0) ++overlapping;
            if (r.ok()) {
              std::lock_guard<std::mutex> lock(order_mu);
              callback_order.push_back(r->value());
            }
            o->result = std::move(r);
            ++o->calls;
            in_callback.fetch_sub(1);
          };
          if (kind == 0) {
            gc.Submit(op.payloads[0], std::move(done));
          } else {
            gc.SubmitBatch(op.payloads, std::move(done));
          }
        }
      }));
    }
    writers.clear();  // joins: every Write has returned
    gc.Stop();
    stages.Join();  // Stop drains the queue: every callback has run
    EXPECT_TRUE(stages.returned());
  }

  EXPECT_EQ(overlapping.load(), 0) << "callbacks ran concurrently";
  // Each call completed once, OK; its entries end at the index it got.
  std::map<uint64_t, std::string> want;  // index -> payload
  uint64_t total = 0;
  uint64_t bytes = 0;
  for (size_t n = 0; n < ops.size(); ++n) {
    const Op& op = ops[n];
    SCOPED_TRACE(absl::StrCat("op ", n, " (", op.payloads.front(), ")"));
    ASSERT_EQ(op.calls.load(), 1);
    ASSERT_TRUE(op.result.ok()) << op.result.status();
    const uint64_t last = op.result->value();
    ASSERT_GE(last, op.payloads.size());
    for (size_t k = 0; k < op.payloads.size(); ++k) {
      const uint64_t index = last - op.payloads.size() + 1 + k;
      EXPECT_TRUE(want.emplace(index, op.payloads[k]).second) << "index " << index << " twice";
      bytes += op.payloads[k].size();
    }
    total += op.payloads.size();
  }
  // The indexes handed out are exactly 1..N.
  ASSERT_EQ(want.size(), total);
  EXPECT_EQ(want.begin()->first, 1u);
  EXPECT_EQ(want.rbegin()->first, total);

  // Made durable, and called back, in log order.
  std::vector<uint64_t> all(total);
  for (uint64_t i = 0; i < total; ++i)
    all[i] = i + 1;
  EXPECT_EQ(durable_order, all);
  EXPECT_TRUE(std::is_sorted(callback_order.begin(), callback_order.end()));
  EXPECT_EQ(std::adjacent_find(callback_order.begin(), callback_order.end()), callback_order.end());

  const GroupCommitStats stats = gc.stats();
  EXPECT_EQ(stats.entries, total);
  EXPECT_EQ(stats.bytes, bytes);
  EXPECT_GE(stats.groups, 1u);
  EXPECT_LE(stats.syncs, stats.groups);
  EXPECT_LE(stats.largest_group, total);
  EXPECT_LE(static_cast<uint64_t>(disk_.syncs()), total);

  wal.reset();
  WalRecovered r = Reopen();
  ASSERT_EQ(r.entries.size(), total);
  EXPECT_GT(r.segments.size(), 2u);
  EXPECT_THAT(r.torn_tail, IsEmpty());
  EXPECT_EQ(r.hard_state.commit, LogIndex(total));
  EXPECT_EQ(r.hard_state.term, Term(kTerm));
  for (uint64_t i = 0; i < total; ++i) {
    const raft::Entry& e = r.entries[i];
    ASSERT_EQ(e.index, LogIndex(i + 1));
    EXPECT_EQ(e.term, Term(kTerm));
    EXPECT_EQ(e.data, want[i + 1]) << "index " << i + 1;
  }
}

TEST_F(GroupCommitTest, OneSyncCoversEveryEntryQueuedWhileASyncIsInFlight) {
  constexpr int kEntries = 200;
  constexpr int kThreads = 4;
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  std::mutex mu;
  std::set<uint64_t> indexes;
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  auto callback = [&](absl::StatusOr<LogIndex> r) {
    if (r.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      indexes.insert(r->value());
    } else {
      ++failed;
    }
    ++done;
  };

  Stages stages(gc, disk_);
  disk_.HoldSyncs();
  gc.Submit("first", callback);
  ASSERT_TRUE(Eventually([&] { return disk_.waiting() == 1; }));
  {
    std::vector<std::unique_ptr<env::Thread>> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.push_back(std::make_unique<env::Thread>("gc-writer", [&, t] {
        for (int i = 1 + t; i < kEntries; i += kThreads)
          gc.Submit(absl::StrCat("entry ", i), callback);
      }));
    }
  }  // joins: all submitted
  EXPECT_EQ(done.load(), 0);
  disk_.ReleaseSyncs();
  ASSERT_TRUE(Eventually([&] { return done.load() == kEntries; }));
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(indexes.size(), static_cast<size_t>(kEntries));
  EXPECT_EQ(*indexes.begin(), 1u);
  EXPECT_EQ(*indexes.rbegin(), static_cast<uint64_t>(kEntries));

  const int syncs = disk_.syncs();
  EXPECT_LE(syncs, 10) << "200 entries queued behind one sync should need a handful";
  const GroupCommitStats stats = gc.stats();
  EXPECT_EQ(stats.syncs, static_cast<uint64_t>(syncs));
  EXPECT_EQ(stats.entries, static_cast<uint64_t>(kEntries));
  EXPECT_LE(stats.groups, static_cast<uint64_t>(kEntries / 2));
  EXPECT_GT(stats.largest_group, 1u);
}

TEST_F(GroupCommitTest, NoCallbackRunsAndNoWriteReturnsBeforeItsEntryIsDurable) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  std::atomic<int> done{0};
  std::atomic<int> early{0};  // called back before a sync begun after its Submit returned OK
  std::atomic<int> failed{0};
  // Submits with a callback that checks a sync begun after the Submit was
  // made has completed.
  auto submit = [&](std::vector<std::string> payloads) {
    const int syncs_before = disk_.syncs();
    gc.SubmitBatch(std::move(payloads), [&, syncs_before](absl::StatusOr<LogIndex> r) {
      if (!r.ok()) ++failed;
      if (disk_.last_durable_sync() <= syncs_before) ++early;
      ++done;
    });
  };

  std::atomic<bool> wrote{false};
  absl::StatusOr<LogIndex> written = absl::UnknownError("not returned");
  std::unique_ptr<env::Thread> writer;  // joined after the stages are stopped
  Stages stages(gc, disk_);
  disk_.HoldSyncs();
  const int appends_before = disk_.appends();
  submit({"a"});
  ASSERT_TRUE(Eventually([&] { return disk_.waiting() == 1; }));
  // The entry is written; only its sync is held.
  EXPECT_GT(disk_.appends(), appends_before);
  for (int i = 0; i < 20; ++i)
    submit({absl::StrCat("b", i), absl::StrCat("c", i)});
  writer = std::make_unique<env::Thread>("gc-writer", [&] {
    written = gc.Write({"w"});
    wrote = true;
  });
  for (int i = 0; i < 5; ++i) {
    Pause();
    EXPECT_EQ(done.load(), 0) << "called back while the sync is held";
    EXPECT_FALSE(wrote.load()) << "Write returned while the sync is held";
  }
  EXPECT_EQ(gc.stats().entries, 0u);

  disk_.ReleaseSyncs();
  ASSERT_TRUE(Eventually([&] { return done.load() == 21 && wrote.load(); }));
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(early.load(), 0);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_GE(written->value(), 2u);
  EXPECT_EQ(gc.stats().entries, 42u);
}

TEST_F(GroupCommitTest, LoneWriteOnAnIdleCommitterAppendsAndSyncsOnTheCallersThread) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  ASSERT_EQ(disk_.syncs(), 0);

  // No stages at all: only the writer itself can make it durable.
  std::atomic<bool> wrote{false};
  absl::StatusOr<LogIndex> first = absl::UnknownError("not returned");
  std::thread::id writer_id;
  {
    env::Thread writer("gc-writer", [&] {
      writer_id = std::this_thread::get_id();
      first = gc.Write({"solo"});
      wrote = true;
    });
    if (!Eventually([&] { return wrote.load(); }, std::chrono::milliseconds(5000))) {
      ADD_FAILURE() << "a lone Write waited for the stages";
      Stages rescue(gc, disk_);  // Stop drains the queue: the Write returns
    }
  }
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, LogIndex(1));
  EXPECT_EQ(disk_.syncs(), 1);
  ASSERT_EQ(disk_.sync_threads().size(), 1u);
  EXPECT_EQ(disk_.sync_threads()[0], writer_id);

  // With the stages running, an idle committer still lets the writer lead.
  {
    Stages stages(gc, disk_);
    absl::StatusOr<LogIndex> second = gc.Write({"a", "b", "c"});
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(*second, LogIndex(4));
    EXPECT_EQ(disk_.syncs(), 2);
    ASSERT_EQ(disk_.sync_threads().size(), 2u);
    EXPECT_EQ(disk_.sync_threads()[1], std::this_thread::get_id());
  }
  const GroupCommitStats stats = gc.stats();
  EXPECT_EQ(stats.syncs, 2u);
  EXPECT_EQ(stats.groups, 2u);
  EXPECT_EQ(stats.entries, 4u);
  EXPECT_EQ(stats.largest_group, 3u);

  wal.reset();
  WalRecovered r = Reopen();
  ASSERT_EQ(r.entries.size(), 4u);
  EXPECT_EQ(r.entries[0].data, "solo");
  EXPECT_EQ(r.entries[3].data, "c");
  EXPECT_EQ(r.hard_state.commit, LogIndex(4));
}

TEST_F(GroupCommitTest, FailedSyncFailsEverythingInFlightAndIsSticky) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  Outcome a, b, c;
  std::atomic<bool> wrote{false};
  absl::StatusOr<LogIndex> written = absl::UnknownError("not returned");
  {
    std::unique_ptr<env::Thread> writer;  // joined after the stages are stopped
    Stages stages(gc, disk_);
    disk_.FailSyncs();
    disk_.HoldSyncs();
    gc.Submit("a", a.Callback());
    ASSERT_TRUE(Eventually([&] { return disk_.waiting() == 1; }));
    gc.Submit("b", b.Callback());
    gc.SubmitBatch({"c1", "c2"}, c.Callback());
    writer = std::make_unique<env::Thread>("gc-writer", [&] {
      written = gc.Write({"w"});
      wrote = true;
    });
    Pause();  // lets the Write queue (it fails the same way if it comes later)
    EXPECT_EQ(a.calls() + b.calls() + c.calls(), 0);
    disk_.ReleaseSyncs();
    ASSERT_TRUE(Eventually(
        [&] { return a.calls() == 1 && b.calls() == 1 && c.calls() == 1 && wrote.load(); }));

    const absl::Status failed = a.result().status();
    ASSERT_TRUE(absl::IsDataLoss(failed)) << failed;
    EXPECT_THAT(failed.message(), HasSubstr("fdatasync " + dir_));
    EXPECT_THAT(failed.message(), HasSubstr("(injected)"));
    EXPECT_EQ(b.result().status(), failed);
    EXPECT_EQ(c.result().status(), failed);
    EXPECT_EQ(written.status(), failed);

    // Later calls fail at once (the callback runs before Submit returns),
    // with the same error.
    Outcome later;
    gc.Submit("later", later.Callback());
    EXPECT_EQ(later.calls(), 1);
    EXPECT_EQ(later.result().status(), failed);
    Outcome later_batch;
    gc.SubmitBatch({"x", "y"}, later_batch.Callback());
    EXPECT_EQ(later_batch.calls(), 1);
    EXPECT_EQ(later_batch.result().status(), failed);
    EXPECT_EQ(gc.Write({"later"}).status(), failed);

    // Both stages return on their own, without Stop.
    EXPECT_TRUE(Eventually([&] { return stages.returned(); }))
        << "Run/RunSyncer still running after a failed sync";
    EXPECT_EQ(a.calls() + b.calls() + c.calls() + later.calls() + later_batch.calls(), 5);
  }
  // Nothing was synced after the failure.
  EXPECT_EQ(disk_.syncs(), 1);
  EXPECT_EQ(disk_.last_durable_sync(), 0);
  const GroupCommitStats stats = gc.stats();
  EXPECT_EQ(stats.syncs, 0u);
  EXPECT_EQ(stats.entries, 0u);
}

// Documented ("Run ... returns ... after a failure"; "RunSyncer returns once
// the append stage has returned") but not so: when the failed sync is a
// lone Write's own, FailQueued records failed_, but Run waits in work_.wait
// for a queued entry or Stop (the predicate ignores failed_), and no entry
// is ever queued again (Enqueue refuses them). Both stages keep running
// until Stop. (When the append stage's own sync fails it breaks out and
// both return, as FailedSyncFailsEverythingInFlightAndIsSticky shows.)
TEST_F(GroupCommitTest, FailedSyncOfALoneWriteEndsBothStages) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  Stages stages(gc, disk_);
  disk_.FailSyncs();
  absl::StatusOr<LogIndex> r = gc.Write({"lone"});
  ASSERT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("(injected)"));
  Outcome later;
  gc.Submit("later", later.Callback());
  EXPECT_EQ(later.calls(), 1);
  EXPECT_EQ(later.result().status(), r.status());
  EXPECT_TRUE(Eventually([&] { return stages.returned(); }, std::chrono::milliseconds(3000)))
      << "Run/RunSyncer still running after a failed sync";
  EXPECT_EQ(disk_.syncs(), 1);
}

TEST_F(GroupCommitTest, StopDrainsQueuedWorkAndRefusesLaterCalls) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  std::vector<std::unique_ptr<Outcome>> queued;
  for (int i = 0; i < 12; ++i)
    queued.push_back(std::make_unique<Outcome>());
  {
    Stages stages(gc, disk_);
    disk_.HoldSyncs();
    gc.Submit("p0", queued[0]->Callback());
    ASSERT_TRUE(Eventually([&] { return disk_.waiting() == 1; }));
    for (int i = 1; i < 11; ++i)
      gc.Submit(absl::StrCat("p", i), queued[i]->Callback());
    gc.SubmitBatch({"p11", "p12", "p13"}, queued[11]->Callback());
    gc.Stop();

    Outcome after;
    gc.Submit("after", after.Callback());
    EXPECT_EQ(after.calls(), 1);
    EXPECT_TRUE(absl::IsUnavailable(after.result().status())) << after.result().status();
    Outcome after_batch;
    gc.SubmitBatch({"x", "y"}, after_batch.Callback());
    EXPECT_EQ(after_batch.calls(), 1);
    EXPECT_TRUE(absl::IsUnavailable(after_batch.result().status()))
        << after_batch.result().status();
    const absl::StatusOr<LogIndex> write_after = gc.Write({"after"});
    EXPECT_TRUE(absl::IsUnavailable(write_after.status())) << write_after.status();

    for (const auto& o : queued)
      EXPECT_EQ(o->calls(), 0);
    disk_.ReleaseSyncs();
    stages.Join();  // returns once the queue is drained
    EXPECT_TRUE(stages.returned());
  }
  for (int i = 0; i < 11; ++i) {
    EXPECT_EQ(queued[i]->calls(), 1) << i;
    ASSERT_TRUE(queued[i]->result().ok()) << i << ": " << queued[i]->result().status();
    EXPECT_EQ(*queued[i]->result(), LogIndex(i + 1)) << i;
  }
  EXPECT_EQ(queued[11]->calls(), 1);
  ASSERT_TRUE(queued[11]->result().ok()) << queued[11]->result().status();
  EXPECT_EQ(*queued[11]->result(), LogIndex(14));
  EXPECT_EQ(gc.stats().entries, 14u);

  wal.reset();
  WalRecovered r = Reopen();
  ASSERT_EQ(r.entries.size(), 14u);
  for (int i = 0; i < 14; ++i)
    EXPECT_EQ(r.entries[i].data, absl::StrCat("p", i));
  EXPECT_EQ(r.hard_state.commit, LogIndex(14));
}

TEST_F(GroupCommitTest, EmptyBatchIsInvalidArgumentAndWritesNothing) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  Stages stages(gc, disk_);
  const int appends_before = disk_.appends();

  Outcome empty;
  gc.SubmitBatch({}, empty.Callback());
  EXPECT_EQ(empty.calls(), 1);
  EXPECT_TRUE(absl::IsInvalidArgument(empty.result().status())) << empty.result().status();
  const absl::StatusOr<LogIndex> write_empty = gc.Write({});
  EXPECT_TRUE(absl::IsInvalidArgument(write_empty.status())) << write_empty.status();
  Pause();
  EXPECT_EQ(disk_.appends(), appends_before);
  EXPECT_EQ(disk_.syncs(), 0);
  EXPECT_EQ(gc.stats().entries, 0u);

  // Not sticky: the next entry gets index 1.
  const absl::StatusOr<LogIndex> next = gc.Write({"next"});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, LogIndex(1));
}

// Documented ("While one group is being synced the next is encoded and
// written, so the disk is kept busy") but not so: the sync stage never gets
// a group. Run hands a group to RunSyncer only if, when its append is done,
// a sync is under way (syncing_) or groups wait (sync_queue_). But every
// sync is made by Run itself (inline, while it appends nothing) or by a
// leading Write (which holds wal_owner_, so Run cannot append meanwhile),
// and sync_queue_ is only ever filled by Run. So Run always syncs inline:
// appends and syncs alternate on one thread and RunSyncer idles. Here the
// next entry is not written while the first one's sync is held.
TEST_F(GroupCommitTest, NextGroupIsWrittenWhileThePreviousIsBeingSynced) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  GroupCommitter gc(*wal, Term(kTerm));
  Outcome first, second;
  Stages stages(gc, disk_);
  disk_.HoldSyncs();
  gc.Submit("first", first.Callback());
  ASSERT_TRUE(Eventually([&] { return disk_.waiting() == 1; }));
  const int appends = disk_.appends();
  gc.Submit("second", second.Callback());
  EXPECT_TRUE(
      Eventually([&] { return disk_.appends() > appends; }, std::chrono::milliseconds(3000)))
      << "the second entry waited for the first one's sync before being written";
  disk_.ReleaseSyncs();
  ASSERT_TRUE(Eventually([&] { return first.calls() == 1 && second.calls() == 1; }));
  EXPECT_EQ(*first.result(), LogIndex(1));
  EXPECT_EQ(*second.result(), LogIndex(2));
  // The sync stage made at least one of the syncs.
  const std::vector<std::thread::id> threads = disk_.sync_threads();
  EXPECT_NE(std::find(threads.begin(), threads.end(), stages.sync_thread()), threads.end());
}

// Documented ("a failed append or sync stops the committer for good";
// RunSyncer: "After a failed sync nothing more is synced (a later fdatasync
// may report success for pages that were dropped)") but not so when the
// append stage's own (inline) sync fails: Run completes the group with the
// error, then clears syncing_ under the lock, releases it, and only then
// calls FailQueued, which records failed_. A Write arriving in between finds
// the committer idle and not failed, leads, appends after the lost group and
// syncs again; that sync succeeds and the Write is acknowledged although
// the group before it was not made durable. The window is a few
// microseconds: the writer is started from the failed entry's callback and
// swept across it with a short spin; a few percent of rounds hit it.
TEST_F(GroupCommitTest, NoWriteIsSyncedOrAcknowledgedAfterAFailedSync) {
  constexpr int kRounds = 1000;
  segment_bytes_ = 4096;
  int synced_after = 0;
  int acknowledged = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::string dir = absl::StrCat(root_, "/round", round);
    FaultyDisk disk;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(disk, dir, Opts(), LogIndex(0));
    ASSERT_TRUE(wal.ok()) << wal.status();
    GroupCommitter gc(**wal, Term(kTerm));
    std::atomic<bool> go{false};
    absl::StatusOr<LogIndex> written = absl::UnknownError("not returned");
    const auto spin = std::chrono::nanoseconds(250 * (round % 10));
    {
      std::unique_ptr<env::Thread> writer;
      Stages stages(gc, disk);
      writer = std::make_unique<env::Thread>("gc-writer", [&] {
        while (!go.load()) {
        }
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < spin) {
        }
        written = gc.Write({"after"});
      });
      disk.FailNextSync();
      gc.Submit("lost", [&](absl::StatusOr<LogIndex> r) {
        EXPECT_FALSE(r.ok());
        go = true;
      });
      writer.reset();
    }
    if (disk.syncs() > 1) ++synced_after;
    if (written.ok()) ++acknowledged;
  }
  EXPECT_EQ(synced_after, 0) << "rounds with a sync after the failed one, of " << kRounds;
  EXPECT_EQ(acknowledged, 0) << "rounds that acknowledged a Write after the failed sync, of "
                             << kRounds;
}

// Regression (found by the SIGKILL crash test as two acknowledged writes
// missing from the state): a group that has been appended and waits for
// room in the sync stage's queue still owns the log. A Write arriving then,
// with the sync stage idle, must queue behind it, not lead: a leader would
// append, sync and complete later entries first, and whoever applies the
// entries in order would skip the waiting group's.
TEST_F(GroupCommitTest, ALeaderNeverOvertakesAGroupWaitingForTheSyncStage) {
  std::unique_ptr<Wal> wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  std::mutex order_mu;
  std::vector<uint64_t> durable_order;
  GroupCommitter gc(
      *wal, Term(kTerm), 64 << 20,
      [&](const std::vector<raft::Entry>& group) {
        std::lock_guard<std::mutex> lock(order_mu);
        for (const raft::Entry& e : group)
          durable_order.push_back(e.index.value());
      },
      4 << 20, /*max_groups_ahead=*/1);
  std::unique_ptr<env::Thread> late_writer;
  std::atomic<bool> late_done{false};
  absl::StatusOr<LogIndex> late = absl::UnknownError("not returned");
  std::atomic<bool> hooked{false};
  gc.SetWaitingForRoomHookForTest([&] {
    if (hooked.exchange(true)) return;
    // The group in hand waits; let the sync stage finish everything ahead
    // of it, so that it is idle, then a Write comes.
    disk_.ReleaseSyncs();
    ASSERT_TRUE(Eventually([&] { return gc.stats().groups == 2; }));
    late_writer = std::make_unique<env::Thread>("gc-late", [&] {
      late = gc.Write({"late"});
      late_done = true;
    });
    // It either queued (correct) or led and finished (the bug).
    ASSERT_TRUE(Eventually([&] { return gc.queued() == 1 || late_done.load(); }));
  });
  Outcome a, b, c;
  {
    Stages stages(gc, disk_);
    disk_.HoldSyncs();
    gc.Submit("a", a.Callback());  // taken by the sync stage, held there
    ASSERT_TRUE(Eventually([&] { return disk_.waiting() == 1; }));
    int appends = disk_.appends();
    gc.Submit("b", b.Callback());  // waits in the sync stage's queue (room for 1)
    ASSERT_TRUE(Eventually([&] { return disk_.appends() > appends; }));
    appends = disk_.appends();
    gc.Submit("c", c.Callback());  // appended, then finds no room: the hook
    ASSERT_TRUE(Eventually([&] { return disk_.appends() > appends; }));
    ASSERT_TRUE(Eventually([&] { return c.calls() == 1 && late_done.load(); }))
        << "c " << c.calls() << " late " << late_done.load() << " groups " << gc.stats().groups
        << " queued " << gc.queued() << " waiting syncs " << disk_.waiting() << " hooked "
        << hooked.load();
    late_writer.reset();
  }
  ASSERT_TRUE(hooked.load());
  EXPECT_EQ(*a.result(), LogIndex(1));
  EXPECT_EQ(*b.result(), LogIndex(2));
  EXPECT_EQ(*c.result(), LogIndex(3));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(*late, LogIndex(4));
  EXPECT_EQ(durable_order, (std::vector<uint64_t>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace bw::storage
