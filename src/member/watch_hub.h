// The watchers of one member, on its event loop: each watch stream's
// watchers, their ranges, filters and next revision. After every applied
// entry the hub hands the entry's events to the watchers whose range they
// fall in; a watcher that starts in the past is first sent the history
// from the store. All on the loop thread, so nothing is missed or doubled
// between history and live events.
#pragma once

#include "absl/container/flat_hash_map.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"
#include "kv/mvcc.h"

namespace bw::member {

// One response to a stream. A put to a key with 10,000 watchers is 10,000
// responses that differ only in their watch id: their events are encoded
// once and shared (`events`), so neither the hub nor a stream's queue holds
// a copy per watcher and gRPC serializes only the few bytes that differ.
struct WatchReply {
  // Everything but the shared events (all of it when `events` is null).
  etcdserverpb::WatchResponse response;
  // WatchResponse.events entries (field 11) in protobuf's encoding; on the
  // wire they follow `response`'s own fields, which is how protobuf orders
  // them, so the two together are the whole response.
  std::shared_ptr<const std::string> events;

  // The whole response as one message (tests; sinks that want a message).
  etcdserverpb::WatchResponse Full() const;
};

// Where a stream's responses go (a gRPC stream in the server; a vector in
// tests). Returns false when the stream cannot take more (closed, or a
// client that does not read): its watchers are then cancelled.
using WatchSink = std::function<bool(WatchReply)>;

class WatchHub {
 public:
  // `header` fills a response header with the current revision.
  // A watcher that asks for fragments gets responses larger than
  // `fragment_bytes` split into pieces (etcd: --max-request-bytes).
  WatchHub(kv::MvccStore& store, std::function<void(etcdserverpb::ResponseHeader*)> header,
           size_t fragment_bytes = 1536 * 1024)
      : store_(store), header_(std::move(header)), fragment_bytes_(fragment_bytes) {}

  // A new stream; its id names it in the calls below.
  uint64_t AddStream(WatchSink sink);
  void RemoveStream(uint64_t stream);
  // Handles one request of a stream: create, cancel or progress.
  void OnRequest(uint64_t stream, const etcdserverpb::WatchRequest& req);
  // After an applied entry: deliver the store's events.
  void OnApplied();
  // After the store was replaced by a snapshot: every watcher is sent what
  // it has not seen, from the new store's history (or is cancelled with the
  // compaction revision if that history is gone).
  void Resync();

  size_t watchers() const;
  // Watchers one stream may hold; a create past it is answered created and
  // canceled, with a reason naming the limit.
  void set_max_watchers_per_stream(size_t n) { max_watchers_per_stream_ = n; }

  // Most events in one response of history (whole revisions are kept).
  static constexpr size_t kMaxHistoryBatch = 1000;

 private:
  struct Watcher {
    std::string key, end;
    bool prev_kv = false;
    bool no_put = false, no_delete = false;
    bool fragment = false;
    int64_t next_rev = 0;  // events below this were sent (or not wanted)
  };
  struct Stream {
    WatchSink sink;
    int64_t next_watch_id = 0;
    std::map<int64_t, Watcher> watchers;
  };
  void Create(uint64_t sid, Stream& s, const etcdserverpb::WatchCreateRequest& c);
  bool Matches(const Watcher& w, const mvccpb::Event& e) const;
  // Sends the events of `w` (filtered, prev_kv stripped as asked).
  bool SendEvents(Stream& s, int64_t id, Watcher& w, const std::vector<mvccpb::Event>& events);
  // Events encoded once per applied batch and shared by the watchers that
  // get the same ones: which events (indices) and whether with prev_kv.
  using SharedEvents = absl::flat_hash_map<std::string, std::shared_ptr<const std::string>>;
  // SendEvents for live events: the shared encoding when it can be used
  // (not for a fragmenting watcher), else SendEvents.
  bool SendLive(Stream& s, int64_t id, Watcher& w, const std::vector<mvccpb::Event>& events,
                const etcdserverpb::ResponseHeader& header, SharedEvents* shared);
  void CancelStream(uint64_t sid);
  // The answer that cancels a watcher whose start was compacted away.
  etcdserverpb::WatchResponse Compacted(int64_t id) const;
  // Sends `w` the history from its next revision on; false if the stream
  // is full. Cancels the watcher (sets *cancelled) if that is compacted.
  bool CatchUp(Stream& s, int64_t id, Watcher& w, bool* cancelled);

  // The watchers an event may concern, by key: one lookup per event instead
  // of a pass over every watcher. Rebuilt lazily after watchers change.
  using WatcherRef = std::pair<uint64_t, int64_t>;  // stream, watch id
  void RebuildIndex();

  kv::MvccStore& store_;
  bool index_dirty_ = true;
  absl::flat_hash_map<std::string, std::vector<WatcherRef>> by_key_;
  std::vector<WatcherRef> ranged_;
  std::function<void(etcdserverpb::ResponseHeader*)> header_;
  size_t fragment_bytes_;
  size_t max_watchers_per_stream_ = 10'000;
#ifdef BW_PLANTED_BUGS
 public:
  // Planted bug (debug builds): every 500th event sent is dropped, a gap
  // the chaos harness's watch checker must catch.
  void set_planted_drop_events(bool on) {
    planted_drop_events_ = on;
  }

 private:
  bool planted_drop_events_ = false;
  uint64_t planted_sent_ = 0;
#endif
  uint64_t next_stream_ = 1;
  std::map<uint64_t, Stream> streams_;
};

}  // namespace bw::member
