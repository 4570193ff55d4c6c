// Proves RocksState against real RocksDB in a fresh directory per test (under
// ::testing::TempDir(), removed afterwards). Commit writes and deletes user
// keys and client seqs with the applied index, which survives a close and
// reopen; a commit at or below the applied index is FAILED_PRECONDITION and
// writes nothing. ForEach sees user keys only, in byte order; client ids come
// back in numeric order. A snapshot created from one store verifies to its
// raft metadata and installs into another store with different content,
// which then holds exactly the source's keys, seqs and applied index, also
// after a reopen. VerifySnapshot is run against a byte flipped in every
// checkpoint file and in every byte of the metadata file, and against a
// missing and an extra file: each is DATA_LOSS naming the file, and
// InstallSnapshot of such a snapshot leaves the state alone. Crash safety is
// shown with the fault_point hook, which stops the operation where a crash
// would: stopped before the pointer switch, a reopen finds the old state;
// after it, the new one; either way the leftover generation is removed. A
// leftover built by hand is ignored and removed the same way. Check reports
// a good store's applied index and counts, and refuses a directory that is
// not a store, a malformed pointer, an undecodable applied index (which Open
// refuses too) and a damaged SST file.
#include "storage/rocks_state.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "env/real/real_disk.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace bw::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

StateBatch Batch(uint64_t applied, std::vector<StateWrite> writes,
                 std::vector<std::pair<uint64_t, uint64_t>> seqs = {}) {
  return StateBatch{LogIndex(applied), std::move(writes), std::move(seqs)};
}

StateWrite Put(std::string key, std::string value) {
  return StateWrite{std::move(key), std::move(value)};
}

StateWrite Del(std::string key) {
  return StateWrite{std::move(key), std::nullopt};
}

raft::SnapshotMeta Meta(uint64_t index, uint64_t term) {
  raft::SnapshotMeta meta;
  meta.index = LogIndex(index);
  meta.term = Term(term);
  meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  meta.conf.learners = {NodeId(4)};
  return meta;
}

std::map<std::string, std::string> Contents(const RocksState& state) {
  std::map<std::string, std::string> out;
  absl::Status s = state.ForEach(
      [&](std::string_view k, std::string_view v) { out.emplace(std::string(k), std::string(v)); });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> Seqs(const RocksState& state) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  absl::Status s = state.ForEachClientSeq([&](uint64_t c, uint64_t q) { out.emplace_back(c, q); });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::vector<std::string> Listing(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = env::RealDisk().List(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  return names.ok() ? *names : std::vector<std::string>{};
}

std::string ReadAll(const std::string& path) {
  absl::StatusOr<std::string> data = env::RealDisk().ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *data : "";
}

// Every file in `dir`, name -> contents.
std::map<std::string, std::string> DirContents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const std::string& name : Listing(dir))
    out[name] = ReadAll(absl::StrCat(dir, "/", name));
  return out;
}

// Writes a new file and renames it over `path`: SST files of a snapshot are
// hard links shared with a live database, which must not change with them.
void Replace(const std::string& path, const std::string& data) {
  ASSERT_TRUE(env::RealDisk().WriteFileAtomic(path, data).ok());
}

class RocksStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "bw_rocks_state_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string Path(const std::string& name) const { return absl::StrCat(root_, "/", name); }

  std::unique_ptr<RocksState> MustOpen(const std::string& dir, RocksStateOptions opts = {}) {
    absl::StatusOr<std::unique_ptr<RocksState>> state = RocksState::Open(dir, std::move(opts));
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? std::move(*state) : nullptr;
  }

  // A store at applied index 7 with three keys and two clients, and a
  // snapshot of it at Path("snap").
  std::unique_ptr<RocksState> SourceWithSnapshot() {
    std::unique_ptr<RocksState> src = MustOpen(Path("src"));
    EXPECT_TRUE(src->Commit(Batch(3, {Put("apple", "red"), Put("kiwi", "green")}, {{1, 1}})).ok());
    EXPECT_TRUE(
        src->Commit(Batch(7, {Put("banana", "yellow"), Put("plum", "x"), Del("plum")}, {{2, 5}}))
            .ok());
    absl::Status s = src->CreateSnapshot(Path("snap"), Meta(7, 2));
    EXPECT_TRUE(s.ok()) << s;
    return src;
  }

  // A store at applied index 4 whose content differs from the source's.
  std::unique_ptr<RocksState> OtherStore(RocksStateOptions opts = {}) {
    std::unique_ptr<RocksState> dst = MustOpen(Path("dst"), std::move(opts));
    EXPECT_TRUE(dst->Commit(Batch(4, {Put("apple", "old"), Put("zebra", "z")}, {{9, 9}})).ok());
    return dst;
  }

  std::string root_;
};

const std::map<std::string, std::string> kSourceContents = {
    {"apple", "red"}, {"banana", "yellow"}, {"kiwi", "green"}};
const std::map<std::string, std::string> kOtherContents = {{"apple", "old"}, {"zebra", "z"}};

TEST_F(RocksStateTest, CommitGetDelete) {
  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  EXPECT_EQ(state->applied_index(), LogIndex(0));
  ASSERT_TRUE(state->Commit(Batch(1, {Put("a", "1"), Put("b", "2")})).ok());
  EXPECT_EQ(*state->Get("a"), std::optional<std::string>("1"));
  EXPECT_EQ(*state->Get("b"), std::optional<std::string>("2"));
  EXPECT_EQ(*state->Get("c"), std::nullopt);
  EXPECT_EQ(*state->key_count(), 2u);

  // Within one batch the later write to a key wins; a delete removes.
  ASSERT_TRUE(state->Commit(Batch(2, {Del("a"), Put("b", "x"), Put("b", "y"), Put("", "e")})).ok());
  EXPECT_EQ(*state->Get("a"), std::nullopt);
  EXPECT_EQ(*state->Get("b"), std::optional<std::string>("y"));
  EXPECT_EQ(*state->Get(""), std::optional<std::string>("e"));
  EXPECT_EQ(*state->key_count(), 2u);
  EXPECT_EQ(state->applied_index(), LogIndex(2));

  // Binary keys and values pass through untouched.
  std::string key("k\0\xff", 3);
  std::string value("\0\0v", 3);
  ASSERT_TRUE(state->Commit(Batch(3, {Put(key, value)})).ok());
  EXPECT_EQ(*state->Get(key), std::optional<std::string>(value));
}

TEST_F(RocksStateTest, AppliedIndexAndDataPersistAcrossReopen) {
  {
    std::unique_ptr<RocksState> state = MustOpen(Path("s"));
    ASSERT_TRUE(state->Commit(Batch(5, {Put("a", "1")}, {{7, 3}})).ok());
    ASSERT_TRUE(state->Commit(Batch(9, {Put("b", "2"), Del("a")}, {{7, 4}})).ok());
    ASSERT_TRUE(state->Sync().ok());
  }
  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  EXPECT_EQ(state->applied_index(), LogIndex(9));
  EXPECT_EQ(Contents(*state), (std::map<std::string, std::string>{{"b", "2"}}));
  EXPECT_THAT(Seqs(*state), ElementsAre(Pair(7u, 4u)));
  EXPECT_THAT(Listing(Path("s")), ElementsAre("CURRENT_STATE", "LOCK", "db-1"));

  // A synced-writes store persists too.
  RocksStateOptions opts;
  opts.sync_writes = true;
  {
    std::unique_ptr<RocksState> synced = MustOpen(Path("t"), opts);
    ASSERT_TRUE(synced->Commit(Batch(2, {Put("x", "y")})).ok());
  }
  std::unique_ptr<RocksState> synced = MustOpen(Path("t"), opts);
  EXPECT_EQ(synced->applied_index(), LogIndex(2));
  EXPECT_EQ(*synced->Get("x"), std::optional<std::string>("y"));
}

TEST_F(RocksStateTest, SecondOpenOfAnOpenStoreIsRefused) {
  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  ASSERT_TRUE(state->Commit(Batch(1, {Put("a", "1")})).ok());
  absl::StatusOr<std::unique_ptr<RocksState>> second = RocksState::Open(Path("s"));
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(Path("s/LOCK")));
  ASSERT_TRUE(state->Commit(Batch(2, {Put("b", "2")})).ok());
  EXPECT_EQ(*state->key_count(), 2u);
  // Closing releases the lock.
  state.reset();
  state = MustOpen(Path("s"));
  EXPECT_EQ(state->applied_index(), LogIndex(2));
}

TEST_F(RocksStateTest, OpenWithoutCreateRefusesMissingStore) {
  RocksStateOptions opts;
  opts.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<RocksState>> state = RocksState::Open(Path("none"), opts);
  ASSERT_EQ(state.status().code(), absl::StatusCode::kNotFound) << state.status();
  EXPECT_THAT(state.status().message(), HasSubstr("CURRENT_STATE"));
  EXPECT_FALSE(fs::exists(Path("none")));
}

TEST_F(RocksStateTest, StaleCommitRefusedAndWritesNothing) {
  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  ASSERT_TRUE(state->Commit(Batch(5, {Put("a", "1")}, {{1, 1}})).ok());
  for (uint64_t stale : {5, 4, 0}) {
    absl::Status s = state->Commit(Batch(stale, {Put("a", "bad"), Put("new", "bad")}, {{1, 99}}));
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(), HasSubstr("applied index 5"));
  }
  EXPECT_EQ(state->applied_index(), LogIndex(5));
  EXPECT_EQ(Contents(*state), (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_THAT(Seqs(*state), ElementsAre(Pair(1u, 1u)));
  // And nothing of them reached the disk.
  state.reset();
  state = MustOpen(Path("s"));
  EXPECT_EQ(state->applied_index(), LogIndex(5));
  EXPECT_EQ(Contents(*state), (std::map<std::string, std::string>{{"a", "1"}}));
}

TEST_F(RocksStateTest, ForEachSeesUserKeysInOrderAndClientSeqsByNumber) {
  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  // Keys that look like the internal prefixes must stay user keys.
  ASSERT_TRUE(
      state
          ->Commit(Batch(1, {Put("zz", "1"), Put("mapplied", "2"), Put("c", "3"), Put("a", "4")},
                         {{256, 1}, {2, 7}, {uint64_t{1} << 40, 3}}))
          .ok());
  ASSERT_TRUE(state->Commit(Batch(2, {Del("c")}, {{2, 8}})).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE(
      state->ForEach([&](std::string_view k, std::string_view) { keys.emplace_back(k); }).ok());
  EXPECT_THAT(keys, ElementsAre("a", "mapplied", "zz"));
  EXPECT_EQ(*state->Get("mapplied"), std::optional<std::string>("2"));
  EXPECT_EQ(state->applied_index(), LogIndex(2));
  // Big-endian ids sort numerically: 2 < 256 < 2^40.
  EXPECT_THAT(Seqs(*state), ElementsAre(Pair(2u, 8u), Pair(256u, 1u), Pair(uint64_t{1} << 40, 3u)));
  EXPECT_EQ(*state->key_count(), 3u);
}

TEST_F(RocksStateTest, SnapshotCreateVerifyInstallRoundTrip) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  absl::StatusOr<raft::SnapshotMeta> meta = RocksState::VerifySnapshot(Path("snap"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(*meta, Meta(7, 2));
  EXPECT_FALSE(fs::exists(Path("snap.tmp")));

  std::unique_ptr<RocksState> dst = OtherStore();
  ASSERT_EQ(Contents(*dst), kOtherContents);
  absl::Status s = dst->InstallSnapshot(Path("snap"));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(dst->applied_index(), LogIndex(7));
  EXPECT_EQ(Contents(*dst), kSourceContents);
  EXPECT_THAT(Seqs(*dst), ElementsAre(Pair(1u, 1u), Pair(2u, 5u)));
  EXPECT_THAT(Listing(Path("dst")), ElementsAre("CURRENT_STATE", "LOCK", "db-2"));

  // The installed state is live: it takes commits and survives a reopen.
  ASSERT_TRUE(dst->Commit(Batch(8, {Put("fig", "purple")})).ok());
  dst.reset();
  dst = MustOpen(Path("dst"));
  EXPECT_EQ(dst->applied_index(), LogIndex(8));
  std::map<std::string, std::string> expected = kSourceContents;
  expected["fig"] = "purple";
  EXPECT_EQ(Contents(*dst), expected);

  // The source is untouched by both, and the snapshot still verifies.
  ASSERT_TRUE(src->Commit(Batch(8, {Put("apple", "green")})).ok());
  EXPECT_EQ(*src->Get("apple"), std::optional<std::string>("green"));
  EXPECT_TRUE(RocksState::VerifySnapshot(Path("snap")).ok());
  EXPECT_EQ(*dst->Get("apple"), std::optional<std::string>("red"));

  // A snapshot of the installed store installs again (generation 3).
  ASSERT_TRUE(dst->CreateSnapshot(Path("snap2/"), Meta(8, 3)).ok());
  ASSERT_TRUE(src->InstallSnapshot(Path("snap2")).ok());
  EXPECT_EQ(src->applied_index(), LogIndex(8));
  EXPECT_EQ(Contents(*src), expected);
}

TEST_F(RocksStateTest, CreateSnapshotPreconditions) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  absl::Status s = src->CreateSnapshot(Path("other"), Meta(6, 2));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_FALSE(fs::exists(Path("other")));
  s = src->CreateSnapshot(Path("snap"), Meta(7, 2));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_TRUE(RocksState::VerifySnapshot(Path("snap")).ok());
  EXPECT_EQ(RocksState::VerifySnapshot(Path("nowhere")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RocksStateTest, VerifyCatchesAFlippedByteInEveryCheckpointFile) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  std::unique_ptr<RocksState> dst = OtherStore();
  std::vector<std::string> names = Listing(Path("snap"));
  ASSERT_GE(names.size(), 4u);  // CURRENT, MANIFEST, OPTIONS, an SST, ...
  bool saw_sst = false;
  for (const std::string& name : names) {
    if (name == kSnapshotMetaFile) continue;
    saw_sst |= name.ends_with(".sst");
    const std::string path = Path("snap/" + name);
    const std::string good = ReadAll(path);
    if (good.empty()) continue;  // nothing to flip (an empty WAL)
    std::string bad = good;
    bad[bad.size() / 2] ^= 0x01;
    Replace(path, bad);
    absl::StatusOr<raft::SnapshotMeta> meta = RocksState::VerifySnapshot(Path("snap"));
    EXPECT_EQ(meta.status().code(), absl::StatusCode::kDataLoss) << name;
    EXPECT_THAT(meta.status().message(), HasSubstr(path));
    EXPECT_THAT(meta.status().message(), HasSubstr("expected"));
    absl::Status s = dst->InstallSnapshot(Path("snap"));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_EQ(dst->applied_index(), LogIndex(4));
    EXPECT_EQ(Contents(*dst), kOtherContents);
    Replace(path, good);
    EXPECT_TRUE(RocksState::VerifySnapshot(Path("snap")).ok()) << name;
  }
  EXPECT_TRUE(saw_sst);
  // The live source never shared the damage.
  EXPECT_EQ(Contents(*src), kSourceContents);

  // A missing file and a stray one are named too.
  const std::string current = ReadAll(Path("snap/CURRENT"));
  ASSERT_TRUE(env::RealDisk().Remove(Path("snap/CURRENT")).ok());
  absl::Status s = RocksState::VerifySnapshot(Path("snap")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(Path("snap/CURRENT") + ": missing"));
  Replace(Path("snap/CURRENT"), current);
  Replace(Path("snap/stray"), "x");
  s = RocksState::VerifySnapshot(Path("snap")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(Path("snap/stray") + ": not listed"));
}

TEST_F(RocksStateTest, VerifyCatchesAFlippedByteAnywhereInTheMetadata) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  const std::string path = Path(std::string("snap/") + kSnapshotMetaFile);
  const std::string good = ReadAll(path);
  ASSERT_GT(good.size(), 20u);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x20;
    Replace(path, bad);
    absl::Status s = RocksState::VerifySnapshot(Path("snap")).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << "byte " << i << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(path)) << "byte " << i;
  }
  // Truncated and missing metadata.
  Replace(path, good.substr(0, good.size() - 1));
  EXPECT_EQ(RocksState::VerifySnapshot(Path("snap")).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(env::RealDisk().Remove(path).ok());
  absl::Status s = RocksState::VerifySnapshot(Path("snap")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(path + ": missing"));
}

TEST_F(RocksStateTest, InstallRefusesSnapshotWhoseStateIsNotAtItsIndex) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  std::unique_ptr<RocksState> dst = OtherStore();
  // Rewrite the metadata to claim index 8 for a state at 7, with a valid
  // checksum: magic:u32 version:u8 then meta:bytes = len:varint
  // codec-version:u8 index:varint ..., so the index is byte 7.
  const std::string path = Path(std::string("snap/") + kSnapshotMetaFile);
  std::string data = ReadAll(path);
  ASSERT_EQ(data[7], 7);
  data[7] = 8;
  uint32_t crc = core::Crc32c(std::string_view(data).substr(0, data.size() - 4));
  for (int i = 0; i < 4; ++i)
    data[data.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
  Replace(path, data);
  absl::StatusOr<raft::SnapshotMeta> meta = RocksState::VerifySnapshot(Path("snap"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_EQ(meta->index, LogIndex(8));

  absl::Status s = dst->InstallSnapshot(Path("snap"));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr("applied index 7"));
  EXPECT_EQ(dst->applied_index(), LogIndex(4));
  EXPECT_EQ(Contents(*dst), kOtherContents);
  EXPECT_THAT(Listing(Path("dst")), ElementsAre("CURRENT_STATE", "LOCK", "db-1"));
}

absl::Status CrashAt(std::string_view wanted, std::string_view point) {
  if (point == wanted)
    return absl::AbortedError(absl::StrCat("simulated crash at ", std::string(point)));
  return absl::OkStatus();
}

TEST_F(RocksStateTest, InstallCrashBeforePointerSwitchReopensToOldState) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  RocksStateOptions opts;
  std::vector<std::string> points;
  opts.fault_point = [&](std::string_view point) {
    points.emplace_back(point);
    return CrashAt("install:built", point);
  };
  std::unique_ptr<RocksState> dst = OtherStore(opts);
  absl::Status s = dst->InstallSnapshot(Path("snap"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_THAT(points, ElementsAre("install:built"));
  // The new generation was fully built: only the pointer switch is missing.
  EXPECT_THAT(Listing(Path("dst")), ElementsAre("CURRENT_STATE", "LOCK", "db-1", "db-2"));
  EXPECT_EQ(ReadAll(Path("dst/CURRENT_STATE")), "db-1\n");
  // The stopped store refuses further work until reopened.
  EXPECT_EQ(dst->Commit(Batch(5, {Put("q", "q")})).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(dst->Get("apple").status().code(), absl::StatusCode::kAborted);
  dst.reset();

  dst = MustOpen(Path("dst"));
  EXPECT_EQ(dst->applied_index(), LogIndex(4));
  EXPECT_EQ(Contents(*dst), kOtherContents);
  EXPECT_THAT(Seqs(*dst), ElementsAre(Pair(9u, 9u)));
  EXPECT_THAT(Listing(Path("dst")), ElementsAre("CURRENT_STATE", "LOCK", "db-1"));
  // And the install works after the "crash".
  ASSERT_TRUE(dst->InstallSnapshot(Path("snap")).ok());
  EXPECT_EQ(Contents(*dst), kSourceContents);
}

TEST_F(RocksStateTest, InstallCrashAfterPointerSwitchReopensToNewState) {
  std::unique_ptr<RocksState> src = SourceWithSnapshot();
  RocksStateOptions opts;
  opts.fault_point = [](std::string_view point) { return CrashAt("install:switched", point); };
  std::unique_ptr<RocksState> dst = OtherStore(opts);
  EXPECT_EQ(dst->InstallSnapshot(Path("snap")).code(), absl::StatusCode::kAborted);
  EXPECT_THAT(Listing(Path("dst")), ElementsAre("CURRENT_STATE", "LOCK", "db-1", "db-2"));
  dst.reset();

  dst = MustOpen(Path("dst"));
  EXPECT_EQ(dst->applied_index(), LogIndex(7));
  EXPECT_EQ(Contents(*dst), kSourceContents);
  EXPECT_THAT(Seqs(*dst), ElementsAre(Pair(1u, 1u), Pair(2u, 5u)));
  EXPECT_THAT(Listing(Path("dst")), ElementsAre("CURRENT_STATE", "LOCK", "db-2"));
}

TEST_F(RocksStateTest, HandBuiltLeftoversAreIgnoredAndRemoved) {
  {
    std::unique_ptr<RocksState> state = MustOpen(Path("s"));
    ASSERT_TRUE(state->Commit(Batch(3, {Put("a", "1")})).ok());
  }
  // What a crash mid-install could leave: another generation (here a copy of
  // the live database with more data, which must not win) and a pointer temp
  // file naming it.
  fs::copy(Path("s/db-1"), Path("s/db-2"), fs::copy_options::recursive);
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), Path("s/db-2"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "dintruder", "x").ok());
  }
  Replace(Path("s/CURRENT_STATE.tmp"), "db-2\n");
  fs::create_directory(Path("s/unrelated"));

  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  EXPECT_EQ(state->applied_index(), LogIndex(3));
  EXPECT_EQ(Contents(*state), (std::map<std::string, std::string>{{"a", "1"}}));
  // Files it does not own are left alone.
  EXPECT_THAT(Listing(Path("s")), ElementsAre("CURRENT_STATE", "LOCK", "db-1", "unrelated"));
}

TEST_F(RocksStateTest, SnapshotCrashBeforeRenameLeavesNoSnapshot) {
  RocksStateOptions opts;
  opts.fault_point = [](std::string_view point) { return CrashAt("checkpoint:built", point); };
  {
    std::unique_ptr<RocksState> state = MustOpen(Path("s"), opts);
    ASSERT_TRUE(state->Commit(Batch(2, {Put("a", "1")})).ok());
    EXPECT_EQ(state->CreateSnapshot(Path("snap"), Meta(2, 1)).code(), absl::StatusCode::kAborted);
  }
  EXPECT_FALSE(fs::exists(Path("snap")));
  EXPECT_TRUE(fs::exists(Path("snap.tmp")));
  EXPECT_EQ(RocksState::VerifySnapshot(Path("snap")).status().code(), absl::StatusCode::kNotFound);
  // After the restart the leftover is replaced by a whole snapshot.
  std::unique_ptr<RocksState> state = MustOpen(Path("s"));
  ASSERT_TRUE(state->CreateSnapshot(Path("snap"), Meta(2, 1)).ok());
  EXPECT_FALSE(fs::exists(Path("snap.tmp")));
  EXPECT_EQ(*RocksState::VerifySnapshot(Path("snap")), Meta(2, 1));
}

TEST_F(RocksStateTest, CheckReportsAGoodStore) {
  {
    std::unique_ptr<RocksState> state = MustOpen(Path("s"));
    ASSERT_TRUE(
        state->Commit(Batch(11, {Put("a", "1"), Put("b", "2"), Put("c", "3")}, {{1, 2}, {3, 4}}))
            .ok());
    ASSERT_TRUE(state->Commit(Batch(12, {Del("b")})).ok());
  }
  const std::map<std::string, std::string> before = DirContents(Path("s/db-1"));
  absl::StatusOr<RocksState::Report> report = RocksState::Check(Path("s"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->applied, LogIndex(12));
  EXPECT_EQ(report->keys, 2u);
  EXPECT_EQ(report->clients, 2u);
  // Read-only: not a byte changed, not even in the info log.
  EXPECT_EQ(DirContents(Path("s/db-1")), before);
}

TEST_F(RocksStateTest, CheckRefusesWhatIsNotAGoodStore) {
  // Missing, empty, and a plain RocksDB database that is not a store.
  EXPECT_EQ(RocksState::Check(Path("none")).status().code(), absl::StatusCode::kNotFound);
  fs::create_directory(Path("empty"));
  EXPECT_EQ(RocksState::Check(Path("empty")).status().code(), absl::StatusCode::kNotFound);
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, Path("plain"), &raw).ok());
    delete raw;
  }
  EXPECT_EQ(RocksState::Check(Path("plain")).status().code(), absl::StatusCode::kNotFound);

  // A malformed pointer.
  { MustOpen(Path("s")); }
  Replace(Path("s/CURRENT_STATE"), "db-x\n");
  absl::Status s = RocksState::Check(Path("s")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("CURRENT_STATE: malformed pointer"));
  EXPECT_EQ(RocksState::Open(Path("s")).status().code(), absl::StatusCode::kDataLoss);
  Replace(Path("s/CURRENT_STATE"), "db-1\n");
  ASSERT_TRUE(RocksState::Check(Path("s")).ok());
}

TEST_F(RocksStateTest, UndecodableAppliedIndexIsDataLoss) {
  {
    std::unique_ptr<RocksState> state = MustOpen(Path("s"));
    ASSERT_TRUE(state->Commit(Batch(4, {Put("a", "1")})).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), Path("s/db-1"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "mapplied", "xyz").ok());
  }
  absl::Status s = RocksState::Open(Path("s")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr("applied index key \"mapplied\" holds 3 bytes"));
  s = RocksState::Check(Path("s")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr("applied index"));
}

TEST_F(RocksStateTest, CheckCatchesADamagedSstFile) {
  {
    std::unique_ptr<RocksState> state = MustOpen(Path("s"));
    // Incompressible values, so the SST file is large.
    std::vector<StateWrite> writes;
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 2000; ++i) {
      std::string value;
      for (int j = 0; j < 100; ++j) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        value.push_back(static_cast<char>(x));
      }
      writes.push_back(Put(absl::StrCat("key", i), value));
    }
    ASSERT_TRUE(state->Commit(Batch(1, std::move(writes))).ok());
    // A snapshot flushes the memtable into an SST file.
    ASSERT_TRUE(state->CreateSnapshot(Path("snap"), Meta(1, 1)).ok());
  }
  ASSERT_TRUE(RocksState::Check(Path("s")).ok());
  std::string sst;
  for (const std::string& name : Listing(Path("s/db-1")))
    if (name.ends_with(".sst")) sst = Path("s/db-1/" + name);
  ASSERT_FALSE(sst.empty());
  std::string bytes = ReadAll(sst);
  ASSERT_GT(bytes.size(), 10000u);
  bytes[bytes.size() / 4] ^= 0x01;  // inside the data blocks
  Replace(sst, bytes);
  absl::Status s = RocksState::Check(Path("s")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr(Path("s/db-1")));
}

}  // namespace
}  // namespace bw::storage
