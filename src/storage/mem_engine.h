// The deterministic in-memory storage::Engine the simulator runs members on
// (production runs storage/rocks_engine.h; engine_test.cc holds both to one
// contract). It keeps what a disk would: the state as of the last Sync and
// the batches written since, so a simulated power loss (PowerLoss) leaves
// what the Engine contract allows — the synced state and a prefix of the
// later batches, each whole — chosen by the caller's seeded random.
//
// Views and iterators share the state copy-on-write: taking one costs
// nothing; the first Write while one is open copies the map once.
//
// Thread-safety: none; one owner (the simulated member's loop).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/engine.h"

namespace bw::storage {

class MemEngine final : public Engine {
 public:
  MemEngine();

  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key, const EngineView* view = nullptr) const override;
  std::unique_ptr<EngineIterator> NewIterator(KeyRange range,
                                              const EngineView* view = nullptr) const override;
  std::shared_ptr<const EngineView> View() const override;
  [[nodiscard]] absl::Status Write(const WriteBatch& batch) override;
  [[nodiscard]] absl::Status Sync() override;
  uint64_t ApproximateBytes() const override { return bytes_; }

  // Batches written since the last Sync.
  size_t unsynced_batches() const { return unsynced_.size(); }
  // A power loss: the state becomes the synced one plus the first
  // `keep_unsynced` of the batches written since (at most all of them), as
  // if the engine were reopened on a disk that had kept exactly those.
  void PowerLoss(size_t keep_unsynced);

  using Map = std::map<std::string, std::string, std::less<>>;

 private:
  static void Apply(Map& map, const WriteBatch& batch, uint64_t* bytes);
  // The state `view` reads (nullptr: the latest), shared.
  std::shared_ptr<const Map> MapOf(const EngineView* view) const;
  // Applies the unsynced batches to synced_ (what Sync makes durable).
  void FoldUnsynced();

  // The latest state. Invariant: bytes_ counts its keys and values.
  std::shared_ptr<Map> live_;
  uint64_t bytes_ = 0;
  // What a disk holds for certain: the state as of the last Sync.
  Map synced_;
  uint64_t synced_bytes_ = 0;
  std::vector<WriteBatch> unsynced_;
};

}  // namespace bw::storage
