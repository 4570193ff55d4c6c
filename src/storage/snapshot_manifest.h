// The metadata file of a state-store snapshot directory (BULWARK-SNAPSHOT,
// written by RocksState::CreateSnapshot, read by VerifySnapshot and
// InstallSnapshot): the Raft snapshot meta and the list of the directory's
// files with their sizes and checksums.
//
//   magic:u32 ("BWRS") version:u8(=1) meta:bytes (raft::EncodeSnapshotMeta)
//   count:varint (name:bytes size:varint crc:u32)...  crc:u32
//
// Little-endian fixed ints, varints and length-prefixed bytes as in
// core/bytes.h. Each file's crc is CRC-32C over its name then its contents;
// the last crc covers every byte before it. The decoder is defensive (a
// snapshot may come from another node): damage is DATA_LOSS naming `path`
// and what is wrong, an unknown version FAILED_PRECONDITION; it allocates
// only in proportion to its input.
//
// Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "raft/types.h"

namespace bw::storage {

inline constexpr uint32_t kSnapshotManifestMagic = 0x53525742;  // "BWRS" little-endian
inline constexpr uint8_t kSnapshotManifestVersion = 1;

struct FileSum {
  uint64_t size = 0;
  uint32_t crc = 0;  // CRC-32C of the file's name, then its contents
  bool operator==(const FileSum&) const = default;
};

struct SnapshotFile {
  std::string name;
  FileSum sum;
  bool operator==(const SnapshotFile&) const = default;
};

struct SnapshotManifest {
  raft::SnapshotMeta meta;
  // Invariant (of every decoded manifest): names are plain, distinct path
  // components, none of them the metadata file's own name.
  std::vector<SnapshotFile> files;
  bool operator==(const SnapshotManifest&) const = default;
};

std::string EncodeSnapshotManifest(const SnapshotManifest& m);
// `path` names the metadata file in error messages.
[[nodiscard]] absl::StatusOr<SnapshotManifest> DecodeSnapshotManifest(std::string_view data,
                                                                      const std::string& path);

}  // namespace bw::storage
