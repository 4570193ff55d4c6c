#include "env/real/real_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "env/path.h"

namespace bw::env {

absl::Status ErrnoToStatus(std::string_view op, std::string_view path, int err) {
  // absl::string_view is not std::string_view in this Abseil build, so no StrCat.
  std::string message = std::string(op) + " " + std::string(path) + ": " + std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EIO:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

namespace {

// The directory holding `path`: "." for a bare name, "/" for "/name".
// Closes `fd` on scope exit unless released.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int OpenRetry(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// fdatasync (or fsync when `metadata`), retried on EINTR only: any other
// failure means the kernel may have dropped the dirty pages.
absl::Status SyncFd(int fd, const std::string& path, bool metadata) {
  int rc;
  do {
    rc = metadata ? ::fsync(fd) : ::fdatasync(fd);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoToStatus(metadata ? "fsync" : "fdatasync", path, errno);
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = OpenRetry(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus("open", dir, errno);
  FdCloser closer(fd);
  return SyncFd(fd, dir, /*metadata=*/true);
}

// Writes all of `data`, continuing after partial writes and EINTR. Adds the
// bytes that reached the file to *written even on failure.
absl::Status WriteAll(int fd, const std::string& path, std::string_view data, uint64_t* written) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus("write", path, errno);
    }
    if (n == 0) return absl::InternalError(absl::StrCat("write ", path, ": no progress"));
    *written += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status CloseFd(FdCloser& closer, const std::string& path) {
  if (::close(closer.release()) != 0 && errno != EINTR) return ErrnoToStatus("close", path, errno);
  return absl::OkStatus();
}

class RealAppendFile final : public AppendFile {
 public:
  RealAppendFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~RealAppendFile() override { ::close(fd_); }
  RealAppendFile(const RealAppendFile&) = delete;
  RealAppendFile& operator=(const RealAppendFile&) = delete;

  absl::Status Append(std::string_view data) override { return WriteAll(fd_, path_, data, &size_); }
  absl::Status Sync() override {
    std::lock_guard<std::mutex> lock(sync_mu_);
    if (sync_error_.ok()) sync_error_ = SyncFd(fd_, path_, /*metadata=*/false);
    return sync_error_;
  }
  uint64_t Size() const override { return size_; }
  absl::Status Preallocate(uint64_t total_bytes) override {
    if (total_bytes <= size_) return absl::OkStatus();
    if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(total_bytes)) == 0) {
      return absl::OkStatus();
    }
    // tmpfs before 3.5, some network file systems: nothing to reserve with.
    if (errno == EOPNOTSUPP || errno == ENOSYS) return absl::OkStatus();
    return ErrnoToStatus("fallocate", path_, errno);
  }

 private:
  const std::string path_;
  const int fd_;
  uint64_t size_;
  std::mutex sync_mu_;
  absl::Status sync_error_;  // the first failed sync; sticky
};

}  // namespace

absl::StatusOr<std::unique_ptr<AppendFile>> RealDisk::OpenAppend(const std::string& path) {
  struct stat st;
  bool existed = ::stat(path.c_str(), &st) == 0;
  int fd = OpenRetry(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus("open", path, errno);
  FdCloser closer(fd);
  if (::fstat(fd, &st) != 0) return ErrnoToStatus("fstat", path, errno);
  // A new file's directory entry must be durable before its synced bytes are.
  if (!existed) BW_RETURN_IF_ERROR(SyncDir(ParentDir(path)));
  return std::make_unique<RealAppendFile>(path, closer.release(),
                                          static_cast<uint64_t>(st.st_size));
}

absl::StatusOr<std::string> RealDisk::ReadFile(const std::string& path) {
  int fd = OpenRetry(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus("open", path, errno);
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoToStatus("fstat", path, errno);
  std::string out;
  // One byte past the expected size so that the loop sees EOF without a resize.
  size_t capacity = std::max<size_t>(static_cast<size_t>(st.st_size) + 1, 4096);
  out.resize(capacity);
  size_t used = 0;
  while (true) {
    if (used == out.size()) out.resize(out.size() * 2);
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus("read", path, errno);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out.resize(used);
  return out;
}

absl::StatusOr<std::string> RealDisk::ReadAt(const std::string& path, uint64_t offset,
                                             uint64_t size) {
  int fd = OpenRetry(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus("open", path, errno);
  FdCloser closer(fd);
  std::string out(size, '\0');
  size_t used = 0;
  while (used < out.size()) {
    ssize_t n =
        ::pread(fd, out.data() + used, out.size() - used, static_cast<off_t>(offset + used));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus("pread", path, errno);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out.resize(used);
  return out;
}

absl::Status RealDisk::WriteFileAtomic(const std::string& path, std::string_view data) {
  return WriteFileAtomicParts(path, {data});
}

absl::Status RealDisk::WriteFileAtomicParts(const std::string& path,
                                            absl::Span<const std::string_view> parts) {
  const std::string tmp = path + ".tmp";
  int fd = OpenRetry(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus("open", tmp, errno);
  FdCloser closer(fd);
  uint64_t written = 0;
  absl::Status status;
  for (std::string_view data : parts) {
    if (status.ok()) status = WriteAll(fd, tmp, data, &written);
  }
  if (status.ok()) status = SyncFd(fd, tmp, /*metadata=*/false);
  if (status.ok()) status = CloseFd(closer, tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoToStatus("rename", absl::StrCat(tmp, " -> ", path), errno);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());  // Best effort; a leftover temp file is harmless.
    return status;
  }
  return SyncDir(ParentDir(path));
}

absl::Status RealDisk::Truncate(const std::string& path, uint64_t size) {
  int fd = OpenRetry(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus("open", path, errno);
  FdCloser closer(fd);
  int rc;
  do {
    rc = ::ftruncate(fd, static_cast<off_t>(size));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoToStatus("ftruncate", path, errno);
  BW_RETURN_IF_ERROR(SyncFd(fd, path, /*metadata=*/false));
  return CloseFd(closer, path);
}

absl::Status RealDisk::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return ErrnoToStatus("unlink", path, errno);
  return SyncDir(ParentDir(path));
}

absl::StatusOr<std::vector<std::string>> RealDisk::List(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoToStatus("opendir", dir, errno);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      int err = errno;
      ::closedir(d);
      if (err != 0) return ErrnoToStatus("readdir", dir, err);
      break;
    }
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status RealDisk::CreateDir(const std::string& dir) {
  BW_ASSERT_MSG(!dir.empty(), "CreateDir of an empty path");
  for (const std::string& prefix : DirPrefixes(dir)) {
    if (::mkdir(prefix.c_str(), 0755) == 0) {
      BW_RETURN_IF_ERROR(SyncDir(ParentDir(prefix)));
    } else if (errno == EEXIST) {
      struct stat st;
      if (::stat(prefix.c_str(), &st) != 0) return ErrnoToStatus("stat", prefix, errno);
      if (!S_ISDIR(st.st_mode)) return ErrnoToStatus("mkdir", prefix, ENOTDIR);
    } else {
      return ErrnoToStatus("mkdir", prefix, errno);
    }
  }
  return absl::OkStatus();
}

bool RealDisk::Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<uint64_t> RealDisk::FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace bw::env
