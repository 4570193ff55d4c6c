// libFuzzer target: the MVCC keyspace (kv/mvcc.h) against a model.
//
// The input is a sequence of operations on a small key alphabet (so keys
// collide and ranges overlap): Put, DeleteRange, Txn (one compare, a put on
// success, a delete on failure), Range at any revision with a limit,
// Compact, and a snapshot round trip (Serialize, Restore into a fresh store,
// which then carries on). The model is a std::map of key -> every version
// (revision, create revision, version, value, or a tombstone) and the
// current and compacted revisions. Asserted after every operation:
//   - a write's status, revision and response (prev_kv, deleted count,
//     txn outcome) are the model's;
//   - a Range at any revision returns exactly the model's keys and values
//     with their create/mod revisions and versions, the count and `more`;
//     ranges at compacted or future revisions fail as etcd's do;
//   - a restored snapshot has the same digest and HashKV as the original.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "fuzz/fuzz_util.h"
#include "kv/mvcc.h"

namespace {

using bulwark::internal::Request;
using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;

struct ModelVersion {
  int64_t mod = 0;
  bool tombstone = false;
  int64_t create = 0;
  int64_t version = 0;
  std::string value;
};

class Model {
 public:
  int64_t revision = 1;
  int64_t compacted = 0;
  std::map<std::string, std::vector<ModelVersion>> keys;

  // The version of `key` visible at `rev`, or null.
  const ModelVersion* At(const std::string& key, int64_t rev) const {
    auto it = keys.find(key);
    if (it == keys.end()) return nullptr;
    const ModelVersion* found = nullptr;
    for (const ModelVersion& v : it->second) {
      if (v.mod <= rev) found = &v;
    }
    return (found == nullptr || found->tombstone) ? nullptr : found;
  }
  // Live keys in [key, end) at `rev` (end "" means just `key`, "\0" means
  // every key from `key` on), in key order.
  std::vector<std::string> Live(const std::string& key, const std::string& end, int64_t rev) const {
    std::vector<std::string> out;
    for (const auto& [k, h] : keys) {
      const bool in =
          end.empty() ? k == key : (k >= key && (end == std::string(1, '\0') || k < end));
      if (in && At(k, rev) != nullptr) out.push_back(k);
    }
    return out;
  }
  void Put(const std::string& key, const std::string& value, int64_t rev) {
    const ModelVersion* prev = At(key, revision);
    ModelVersion v;
    v.mod = rev;
    v.create = prev ? prev->create : rev;
    v.version = prev ? prev->version + 1 : 1;
    v.value = value;
    keys[key].push_back(v);
  }
  void Delete(const std::string& key, int64_t rev) {
    ModelVersion v;
    v.mod = rev;
    v.tombstone = true;
    keys[key].push_back(v);
  }
};

class Harness {
 public:
  explicit Harness(bw::fuzz::Input& in) : in_(in) {}

  void Run() {
    for (int step = 0; step < 400 && !in_.empty(); ++step) {
      switch (in_.Below(8)) {
        case 0:
        case 1:
          Put();
          break;
        case 2:
          Delete();
          break;
        case 3:
          Txn();
          break;
        case 4:
        case 5:
          Range();
          break;
        case 6:
          Compact();
          break;
        default:
          Snapshot();
          break;
      }
    }
  }

 private:
  std::string Key() {
    static constexpr char kAlphabet[] = {'a', 'b', 'c', '\xff'};
    std::string k(1, kAlphabet[in_.Below(4)]);
    if (in_.Below(3) == 0) k += kAlphabet[in_.Below(4)];
    return k;
  }
  // "" (one key), "\0" (to the end) or a key.
  std::string End() {
    const int kind = in_.Below(3);
    if (kind == 0) return "";
    if (kind == 1) return std::string(1, '\0');
    return Key();
  }

  bw::kv::MvccResult Apply(Request r) {
    r.set_id(++ids_);
    r.set_time_us(int64_t{1000} * ids_);
    return store_->Apply(r);
  }

  void Put() {
    const std::string key = Key();
    const std::string value(in_.Bytes(8));
    const bool prev_kv = in_.Bool();
    Request r;
    r.mutable_put()->set_key(key);
    r.mutable_put()->set_value(value);
    r.mutable_put()->set_prev_kv(prev_kv);
    const ModelVersion* prev = model_.At(key, model_.revision);
    const ModelVersion before = prev ? *prev : ModelVersion{};
    const bool existed = prev != nullptr;
    bw::kv::MvccResult res = Apply(r);
    BW_ASSERT_MSG(res.status.ok(), res.status.ToString());
    model_.Put(key, value, ++model_.revision);
    BW_ASSERT_EQ(res.revision, model_.revision);
    BW_ASSERT(res.response.has_response_put());
    const etcdserverpb::PutResponse& p = res.response.response_put();
    BW_ASSERT_EQ(p.header().revision(), model_.revision);
    BW_ASSERT_EQ(p.has_prev_kv(), prev_kv && existed);
    if (p.has_prev_kv()) CheckKv(p.prev_kv(), key, before);
  }

  void Delete() {
    const std::string key = Key();
    const std::string end = End();
    Request r;
    r.mutable_delete_range()->set_key(key);
    r.mutable_delete_range()->set_range_end(end);
    const std::vector<std::string> live = model_.Live(key, end, model_.revision);
    bw::kv::MvccResult res = Apply(r);
    BW_ASSERT_MSG(res.status.ok(), res.status.ToString());
    if (!live.empty()) {
      ++model_.revision;
      for (const std::string& k : live)
        model_.Delete(k, model_.revision);
    }
    BW_ASSERT_EQ(res.revision, model_.revision);
    BW_ASSERT_EQ(res.response.response_delete_range().deleted(), static_cast<int64_t>(live.size()));
  }

  void Txn() {
    const std::string key = Key();
    Compare* c = nullptr;
    Request r;
    etcdserverpb::TxnRequest* t = r.mutable_txn();
    c = t->add_compare();
    c->set_key(key);
    c->set_result(static_cast<Compare::CompareResult>(in_.Below(4)));
    const int target = in_.Below(4);
    const ModelVersion* cur = model_.At(key, model_.revision);
    const ModelVersion none;
    const ModelVersion& v = cur ? *cur : none;
    int64_t have = 0, want = static_cast<int64_t>(in_.Below(8));
    std::string have_s, want_s;
    switch (target) {
      case 0:
        c->set_target(Compare::VERSION);
        c->set_version(want);
        have = v.version;
        break;
      case 1:
        c->set_target(Compare::CREATE);
        c->set_create_revision(want);
        have = v.create;
        break;
      case 2:
        c->set_target(Compare::MOD);
        c->set_mod_revision(want);
        have = v.mod;
        break;
      default:
        c->set_target(Compare::VALUE);
        want_s = std::string(in_.Bytes(8));
        c->set_value(want_s);
        have_s = v.value;
        break;
    }
    auto holds = [&](auto a, auto b) {
      switch (c->result()) {
        case Compare::EQUAL:
          return a == b;
        case Compare::GREATER:
          return a > b;
        case Compare::LESS:
          return a < b;
        default:
          return a != b;
      }
    };
    bool succeeds = target == 3 ? (cur != nullptr && holds(have_s, want_s)) : holds(have, want);
    const std::string put_key = Key();
    const std::string value(in_.Bytes(8));
    etcdserverpb::PutRequest* put = t->add_success()->mutable_request_put();
    put->set_key(put_key);
    put->set_value(value);
    const std::string del_key = Key();
    t->add_failure()->mutable_request_delete_range()->set_key(del_key);
    BW_ASSERT(bw::kv::ValidateTxn(*t).ok());

    bw::kv::MvccResult res = Apply(r);
    BW_ASSERT_MSG(res.status.ok(), res.status.ToString());
    BW_ASSERT_EQ(res.response.response_txn().succeeded(), succeeds);
    if (succeeds) {
      model_.Put(put_key, value, ++model_.revision);
    } else if (model_.At(del_key, model_.revision) != nullptr) {
      model_.Delete(del_key, ++model_.revision);
    }
    BW_ASSERT_EQ(res.revision, model_.revision);
    BW_ASSERT_EQ(res.response.response_txn().header().revision(), model_.revision);
  }

  void Range() {
    RangeRequest r;
    const std::string key = Key();
    const std::string end = End();
    r.set_key(key);
    r.set_range_end(end);
    const int64_t rev = static_cast<int64_t>(in_.Below(model_.revision + 3));
    r.set_revision(rev);
    const int64_t limit = in_.Below(4);
    r.set_limit(limit);
    RangeResponse out;
    const absl::Status s = store_->Range(r, &out);
    if (rev > model_.revision || (rev > 0 && rev < model_.compacted)) {
      BW_ASSERT_MSG(absl::IsOutOfRange(s), s.ToString());
      return;
    }
    BW_ASSERT_MSG(s.ok(), s.ToString());
    const int64_t at = rev == 0 ? model_.revision : rev;
    const std::vector<std::string> live = model_.Live(key, end, at);
    BW_ASSERT_EQ(out.count(), static_cast<int64_t>(live.size()));
    const size_t n = limit > 0 ? std::min<size_t>(live.size(), limit) : live.size();
    BW_ASSERT_EQ(static_cast<size_t>(out.kvs_size()), n);
    BW_ASSERT_EQ(out.more(), n < live.size());
    for (size_t i = 0; i < n; ++i)
      CheckKv(out.kvs(i), live[i], *model_.At(live[i], at));
    BW_ASSERT_EQ(out.header().revision(), model_.revision);
  }

  void Compact() {
    const int64_t rev = static_cast<int64_t>(in_.Below(model_.revision + 2));
    Request r;
    r.mutable_compaction()->set_revision(rev);
    bw::kv::MvccResult res = Apply(r);
    if (rev <= model_.compacted || rev > model_.revision) {
      BW_ASSERT_MSG(absl::IsOutOfRange(res.status), res.status.ToString());
      return;
    }
    BW_ASSERT_MSG(res.status.ok(), res.status.ToString());
    model_.compacted = rev;
    BW_ASSERT_EQ(store_->compact_revision(), rev);
  }

  void Snapshot() {
    const std::string snap = store_->Serialize();
    auto fresh = std::make_unique<bw::kv::MvccStore>();
    const absl::Status s = fresh->Restore(snap);
    BW_ASSERT_MSG(s.ok(), s.ToString());
    BW_ASSERT_EQ(fresh->digest(), store_->digest());
    BW_ASSERT_EQ(fresh->HashKV(0), store_->HashKV(0));
    BW_ASSERT_EQ(fresh->revision(), store_->revision());
    BW_ASSERT_EQ(fresh->compact_revision(), store_->compact_revision());
    store_ = std::move(fresh);
  }

  static void CheckKv(const mvccpb::KeyValue& kv, const std::string& key, const ModelVersion& v) {
    BW_ASSERT(kv.key() == key);
    BW_ASSERT(kv.value() == v.value);
    BW_ASSERT_EQ(kv.create_revision(), v.create);
    BW_ASSERT_EQ(kv.mod_revision(), v.mod);
    BW_ASSERT_EQ(kv.version(), v.version);
  }

  bw::fuzz::Input& in_;
  std::unique_ptr<bw::kv::MvccStore> store_ = std::make_unique<bw::kv::MvccStore>();
  Model model_;
  int64_t ids_ = 0;
};

template <size_t N>
std::string Bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

std::vector<std::string> Seeds() {
  // Operation byte (mod 8), then that operation's choices.
  return {
      Bytes("\x00\x00\x00\x02v1\x01"                             // put a=v1 (prev_kv)
            "\x00\x01\x00\x02v2\x00"                             // put b=v2
            "\x00\x00\x00\x02v3\x01"                             // put a=v3
            "\x04\x00\x00\x01\x00\x00"                           // range a.. at rev 0
            "\x03\x00\x00\x00\x00\x01\x00\x01\x00\x01x\x01\x00"  // txn on a
            "\x06\x03"                                           // compact 3
            "\x04\x00\x00\x01\x00\x02\x00"                       // range a.. at rev 2
            "\x07"                                               // snapshot
            "\x02\x00\x00\x01\x00"                               // delete a..
            "\x04\x00\x00\x01\x00\x00\x03"),
      Bytes("\x00\x02\x00\x01z\x00\x02\x02\x00\x00\x07\x04\x02\x00\x00\x02\x01"),
  };
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bw::fuzz::Input in(data, size);
  Harness h(in);
  h.Run();
  return 0;
}
