// The world, as the rest of bulwark sees it. Code outside env/real/ never
// reads the wall clock, sleeps, spawns threads or opens files and sockets:
// it asks an Env. RealEnv (env/real) is the production world; SimEnv
// (env/sim) is a deterministic world driven from one seed.
//
// Thread-safety: an Env and everything it hands out are used by the single
// event-loop thread that owns the node, unless an implementation says more.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "core/status.h"
#include "core/types.h"

namespace bw::env {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary origin, in microseconds.
  virtual int64_t NowMicros() = 0;
};

using TimerId = uint64_t;

class Timers {
 public:
  virtual ~Timers() = default;
  // Runs `fn` once, on the owning thread, no earlier than `delay_us` from now.
  virtual TimerId Schedule(int64_t delay_us, std::function<void()> fn) = 0;
  // Cancelling a timer that already ran or was cancelled is a no-op.
  virtual void Cancel(TimerId id) = 0;
};

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t Next() = 0;
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  bool Chance(double p) { return Uniform() < p; }
};

// Unreliable, unordered datagrams between nodes of one cluster. Delivery is
// not guaranteed; a message either arrives whole or not at all.
class Network {
 public:
  using Receiver = std::function<void(NodeId from, std::string_view bytes)>;
  virtual ~Network() = default;
  virtual void Send(NodeId to, std::string bytes) = 0;
  virtual void SetReceiver(Receiver receiver) = 0;
};

// A file opened for appending. Appended bytes are durable only once Sync()
// has returned OK; a crash may drop any unsynced suffix.
class AppendFile {
 public:
  virtual ~AppendFile() = default;
  [[nodiscard]] virtual absl::Status Append(std::string_view data) = 0;
  // fdatasync. A failed sync is fatal to the caller: the page cache may have
  // dropped the data, so retrying cannot make it durable. Sticky: after a
  // failure every later Sync of this handle returns the same error (the
  // kernel reports a writeback error once, to whichever sync looks first).
  // Sync may be called from another thread than Append, and concurrent
  // Syncs of one handle are serialized, so none can miss another's error.
  [[nodiscard]] virtual absl::Status Sync() = 0;
  virtual uint64_t Size() const = 0;
  // Reserves room for the file to grow to `total_bytes` without changing its
  // size (fallocate with FALLOC_FL_KEEP_SIZE): later appends cannot fail for
  // want of space and the blocks lie together. RESOURCE_EXHAUSTED if the
  // device has no room; a file system that cannot preallocate is not an error.
  [[nodiscard]] virtual absl::Status Preallocate(uint64_t total_bytes) = 0;
};

class Disk {
 public:
  virtual ~Disk() = default;
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<AppendFile>> OpenAppend(
      const std::string& path) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // Up to `size` bytes of a file from `offset` (fewer where the file ends;
  // none past its end). Reads what was appended, synced or not.
  [[nodiscard]] virtual absl::StatusOr<std::string> ReadAt(const std::string& path, uint64_t offset,
                                                           uint64_t size) = 0;
  // Writes a whole file durably and atomically (write temp, sync, rename, sync dir).
  [[nodiscard]] virtual absl::Status WriteFileAtomic(const std::string& path,
                                                     std::string_view data) = 0;
  // The same with the file's bytes given in pieces, written one after the
  // other (so a large file need not be copied into one buffer first). The
  // default joins them; a real disk writes them as they are.
  [[nodiscard]] virtual absl::Status WriteFileAtomicParts(
      const std::string& path, absl::Span<const std::string_view> parts) {
    std::string joined;
    for (std::string_view p : parts)
      joined.append(p);
    return WriteFileAtomic(path, joined);
  }
  [[nodiscard]] virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  [[nodiscard]] virtual absl::Status Remove(const std::string& path) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> List(const std::string& dir) = 0;
  [[nodiscard]] virtual absl::Status CreateDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // The length of a file; NOT_FOUND if there is none.
  [[nodiscard]] virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  virtual Clock& clock() = 0;
  virtual Timers& timers() = 0;
  virtual Random& random() = 0;
  virtual Network& network() = 0;
  virtual Disk& disk() = 0;
  // Runs `work` (blocking disk I/O: an fdatasync) without holding up the
  // owning thread, then `done` with its result on the owning thread, never
  // before Offload returns. Works run one at a time, in the order given.
  // The real world runs them on a storage thread while the event loop goes
  // on; the simulated one after the disk's simulated latency. This default
  // runs `work` at once and `done` from a timer.
  virtual void Offload(std::function<absl::Status()> work, std::function<void(absl::Status)> done) {
    absl::Status s = work();
    timers().Schedule(0, [done = std::move(done), s = std::move(s)] { done(s); });
  }
};

}  // namespace bw::env
