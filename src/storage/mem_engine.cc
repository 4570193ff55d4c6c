#include "storage/mem_engine.h"

#include <algorithm>
#include <utility>

#include "core/assert.h"

namespace bw::storage {

namespace {

class MemView final : public EngineView {
 public:
  MemView(const MemEngine* owner, std::shared_ptr<const MemEngine::Map> map)
      : owner_(owner), map_(std::move(map)) {}
  const MemEngine* owner() const { return owner_; }
  const std::shared_ptr<const MemEngine::Map>& shared_map() const { return map_; }

 private:
  const MemEngine* owner_;
  std::shared_ptr<const MemEngine::Map> map_;
};

class MemIterator final : public EngineIterator {
 public:
  MemIterator(std::shared_ptr<const MemEngine::Map> map, KeyRange range)
      : map_(std::move(map)), range_(std::move(range)), it_(map_->end()) {}

  void SeekToFirst() override { Seek(range_.lower); }
  void Seek(std::string_view key) override {
    it_ = map_->lower_bound(std::max(key, std::string_view(range_.lower)));
  }
  bool Valid() const override { return it_ != map_->end() && range_.Contains(it_->first); }
  void Next() override {
    BW_ASSERT(Valid());
    ++it_;
  }
  std::string_view key() const override {
    BW_ASSERT(Valid());
    return it_->first;
  }
  std::string_view value() const override {
    BW_ASSERT(Valid());
    return it_->second;
  }
  absl::Status status() const override { return absl::OkStatus(); }

 private:
  // Shared with the engine until its next Write, which then copies.
  std::shared_ptr<const MemEngine::Map> map_;
  KeyRange range_;
  MemEngine::Map::const_iterator it_;
};

}  // namespace

MemEngine::MemEngine() : live_(std::make_shared<Map>()) {}

void MemEngine::Apply(Map& map, const WriteBatch& batch, uint64_t* bytes) {
  auto erase = [&](Map::iterator it) {
    *bytes -= it->first.size() + it->second.size();
    return map.erase(it);
  };
  for (const WriteBatch::Entry& e : batch.entries()) {
    switch (e.op) {
      case WriteBatch::Op::kPut: {
        auto [it, inserted] = map.try_emplace(e.key);
        if (inserted) {
          *bytes += e.key.size();
        } else {
          *bytes -= it->second.size();
        }
        it->second = e.value;
        *bytes += e.value.size();
        break;
      }
      case WriteBatch::Op::kDelete: {
        auto it = map.find(e.key);
        if (it != map.end()) erase(it);
        break;
      }
      case WriteBatch::Op::kDeleteRange: {
        if (e.value <= e.key) break;
        for (auto it = map.lower_bound(e.key); it != map.end() && it->first < e.value;)
          it = erase(it);
        break;
      }
    }
  }
}

std::shared_ptr<const MemEngine::Map> MemEngine::MapOf(const EngineView* view) const {
  if (view == nullptr) return live_;
  const auto* v = dynamic_cast<const MemView*>(view);
  BW_ASSERT(v != nullptr && v->owner() == this);  // a view of another engine
  return v->shared_map();
}

absl::StatusOr<std::optional<std::string>> MemEngine::Get(std::string_view key,
                                                          const EngineView* view) const {
  const std::shared_ptr<const Map> map = MapOf(view);
  auto it = map->find(key);
  if (it == map->end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

std::unique_ptr<EngineIterator> MemEngine::NewIterator(KeyRange range,
                                                       const EngineView* view) const {
  return std::make_unique<MemIterator>(MapOf(view), std::move(range));
}

std::shared_ptr<const EngineView> MemEngine::View() const {
  return std::make_shared<MemView>(this, live_);
}

absl::Status MemEngine::Write(const WriteBatch& batch) {
  // Copy on write: a view or iterator still reads the old state.
  if (live_.use_count() > 1) live_ = std::make_shared<Map>(*live_);
  Apply(*live_, batch, &bytes_);
  unsynced_.push_back(batch);
  return absl::OkStatus();
}

absl::Status MemEngine::Sync() {
  FoldUnsynced();
  return absl::OkStatus();
}

void MemEngine::FoldUnsynced() {
  for (const WriteBatch& b : unsynced_)
    Apply(synced_, b, &synced_bytes_);
  unsynced_.clear();
}

void MemEngine::PowerLoss(size_t keep_unsynced) {
  keep_unsynced = std::min(keep_unsynced, unsynced_.size());
  unsynced_.resize(keep_unsynced);
  FoldUnsynced();
  live_ = std::make_shared<Map>(synced_);
  bytes_ = synced_bytes_;
}

}  // namespace bw::storage
