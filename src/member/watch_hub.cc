#include "member/watch_hub.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/bytes.h"

namespace bw::member {

namespace {

// The tag of WatchResponse.events (field 11, length-delimited).
constexpr uint8_t kEventsTag = (11 << 3) | 2;

}  // namespace

etcdserverpb::WatchResponse WatchReply::Full() const {
  etcdserverpb::WatchResponse r = response;
  // Merging appends to a repeated field: the events come after any that
  // `response` holds itself (none, when they are shared).
  if (events != nullptr && !r.MergeFromString(*events)) r.clear_events();
  return r;
}

uint64_t WatchHub::AddStream(WatchSink sink) {
  uint64_t id = next_stream_++;
  streams_[id].sink = std::move(sink);
  return id;
}

void WatchHub::RemoveStream(uint64_t stream) {
  streams_.erase(stream);
  index_dirty_ = true;
}

size_t WatchHub::watchers() const {
  size_t n = 0;
  for (const auto& [id, s] : streams_)
    n += s.watchers.size();
  return n;
}

void WatchHub::CancelStream(uint64_t sid) {
  // The stream cannot keep up: its watchers go; the client sees the
  // stream end and may watch again from the last revision it saw.
  auto it = streams_.find(sid);
  if (it != streams_.end()) it->second.watchers.clear();
  index_dirty_ = true;
}

void WatchHub::OnRequest(uint64_t sid, const etcdserverpb::WatchRequest& req) {
  auto it = streams_.find(sid);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (req.has_create_request()) {
    Create(sid, s, req.create_request());
  } else if (req.has_cancel_request()) {
    int64_t id = req.cancel_request().watch_id();
    if (s.watchers.erase(id) == 0) return;
    index_dirty_ = true;
    etcdserverpb::WatchResponse r;
    header_(r.mutable_header());
    r.set_watch_id(id);
    r.set_canceled(true);
    if (!s.sink(WatchReply{std::move(r), nullptr})) CancelStream(sid);
  } else if (req.has_progress_request()) {
    etcdserverpb::WatchResponse r;
    header_(r.mutable_header());
    r.set_watch_id(-1);
    if (!s.sink(WatchReply{std::move(r), nullptr})) CancelStream(sid);
  }
}

void WatchHub::Create(uint64_t sid, Stream& s, const etcdserverpb::WatchCreateRequest& c) {
  int64_t id = c.watch_id();
  etcdserverpb::WatchResponse created;
  header_(created.mutable_header());
  // etcd's refusals, in etcd's order and words: the watch id is -1.
  std::string key = c.key().empty() ? std::string(1, '\0') : c.key();  // "\0": the first key
  std::string end = c.range_end() == std::string_view("\0", 1) ? "" : c.range_end();
  const char* refused = nullptr;
  if (!c.range_end().empty() && !end.empty() && key >= end) {
    refused = "mvcc: watcher range is empty";
  } else if (id != 0 && s.watchers.count(id)) {
    refused = "mvcc: duplicate watch ID provided on the WatchStream";
  }
  if (refused != nullptr) {
    created.set_watch_id(-1);
    created.set_created(true);
    created.set_canceled(true);
    created.set_cancel_reason(refused);
    if (!s.sink(WatchReply{std::move(created), nullptr})) CancelStream(sid);
    return;
  }
  if (s.watchers.size() >= max_watchers_per_stream_) {
    // Bounded like every other resource: a client that opens watchers
    // without end is refused one more (it may cancel some, or open another
    // stream). The shape is etcd's for a watcher it cannot create.
    created.set_watch_id(id == 0 ? -1 : id);
    created.set_created(true);
    created.set_canceled(true);
    created.set_cancel_reason(absl::StrCat("bulwark: too many watchers on this stream (",
                                           max_watchers_per_stream_,
                                           ", --max-watchers-per-stream)"));
    if (!s.sink(WatchReply{std::move(created), nullptr})) CancelStream(sid);
    return;
  }
  if (id == 0) {
    while (s.watchers.count(s.next_watch_id))
      ++s.next_watch_id;
    id = s.next_watch_id++;
  }
  Watcher w;
  w.key = key;
  w.end = c.range_end();
  w.prev_kv = c.prev_kv();
  w.fragment = c.fragment();
  for (int f : c.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w.no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w.no_delete = true;
  }
  int64_t current = store_.revision();
  int64_t start = c.start_revision();
  created.set_watch_id(id);
  created.set_created(true);
  if (!s.sink(WatchReply{std::move(created), nullptr})) {
    CancelStream(sid);
    return;
  }
  if (start > 0 && start < store_.compact_revision()) {
    if (!s.sink(WatchReply{Compacted(id), nullptr})) CancelStream(sid);
    return;
  }
  w.next_rev = start == 0 ? current + 1 : start;
  bool cancelled = false;
  // History first (if it starts in the past), then live events.
  if (!CatchUp(s, id, w, &cancelled)) {
    CancelStream(sid);
    return;
  }
  if (!cancelled) {
    s.watchers[id] = std::move(w);
    index_dirty_ = true;
  }
}

etcdserverpb::WatchResponse WatchHub::Compacted(int64_t id) const {
  // etcd's shape: the compaction point, no reason, a header without a
  // revision. Clients tell compaction by compact_revision.
  etcdserverpb::WatchResponse r;
  header_(r.mutable_header());
  r.mutable_header()->set_revision(0);
  r.set_watch_id(id);
  r.set_compact_revision(store_.compact_revision());
  r.set_canceled(true);
  return r;
}

bool WatchHub::CatchUp(Stream& s, int64_t id, Watcher& w, bool* cancelled) {
  int64_t current = store_.revision();
  while (w.next_rev <= current) {
    std::vector<mvccpb::Event> events;
    absl::Status st = store_.EventsSince(w.key, w.end, w.next_rev, kMaxHistoryBatch, &events);
    if (!st.ok()) {  // compacted meanwhile
      *cancelled = true;
      return s.sink(WatchReply{Compacted(id), nullptr});
    }
    if (events.empty()) break;
    int64_t last = events.back().kv().mod_revision();
    if (!SendEvents(s, id, w, events)) return false;
    w.next_rev = last + 1;
  }
  // A watch from a revision this member has not reached yet (a member
  // behind the others, or a start in the future) keeps waiting for it.
  w.next_rev = std::max(w.next_rev, current + 1);
  return true;
}

void WatchHub::Resync() {
  store_.TakeEvents();
  std::vector<uint64_t> slow;
  for (auto& [sid, s] : streams_) {
    for (auto it = s.watchers.begin(); it != s.watchers.end();) {
      bool cancelled = false;
      if (!CatchUp(s, it->first, it->second, &cancelled)) {
        slow.push_back(sid);
        break;
      }
      it = cancelled ? s.watchers.erase(it) : std::next(it);
      index_dirty_ |= cancelled;
    }
  }
  for (uint64_t sid : slow)
    CancelStream(sid);
}

bool WatchHub::Matches(const Watcher& w, const mvccpb::Event& e) const {
  if (e.kv().mod_revision() < w.next_rev) return false;
  if (e.type() == mvccpb::Event::PUT && w.no_put) return false;
  if (e.type() == mvccpb::Event::DELETE && w.no_delete) return false;
  const std::string& k = e.kv().key();
  if (w.end.empty()) return k == w.key;
  if (w.end == std::string_view("\0", 1)) return k >= w.key;
  return k >= w.key && k < w.end;
}

bool WatchHub::SendEvents(Stream& s, int64_t id, Watcher& w,
                          const std::vector<mvccpb::Event>& events) {
  std::vector<etcdserverpb::WatchResponse> out(1);
  size_t bytes = 0;
  for (const mvccpb::Event& e : events) {
    if (!Matches(w, e)) continue;
#ifdef BW_PLANTED_BUGS
    if (planted_drop_events_ && ++planted_sent_ % 500 == 0) continue;
#endif
    mvccpb::Event copy = e;
    if (!w.prev_kv) copy.clear_prev_kv();
    size_t n = copy.ByteSizeLong();
    // A fragmenting watcher gets pieces of at most fragment_bytes_ (one
    // event always fits in a piece, however large).
    if (w.fragment && bytes > 0 && bytes + n > fragment_bytes_) {
      out.emplace_back();
      bytes = 0;
    }
    *out.back().add_events() = std::move(copy);
    bytes += n;
  }
  if (out.back().events_size() == 0) return true;
  for (size_t i = 0; i < out.size(); ++i) {
    header_(out[i].mutable_header());
    out[i].set_watch_id(id);
    out[i].set_fragment(i + 1 < out.size());
    if (!s.sink(WatchReply{std::move(out[i]), nullptr})) return false;
  }
  return true;
}

bool WatchHub::SendLive(Stream& s, int64_t id, Watcher& w, const std::vector<mvccpb::Event>& events,
                        const etcdserverpb::ResponseHeader& header, SharedEvents* shared) {
  bool share = !w.fragment;
#ifdef BW_PLANTED_BUGS
  share = share && !planted_drop_events_;  // the planted gap is per watcher
#endif
  if (!share) return SendEvents(s, id, w, events);
  // Which events this watcher gets, and with prev_kv or not: the key of
  // their shared encoding.
  std::string which(1, w.prev_kv ? 'p' : '-');
  core::ByteWriter key(&which);
  for (size_t i = 0; i < events.size(); ++i) {
    if (Matches(w, events[i])) key.Varint(i);
  }
  if (which.size() == 1) return true;
  std::shared_ptr<const std::string>& bytes = (*shared)[which];
  if (bytes == nullptr) {
    auto encoded = std::make_shared<std::string>();
    for (size_t i = 0; i < events.size(); ++i) {
      if (!Matches(w, events[i])) continue;
      const mvccpb::Event* e = &events[i];
      mvccpb::Event copy;
      if (!w.prev_kv && e->has_prev_kv()) {
        copy = *e;
        copy.clear_prev_kv();
        e = &copy;
      }
      core::ByteWriter out(encoded.get());
      out.U8(kEventsTag);
      out.Varint(e->ByteSizeLong());
      e->AppendToString(encoded.get());
    }
    bytes = std::move(encoded);
  }
  WatchReply reply;
  *reply.response.mutable_header() = header;
  reply.response.set_watch_id(id);
  reply.events = bytes;
  return s.sink(std::move(reply));
}

void WatchHub::RebuildIndex() {
  by_key_.clear();
  ranged_.clear();
  for (const auto& [sid, s] : streams_) {
    for (const auto& [id, w] : s.watchers) {
      if (w.end.empty()) {
        by_key_[w.key].emplace_back(sid, id);
      } else {
        ranged_.emplace_back(sid, id);
      }
    }
  }
  index_dirty_ = false;
}

void WatchHub::OnApplied() {
  std::vector<mvccpb::Event> events = store_.TakeEvents();
  if (events.empty()) return;
  if (index_dirty_) RebuildIndex();
  // The watchers of the events' keys and every range watcher, in stream and
  // watch id order (the order they were always served in).
  std::vector<WatcherRef> candidates = ranged_;
  int lists = candidates.empty() ? 0 : 1;
  const std::string* last_key = nullptr;
  for (const mvccpb::Event& e : events) {
    if (last_key != nullptr && *last_key == e.kv().key()) continue;  // added already
    last_key = &e.kv().key();
    auto it = by_key_.find(e.kv().key());
    if (it != by_key_.end()) {
      candidates.insert(candidates.end(), it->second.begin(), it->second.end());
      ++lists;
    }
  }
  // One list is in order already (the index is built in stream and watch
  // id order); only a merge of several needs sorting (10,000 watchers of
  // one key: the sort was most of this function).
  if (lists > 1) {
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  }
  std::vector<uint64_t> slow;
  etcdserverpb::ResponseHeader header;
  header_(&header);
  SharedEvents shared;
  for (const auto& [sid, id] : candidates) {
    if (!slow.empty() && slow.back() == sid) continue;  // that stream is being cut
    auto s = streams_.find(sid);
    if (s == streams_.end()) continue;
    auto w = s->second.watchers.find(id);
    if (w == s->second.watchers.end()) continue;
    if (!SendLive(s->second, id, w->second, events, header, &shared)) {
      slow.push_back(sid);
      continue;
    }
    w->second.next_rev = std::max(w->second.next_rev, store_.revision() + 1);
  }
  for (uint64_t sid : slow)
    CancelStream(sid);
}

}  // namespace bw::member
