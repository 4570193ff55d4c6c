#include "storage/snapshot_manifest.h"

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "raft/codec.h"
#include "storage/rocks_state.h"

namespace bw::storage {

namespace {

// Smallest encoding of one file entry in the metadata: name (1+1), size (1), crc (4).
constexpr size_t kMinFileEntryBytes = 7;

// absl::string_view is not std::string_view in this Abseil build: StrCat
// needs std::string (or char*) pieces.
std::string S(std::string_view s) {
  return std::string(s);
}

std::string Hex32(uint32_t v) {
  return absl::StrFormat("0x%08x", v);
}

// A name a checkpoint could hold: one plain path component.
bool PlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos &&
         name != kSnapshotMetaFile;
}

}  // namespace

std::string EncodeSnapshotManifest(const SnapshotManifest& m) {
  std::string out;
  core::ByteWriter w(&out);
  w.Fixed32(kSnapshotManifestMagic);
  w.U8(kSnapshotManifestVersion);
  w.Bytes(raft::EncodeSnapshotMeta(m.meta));
  w.Varint(m.files.size());
  for (const SnapshotFile& f : m.files) {
    w.Bytes(f.name);
    w.Varint(f.sum.size);
    w.Fixed32(f.sum.crc);
  }
  w.Fixed32(core::Crc32c(out));
  return out;
}

// `path` names the metadata file in error messages. The metadata may come
// from another node, so every count is checked against the bytes left.
absl::StatusOr<SnapshotManifest> DecodeSnapshotManifest(std::string_view data,
                                                        const std::string& path) {
  if (data.size() < 9) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", data.size(), " bytes, too short for snapshot metadata"));
  }
  core::ByteReader head(data);
  uint32_t magic = head.Fixed32();
  if (magic != kSnapshotManifestMagic) {
    return absl::DataLossError(absl::StrCat(path, ": bad magic ", Hex32(magic), " (expected ",
                                            Hex32(kSnapshotManifestMagic), ", \"BWRS\")"));
  }
  std::string_view body = data.substr(0, data.size() - 4);
  core::ByteReader tail(data.substr(data.size() - 4));
  uint32_t stored = tail.Fixed32();
  uint32_t computed = core::Crc32c(body);
  if (stored != computed) {
    return absl::DataLossError(absl::StrCat(path, ": checksum mismatch (stored ", Hex32(stored),
                                            ", computed ", Hex32(computed), ")"));
  }
  core::ByteReader r(body.substr(4));
  uint8_t version = r.U8();
  if (version != kSnapshotManifestVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": snapshot format version ",
                                                      int{version}, "; this binary reads version ",
                                                      int{kSnapshotManifestVersion}));
  }
  std::string_view meta_bytes = r.Bytes();
  uint64_t count = r.Varint();
  if (!r.ok() || count > r.remaining() / kMinFileEntryBytes) {
    return absl::DataLossError(absl::StrCat(path, ": truncated header or impossible file count"));
  }
  SnapshotManifest m;
  std::set<std::string, std::less<>> seen;
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view name = r.Bytes();
    uint64_t size = r.Varint();
    uint32_t crc = r.Fixed32();
    if (!r.ok()) return absl::DataLossError(absl::StrCat(path, ": truncated in file entry ", i));
    if (!PlainFileName(name) || !seen.insert(S(name)).second) {
      return absl::DataLossError(absl::StrCat(path, ": bad or repeated file name \"",
                                              absl::CEscape(S(name)), "\" in entry ", i));
    }
    m.files.push_back(SnapshotFile{S(name), FileSum{size, crc}});
  }
  if (!r.done()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", r.remaining(), " unexpected bytes after the file list"));
  }
  absl::StatusOr<raft::SnapshotMeta> meta = raft::DecodeSnapshotMeta(meta_bytes);
  if (!meta.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": ", meta.status().message()));
  }
  m.meta = *std::move(meta);
  return m;
}

}  // namespace bw::storage
