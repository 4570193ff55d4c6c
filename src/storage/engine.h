// storage::Engine: the sorted key-value engine a member's applied state lives
// in. RocksDB in production (storage/rocks_engine.h), a deterministic
// in-memory engine in the simulator (storage/mem_engine.h); one conformance
// suite (engine_test.cc) runs against both.
//
// Contract, for every engine:
//  - Keys and values are byte strings; keys sort bytewise (unsigned), the
//    empty key first.
//  - Write applies a WriteBatch atomically and in order (a later operation on
//    the same key wins): a read after Write returns sees all of it, a read
//    before sees none of it.
//  - Durability: a batch is durable once Sync returns after its Write. A
//    power loss leaves a prefix of the batches written — every batch synced,
//    then perhaps some later ones, each whole; never a part of a batch, never
//    a batch without the ones before it. (RocksDB also keeps every written
//    batch across a crash of the process alone: its log is in the kernel's
//    page cache when Write returns.)
//  - A View is a point-in-time read of the whole engine: reads through it
//    never see a later Write. It stays valid while the engine lives.
//  - Errors: an engine's I/O failure is a Status (DATA_LOSS for corruption,
//    RESOURCE_EXHAUSTED for a full disk, INTERNAL otherwise) naming the
//    operation and path; after a failed Write or Sync the caller must stop
//    (what reached the disk is unknown), as after a failed WAL sync.
//
// Thread-safety: none required of callers beyond one owner thread (the
// member's loop); the engines may run background threads of their own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace bw::storage {

// Operations applied together by Engine::Write.
class WriteBatch {
 public:
  enum class Op : uint8_t { kPut, kDelete, kDeleteRange };
  struct Entry {
    Op op;
    std::string key;    // kDeleteRange: the first key removed
    std::string value;  // kPut: the value; kDeleteRange: the end (not removed)
  };

  void Put(std::string_view key, std::string_view value) { Add(Op::kPut, key, value); }
  void Delete(std::string_view key) { Add(Op::kDelete, key, {}); }
  // Removes every key in [begin, end); nothing when end <= begin.
  void DeleteRange(std::string_view begin, std::string_view end) {
    Add(Op::kDeleteRange, begin, end);
  }

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // Key and value bytes held (what the batch costs in memory).
  uint64_t bytes() const { return bytes_; }
  void Clear() {
    entries_.clear();
    bytes_ = 0;
  }

 private:
  void Add(Op op, std::string_view key, std::string_view value) {
    entries_.push_back(Entry{op, std::string(key), std::string(value)});
    bytes_ += key.size() + value.size();
  }

  std::vector<Entry> entries_;
  uint64_t bytes_ = 0;
};

// A point-in-time view (Engine::View). Opaque: only the engine that made it
// reads through it.
class EngineView {
 public:
  virtual ~EngineView() = default;
};

// Keys in [lower, upper); an empty upper means no end.
struct KeyRange {
  std::string lower;
  std::string upper;
  bool Contains(std::string_view key) const {
    return key >= std::string_view(lower) && (upper.empty() || key < std::string_view(upper));
  }
};

// Forward iteration in key order over a KeyRange. Positioned before the
// first key until Seek or SeekToFirst.
class EngineIterator {
 public:
  virtual ~EngineIterator() = default;
  // The first key of the range.
  virtual void SeekToFirst() = 0;
  // The first key of the range at or after `key`.
  virtual void Seek(std::string_view key) = 0;
  virtual bool Valid() const = 0;
  // Requires Valid().
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Not OK if iteration stopped on an error (Valid() is then false).
  virtual absl::Status status() const = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // nullopt when the key is absent. `view` (from this engine's View) reads
  // the state it was taken at; nullptr reads the latest.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key, const EngineView* view = nullptr) const = 0;
  // An iterator over `range` of the latest state or of `view`. It must not
  // outlive the engine; with view == nullptr, a Write while it is open
  // leaves what it sees unspecified (take a View to iterate while writing).
  virtual std::unique_ptr<EngineIterator> NewIterator(KeyRange range,
                                                      const EngineView* view = nullptr) const = 0;
  virtual std::shared_ptr<const EngineView> View() const = 0;

  [[nodiscard]] virtual absl::Status Write(const WriteBatch& batch) = 0;
  [[nodiscard]] virtual absl::Status Sync() = 0;

  // Bytes the engine holds: on disk for RocksDB (its live files), keys and
  // values for the in-memory engine.
  virtual uint64_t ApproximateBytes() const = 0;
};

}  // namespace bw::storage
