#include "env/sim/sim_disk.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "env/path.h"

namespace bw::env {

namespace {

constexpr std::string_view kNoEntry = "No such file or directory";
constexpr std::string_view kIsDir = "Is a directory";
constexpr std::string_view kNotDir = "Not a directory";

std::string Message(std::string_view op, std::string_view path, std::string_view what) {
  // absl::string_view is not std::string_view in this Abseil build, so no StrCat.
  return std::string(op) + " " + std::string(path) + ": " + std::string(what);
}

// The directory holding `path`: "." for a bare name, "/" for "/name".
// "a/b/" -> "a/b"; "/" stays "/".
std::string StripTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return dir;
}

// splitmix64: the stream behind Crash(seed).
class SeedStream final : public Random {
 public:
  explicit SeedStream(uint64_t seed) : state_(seed) {}
  uint64_t Next() override {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace

absl::Status SimDiskFaults::Validate() const {
  for (double p : {torn_tail, sync_eio, read_bit_flip}) {
    if (!(p >= 0 && p <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SimDiskFaults: probability ", p, " is outside [0, 1]"));
    }
  }
  return absl::OkStatus();
}

// An AppendFile on one File of one SimDisk incarnation.
class SimDisk::Handle final : public AppendFile {
 public:
  Handle(SimDisk* disk, std::string path, std::shared_ptr<File> file)
      : disk_(disk), path_(std::move(path)), file_(std::move(file)), epoch_(disk->epoch_) {
    ++disk_->open_handles_;
  }
  ~Handle() override { --disk_->open_handles_; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  absl::Status Append(std::string_view data) override {
    BW_RETURN_IF_ERROR(CheckEpoch("write"));
    if (data.empty()) return absl::OkStatus();
    BW_RETURN_IF_ERROR(disk_->CheckSpace("write", path_, data.size()));
    file_->data.append(data);
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    BW_RETURN_IF_ERROR(CheckEpoch("fdatasync"));
    if (!sync_error_.ok()) return sync_error_;
    if (Fire(disk_->random_, disk_->faults_.sync_eio)) {
      ++disk_->counts_.sync_failures;
      sync_error_ = absl::DataLossError(
          absl::StrCat(Message("fdatasync", path_, "Input/output error"), " (injected)"));
      return sync_error_;
    }
    file_->durable_size = file_->data.size();
    return absl::OkStatus();
  }

  uint64_t Size() const override { return file_->data.size(); }

  // Reserves nothing (the model has no blocks) but fails as a full device
  // would when the file could not grow to `total_bytes`.
  absl::Status Preallocate(uint64_t total_bytes) override {
    BW_RETURN_IF_ERROR(CheckEpoch("fallocate"));
    if (total_bytes <= file_->data.size()) return absl::OkStatus();
    return disk_->CheckSpace("fallocate", path_, total_bytes - file_->data.size());
  }

 private:
  absl::Status CheckEpoch(std::string_view op) const {
    if (epoch_ == disk_->epoch_) return absl::OkStatus();
    return absl::FailedPreconditionError(Message(op, path_, "file handle from before a crash"));
  }

  SimDisk* const disk_;
  const std::string path_;
  const std::shared_ptr<File> file_;
  const uint64_t epoch_;
  absl::Status sync_error_;  // the first failed sync; sticky
};

SimDisk::SimDisk(Random& random, SimDiskFaults faults) : random_(random) {
  set_faults(faults);
  dirs_.insert("/");
  dirs_.insert(".");
}

SimDisk::~SimDisk() {
  BW_ASSERT_MSG(open_handles_ == 0, "SimDisk destroyed while AppendFile handles are open");
}

void SimDisk::set_faults(const SimDiskFaults& faults) {
  absl::Status valid = faults.Validate();
  BW_ASSERT_MSG(valid.ok(), valid.ToString());
  faults_ = faults;
}

uint64_t SimDisk::used_bytes() const {
  uint64_t used = 0;
  for (const auto& [path, file] : files_)
    used += file->data.size();
  return used;
}

bool SimDisk::Fire(Random& random, double probability) {
  if (probability <= 0) return false;
  if (probability >= 1) return true;
  return random.Chance(probability);
}

absl::Status SimDisk::CheckParent(std::string_view op, const std::string& path) const {
  std::string parent = ParentDir(path);
  if (dirs_.count(parent) > 0) return absl::OkStatus();
  if (files_.count(parent) > 0) return absl::InternalError(Message(op, path, kNotDir));
  return absl::NotFoundError(Message(op, path, kNoEntry));
}

absl::Status SimDisk::CheckSpace(std::string_view op, const std::string& path, uint64_t more) {
  const uint64_t used = used_bytes();
  const uint64_t capacity = faults_.capacity_bytes;
  if (more == 0 || (used <= capacity && more <= capacity - used)) return absl::OkStatus();
  ++counts_.no_space;
  return absl::ResourceExhaustedError(
      absl::StrCat(Message(op, path, "No space left on device"), " (injected)"));
}

absl::StatusOr<std::unique_ptr<AppendFile>> SimDisk::OpenAppend(const std::string& path) {
  if (dirs_.count(path) > 0) return absl::InternalError(Message("open", path, kIsDir));
  BW_RETURN_IF_ERROR(CheckParent("open", path));
  std::shared_ptr<File>& file = files_[path];
  if (file == nullptr) file = std::make_shared<File>();
  return std::make_unique<Handle>(this, path, file);
}

std::string SimDisk::FlipOnRead(std::string data) {
  if (!data.empty() && Fire(random_, faults_.read_bit_flip)) {
    const uint64_t bit = random_.Below(data.size() * 8);
    data[bit / 8] =
        static_cast<char>(static_cast<unsigned char>(data[bit / 8]) ^ (1u << (bit % 8)));
    ++counts_.bit_flips;
  }
  return data;
}

absl::StatusOr<std::string> SimDisk::ReadFile(const std::string& path) {
  if (dirs_.count(path) > 0) return absl::InternalError(Message("read", path, kIsDir));
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(Message("open", path, kNoEntry));
  std::string data = it->second->data;
  return FlipOnRead(std::move(data));
}

absl::StatusOr<std::string> SimDisk::ReadAt(const std::string& path, uint64_t offset,
                                            uint64_t size) {
  if (dirs_.count(path) > 0) return absl::InternalError(Message("read", path, kIsDir));
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(Message("open", path, kNoEntry));
  const std::string& all = it->second->data;
  std::string data = offset >= all.size() ? std::string() : all.substr(offset, size);
  return FlipOnRead(std::move(data));
}

absl::Status SimDisk::WriteFileAtomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  if (dirs_.count(path) > 0) {
    return absl::InternalError(Message("rename", absl::StrCat(tmp, " -> ", path), kIsDir));
  }
  BW_RETURN_IF_ERROR(CheckParent("open", tmp));
  // The temp file is written in full while the old file still exists.
  BW_RETURN_IF_ERROR(CheckSpace("write", tmp, data.size()));
  auto file = std::make_shared<File>();
  file->data.assign(data);
  file->durable_size = file->data.size();
  files_[path] = std::move(file);
  return absl::OkStatus();
}

absl::Status SimDisk::Truncate(const std::string& path, uint64_t size) {
  if (dirs_.count(path) > 0) return absl::InternalError(Message("open", path, kIsDir));
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(Message("open", path, kNoEntry));
  File& file = *it->second;
  if (size > file.data.size()) {
    BW_RETURN_IF_ERROR(CheckSpace("ftruncate", path, size - file.data.size()));
  }
  file.data.resize(size, '\0');
  file.durable_size = size;
  return absl::OkStatus();
}

absl::Status SimDisk::Remove(const std::string& path) {
  if (dirs_.count(path) > 0) return absl::InternalError(Message("unlink", path, kIsDir));
  if (files_.erase(path) == 0) return absl::NotFoundError(Message("unlink", path, kNoEntry));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SimDisk::List(const std::string& dir_in) {
  const std::string dir = StripTrailingSlashes(dir_in);
  if (dirs_.count(dir) == 0) {
    if (files_.count(dir) > 0) return absl::InternalError(Message("opendir", dir, kNotDir));
    return absl::NotFoundError(Message("opendir", dir, kNoEntry));
  }
  std::vector<std::string> names;
  for (const auto& [path, file] : files_) {
    if (ParentDir(path) == dir) names.push_back(BaseName(path));
  }
  for (const std::string& sub : dirs_) {
    if (sub != dir && ParentDir(sub) == dir) names.push_back(BaseName(sub));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status SimDisk::CreateDir(const std::string& dir) {
  BW_ASSERT_MSG(!dir.empty(), "CreateDir of an empty path");
  for (std::string& prefix : DirPrefixes(dir)) {
    if (files_.count(prefix) > 0) return absl::InternalError(Message("mkdir", prefix, kNotDir));
    dirs_.insert(std::move(prefix));
  }
  return absl::OkStatus();
}

bool SimDisk::Exists(const std::string& path) {
  return files_.count(path) > 0 || dirs_.count(StripTrailingSlashes(path)) > 0;
}

absl::StatusOr<uint64_t> SimDisk::FileSize(const std::string& path) {
  auto it = files_.find(path);
  if (it == files_.end()) {
    return absl::NotFoundError(Message("stat", path, "No such file or directory"));
  }
  return it->second->data.size();
}

void SimDisk::Crash() {
  CrashWith(random_);
}

void SimDisk::Crash(uint64_t seed) {
  SeedStream stream(seed);
  CrashWith(stream);
}

void SimDisk::CrashWith(Random& random) {
  ++epoch_;
  ++counts_.crashes;
  for (auto& [path, file] : files_) {
    BW_ASSERT_LE(file->durable_size, file->data.size());
    const uint64_t unsynced = file->data.size() - file->durable_size;
    uint64_t kept = 0;
    if (unsynced > 0 && Fire(random, faults_.torn_tail)) {
      kept = random.Below(unsynced + 1);
      ++counts_.torn_tails;
    }
    counts_.unsynced_bytes_lost += unsynced - kept;
    // A fresh File: handles from before the crash keep the old one.
    auto survivor = std::make_shared<File>();
    survivor->data = file->data.substr(0, file->durable_size + kept);
    survivor->durable_size = survivor->data.size();
    file = std::move(survivor);
  }
}

uint64_t SimDisk::durable_size(const std::string& path) const {
  auto it = files_.find(path);
  return it == files_.end() ? 0 : it->second->durable_size;
}

absl::Status SimDisk::FlipStoredBit(const std::string& path, uint64_t offset, int bit) {
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(Message("flip", path, "No such file"));
  if (offset >= it->second->data.size() || bit < 0 || bit > 7) {
    return absl::OutOfRangeError(
        absl::StrCat("flip ", path, ": no bit ", bit, " at byte ", offset));
  }
  it->second->data[offset] = static_cast<char>(it->second->data[offset] ^ (1 << bit));
  return absl::OkStatus();
}

}  // namespace bw::env
