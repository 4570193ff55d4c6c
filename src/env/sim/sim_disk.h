// An in-memory Disk for the deterministic simulator, with power loss and
// injected faults.
//
// Model. Each file is a byte string of which a prefix is durable; the rest
// are bytes appended but not yet synced.
//   - AppendFile::Append adds unsynced bytes; AppendFile::Sync makes the
//     whole file durable.
//   - Creating a file (OpenAppend of a new path), WriteFileAtomic, Truncate
//     (which also makes the remaining bytes durable), Remove and CreateDir are
//     durable the moment they return OK, as RealDisk makes them by syncing the
//     file and its directory.
//   - Crash() is a power loss: every file keeps its durable bytes and either
//     none of its unsynced bytes or, with probability `torn_tail`, a prefix of
//     them of uniformly random length (byte-granular, which is harsher than a
//     real disk's sectors). Every AppendFile opened before the crash is dead
//     afterwards: its operations return FAILED_PRECONDITION.
//   - Files behave as inodes: a handle on a file that is then removed or
//     replaced by WriteFileAtomic keeps writing to the old, unlinked bytes.
//
// Errors read like RealDisk's ("<syscall> <path>: <strerror>") with the same
// codes; injected ones end in "(injected)": a failed sync is DATA_LOSS
// ("fdatasync /x/wal: Input/output error (injected)"), a full disk is
// RESOURCE_EXHAUSTED ("write /x/wal: No space left on device (injected)").
//
// Determinism: no clock, no global state, ordered containers only. Every
// random choice is drawn from the Random given to the constructor (or, for
// Crash(seed), from the seed), and a fault whose probability is 0 draws
// nothing, so a disk without faults never perturbs the caller's stream.
//
// Ownership and threads: single-threaded. The Random passed in must outlive
// the SimDisk, and every AppendFile it hands out must be destroyed before it.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "env/env.h"

namespace bw::env {

struct SimDiskFaults {
  static constexpr uint64_t kUnlimitedCapacity = std::numeric_limits<uint64_t>::max();

  // Probability, per file with unsynced bytes, that a crash keeps a random
  // prefix of them (a torn write) instead of dropping them all.
  double torn_tail = 0;
  // Probability that an AppendFile::Sync fails with EIO (DATA_LOSS). The
  // unsynced bytes stay readable and unsynced.
  double sync_eio = 0;
  // Appends, atomic writes and growing truncates fail with ENOSPC when the
  // bytes of all files would exceed this. WriteFileAtomic needs room for the
  // new file while the old one still exists.
  uint64_t capacity_bytes = kUnlimitedCapacity;
  // Probability that ReadFile or ReadAt returns its data with exactly one bit
  // flipped.
  // The stored bytes are not changed.
  double read_bit_flip = 0;

  // Probabilities must lie in [0, 1].
  [[nodiscard]] absl::Status Validate() const;
};

// What the disk has done to its user, for reports.
struct SimDiskFaultCounts {
  uint64_t crashes = 0;
  uint64_t torn_tails = 0;           // crash kept a partial unsynced tail
  uint64_t unsynced_bytes_lost = 0;  // bytes dropped by crashes
  uint64_t sync_failures = 0;        // injected EIO on Sync
  uint64_t no_space = 0;             // injected ENOSPC
  uint64_t bit_flips = 0;            // ReadFile and ReadAt results corrupted
};

class SimDisk final : public Disk {
 public:
  // `faults` must be valid (asserted). `random` must outlive the disk.
  explicit SimDisk(Random& random, SimDiskFaults faults = {});
  ~SimDisk() override;
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  [[nodiscard]] absl::StatusOr<std::unique_ptr<AppendFile>> OpenAppend(
      const std::string& path) override;
  [[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  [[nodiscard]] absl::StatusOr<std::string> ReadAt(const std::string& path, uint64_t offset,
                                                   uint64_t size) override;
  [[nodiscard]] absl::Status WriteFileAtomic(const std::string& path,
                                             std::string_view data) override;
  [[nodiscard]] absl::Status Truncate(const std::string& path, uint64_t size) override;
  [[nodiscard]] absl::Status Remove(const std::string& path) override;
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List(const std::string& dir) override;
  [[nodiscard]] absl::Status CreateDir(const std::string& dir) override;
  bool Exists(const std::string& path) override;
  [[nodiscard]] absl::StatusOr<uint64_t> FileSize(const std::string& path) override;

  // Power loss, choices drawn from the constructor's Random.
  void Crash();
  // Power loss whose outcome is a function of the disk's contents and `seed`
  // alone.
  void Crash(uint64_t seed);

  const SimDiskFaults& faults() const { return faults_; }
  // Takes effect for the next operation; `faults` must be valid (asserted).
  void set_faults(const SimDiskFaults& faults);
  const SimDiskFaultCounts& counts() const { return counts_; }
  // Bytes held by all files reachable by path (durable or not).
  uint64_t used_bytes() const;
  // The durable length of a file (0 if there is none).
  uint64_t durable_size(const std::string& path) const;
  // Latent corruption (bit rot): flips bit `bit` of byte `offset` of the
  // stored file, durable bytes included. NOT_FOUND / OUT_OF_RANGE when there
  // is no such file or byte.
  [[nodiscard]] absl::Status FlipStoredBit(const std::string& path, uint64_t offset, int bit);

 private:
  struct File {
    std::string data;
    // Invariant: durable_size <= data.size().
    uint64_t durable_size = 0;
  };
  class Handle;

  // OK if the directory holding `path` exists.
  absl::Status CheckParent(std::string_view op, const std::string& path) const;
  // ENOSPC if `more` bytes would not fit.
  absl::Status CheckSpace(std::string_view op, const std::string& path, uint64_t more);
  void CrashWith(Random& random);
  static bool Fire(Random& random, double probability);
  // What a read returns: `data`, with one bit flipped at read_bit_flip.
  std::string FlipOnRead(std::string data);

  Random& random_;
  SimDiskFaults faults_;
  SimDiskFaultCounts counts_;
  // Files by path. Shared with the handles open on them; an entry replaced or
  // erased lives on, unlinked, for as long as a handle holds it.
  std::map<std::string, std::shared_ptr<File>> files_;
  // Directories by path, without trailing '/'. Always holds "/" and ".".
  std::set<std::string> dirs_;
  // Bumped by every crash; a handle from an older epoch is dead.
  uint64_t epoch_ = 0;
  // Handles alive, to assert that none outlives the disk.
  uint64_t open_handles_ = 0;
};

}  // namespace bw::env
