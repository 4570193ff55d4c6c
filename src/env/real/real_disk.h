// The production Disk: POSIX files, fdatasync and directory fsync.
//
// Durability contract (the same one SimDisk models):
//   - AppendFile::Append writes through to the page cache; the bytes are
//     durable once Sync() (fdatasync) has returned OK.
//   - OpenAppend creating a new file, WriteFileAtomic, Truncate, Remove and
//     CreateDir are durable when they return OK: each syncs the data it wrote
//     and fsyncs the parent directory whose entries it changed.
//   - WriteFileAtomic writes `path + ".tmp"` first; a crash part-way may leave
//     that temp file behind, never a half-written `path`.
//
// Errors: every failure is an absl::Status whose message reads
// "<syscall> <path>: <strerror(errno)>", e.g. "fdatasync /x/wal: Input/output
// error". Codes: ENOSPC and EDQUOT -> RESOURCE_EXHAUSTED, ENOENT -> NOT_FOUND,
// EIO -> DATA_LOSS (the device lost or could not store the bytes; a failed
// sync must not be retried), anything else -> INTERNAL.
//
// Thread-safety: RealDisk has no state and may be used from any thread. An
// AppendFile it returns is owned by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "env/env.h"

namespace bw::env {

// "<op> <path>: <strerror(err)>" with the code mapping described above.
absl::Status ErrnoToStatus(std::string_view op, std::string_view path, int err);

class RealDisk final : public Disk {
 public:
  RealDisk() = default;
  RealDisk(const RealDisk&) = delete;
  RealDisk& operator=(const RealDisk&) = delete;

  // O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, mode 0644. Size() starts at the
  // file's current length and counts the bytes appended through this handle;
  // it does not see a Truncate made behind its back (reopen after one).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<AppendFile>> OpenAppend(
      const std::string& path) override;
  [[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  [[nodiscard]] absl::StatusOr<std::string> ReadAt(const std::string& path, uint64_t offset,
                                                   uint64_t size) override;
  [[nodiscard]] absl::Status WriteFileAtomic(const std::string& path,
                                             std::string_view data) override;
  [[nodiscard]] absl::Status WriteFileAtomicParts(
      const std::string& path, absl::Span<const std::string_view> parts) override;
  // Sets the length (extending with zero bytes), then fdatasyncs the file.
  [[nodiscard]] absl::Status Truncate(const std::string& path, uint64_t size) override;
  // Unlinks a file (not a directory), then fsyncs its parent directory.
  [[nodiscard]] absl::Status Remove(const std::string& path) override;
  // Names of the entries in `dir` (files and subdirectories), sorted, without
  // "." and "..".
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List(const std::string& dir) override;
  // mkdir -p, mode 0755: OK if `dir` already exists as a directory.
  [[nodiscard]] absl::Status CreateDir(const std::string& dir) override;
  bool Exists(const std::string& path) override;
  [[nodiscard]] absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
};

}  // namespace bw::env
