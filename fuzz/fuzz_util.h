// What the fuzz targets share: a reader that turns the fuzzer's bytes into
// choices, and the seed-writing mode that regenerates fuzz/corpus/.
//
// Seeds. Every target defines `std::vector<std::string> Seeds()` (valid,
// representative inputs built with the project's own encoders) and calls
// BW_FUZZ_SEEDS_HOOK() once at file scope. When the environment variable
// BW_FUZZ_WRITE_SEEDS names a directory, the target writes its seeds there
// as seed-NN and exits instead of fuzzing (fuzz/run.sh seeds). The corpora
// in the tree are exactly those files, so they can be rebuilt after a format
// change instead of going stale.
//
// Thread-safety: libFuzzer runs one input at a time; nothing here is shared.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace bw::fuzz {

// Reads choices from the fuzz input. Past the end every read returns zero
// (or an empty string), so any input, however short, is a whole program of
// choices and the fuzzer's mutations stay meaningful.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : in_(reinterpret_cast<const char*>(data), size) {}
  explicit Input(std::string_view in) : in_(in) {}

  bool empty() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

  uint8_t Byte() {
    if (in_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  bool Bool() { return (Byte() & 1) != 0; }
  // A value in [0, n), n > 0; one byte when n <= 256, else eight.
  uint64_t Below(uint64_t n) {
    if (n <= 256) return Byte() % n;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v = (v << 8) | Byte();
    return v % n;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v = (v << 8) | Byte();
    return v;
  }
  // A length byte (at most `max`), then that many bytes (fewer at the end).
  std::string_view Bytes(size_t max = 255) {
    const size_t n = std::min<size_t>(Byte(), max);
    return Take(n);
  }
  std::string_view Take(size_t n) {
    n = std::min(n, in_.size());
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  std::string_view Rest() { return Take(in_.size()); }

 private:
  std::string_view in_;
};

// Writes `seeds` as BW_FUZZ_WRITE_SEEDS/seed-NN and exits, when that
// variable is set. Test tooling, so it writes with std::ofstream rather than
// through env::Disk.
inline void MaybeWriteSeeds(const std::vector<std::string>& seeds) {
  const char* dir = std::getenv("BW_FUZZ_WRITE_SEEDS");
  if (dir == nullptr || *dir == '\0') return;
  for (size_t i = 0; i < seeds.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/seed-%02zu", i);
    std::ofstream out(std::string(dir) + name, std::ios::binary | std::ios::trunc);
    out.write(seeds[i].data(), static_cast<std::streamsize>(seeds[i].size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s%s\n", dir, name);
      std::exit(1);
    }
  }
  std::fprintf(stderr, "wrote %zu seeds to %s\n", seeds.size(), dir);
  std::exit(0);
}

}  // namespace bw::fuzz

// Defines libFuzzer's initialization hook to honour BW_FUZZ_WRITE_SEEDS with
// the target's Seeds().
#define BW_FUZZ_SEEDS_HOOK()                                             \
  extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) { \
    ::bw::fuzz::MaybeWriteSeeds(Seeds());                                \
    return 0;                                                            \
  }
