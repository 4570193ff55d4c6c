// The state machine's hot paths, alone: what one applied write or one read
// costs the MVCC store, and what decoding a log entry costs.
//
//   BM_MvccPut/keys:K        Apply of a Put (256-byte value) to one of K keys
//   BM_MvccKeyedPut/keys:K   the same with an idempotency key (a fresh one each time)
//   BM_MvccRange/keys:K      a Range of one key among K
//   BM_DecodeRequest         parsing a log entry (a Put of 256 bytes)
//   BM_EncodeRequest         serializing it
#include <benchmark/benchmark.h>

#include <string>

#include "absl/strings/str_format.h"
#include "kv/mvcc.h"

namespace bw::kv {
namespace {

constexpr size_t kValueBytes = 256;

std::string Key(int64_t i) {
  return absl::StrFormat("%08d", i);
}

bulwark::internal::Request PutRequest(int64_t key, uint64_t id) {
  bulwark::internal::Request r;
  r.set_id(id);
  r.mutable_put()->set_key(Key(key));
  r.mutable_put()->set_value(std::string(kValueBytes, 'v'));
  return r;
}

// Old versions are compacted away now and then, as an operator would, so
// memory stays bounded however long a benchmark runs.
void CompactNowAndThen(MvccStore& store, uint64_t writes) {
  if (writes % 100'000 != 0) return;
  bulwark::internal::Request c;
  c.mutable_compaction()->set_revision(store.revision() - 1000);
  store.Apply(c);
}

void BM_MvccPut(benchmark::State& state) {
  const int64_t keys = state.range(0);
  MvccStore store;
  uint64_t i = 0;
  for (auto _ : state) {
    MvccResult res = store.Apply(PutRequest(static_cast<int64_t>(i % keys), i + 1));
    benchmark::DoNotOptimize(res.revision);
    CompactNowAndThen(store, ++i);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MvccPut)->ArgName("keys")->Arg(1000)->Arg(100'000);

void BM_MvccKeyedPut(benchmark::State& state) {
  const int64_t keys = state.range(0);
  MvccStore store;
  uint64_t i = 0;
  for (auto _ : state) {
    bulwark::internal::Request r = PutRequest(static_cast<int64_t>(i % keys), i + 1);
    absl::Status s = AttachIdempotencyKey("Put", r.put(), "", absl::StrFormat("key-%d", i), &r);
    benchmark::DoNotOptimize(s);
    MvccResult res = store.Apply(r);
    benchmark::DoNotOptimize(res.revision);
    CompactNowAndThen(store, ++i);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MvccKeyedPut)->ArgName("keys")->Arg(1000)->Arg(100'000);

void BM_MvccRange(benchmark::State& state) {
  const int64_t keys = state.range(0);
  MvccStore store;
  for (int64_t k = 0; k < keys; ++k)
    store.Apply(PutRequest(k, static_cast<uint64_t>(k) + 1));
  etcdserverpb::RangeRequest req;
  etcdserverpb::RangeResponse resp;
  int64_t i = 0;
  for (auto _ : state) {
    req.set_key(Key(i++ % keys));
    resp.Clear();
    absl::Status s = store.Range(req, &resp);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MvccRange)->ArgName("keys")->Arg(1000)->Arg(100'000);

void BM_DecodeRequest(benchmark::State& state) {
  std::string bytes = PutRequest(42, 7).SerializeAsString();
  for (auto _ : state) {
    bulwark::internal::Request r;
    bool ok = r.ParseFromString(bytes);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeRequest);

void BM_EncodeRequest(benchmark::State& state) {
  bulwark::internal::Request r = PutRequest(42, 7);
  for (auto _ : state) {
    std::string bytes = r.SerializeAsString();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRequest);

}  // namespace
}  // namespace bw::kv
