// libFuzzer target: the metadata file of a state-store snapshot
// (storage/snapshot_manifest.h), which a member reads from a snapshot a peer
// sent it.
//
// Asserted: whatever decodes names only plain, distinct file names (never
// the metadata file itself) and re-encodes to bytes that decode to an equal
// manifest; a rejection is DATA_LOSS or, for another format version,
// FAILED_PRECONDITION. The checksum guards the whole file, so the fuzzer is
// given a second chance at the body: the input is also decoded with its
// last four bytes replaced by the right CRC-32C.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/assert.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "fuzz/fuzz_util.h"
#include "storage/rocks_engine.h"
#include "storage/snapshot_manifest.h"

namespace {

using bw::storage::DecodeSnapshotManifest;
using bw::storage::EncodeSnapshotManifest;
using bw::storage::SnapshotManifest;

void Check(std::string_view bytes) {
  absl::StatusOr<SnapshotManifest> m = DecodeSnapshotManifest(bytes, "fuzz");
  if (!m.ok()) {
    BW_ASSERT_MSG(absl::IsDataLoss(m.status()) || absl::IsFailedPrecondition(m.status()),
                  m.status().ToString());
    return;
  }
  for (size_t i = 0; i < m->files.size(); ++i) {
    const std::string& name = m->files[i].name;
    BW_ASSERT(!name.empty() && name != "." && name != "..");
    BW_ASSERT(name.find('/') == std::string::npos && name.find('\0') == std::string::npos);
    BW_ASSERT(name != bw::storage::kSnapshotMetaFile);
    for (size_t j = 0; j < i; ++j)
      BW_ASSERT(m->files[j].name != name);
  }
  absl::StatusOr<SnapshotManifest> again =
      DecodeSnapshotManifest(EncodeSnapshotManifest(*m), "again");
  BW_ASSERT_MSG(again.ok(), again.status().ToString());
  BW_ASSERT(*again == *m);
}

std::vector<std::string> Seeds() {
  SnapshotManifest m;
  m.meta.index = bw::LogIndex(42);
  m.meta.term = bw::Term(3);
  m.meta.conf.voters = {bw::NodeId(1), bw::NodeId(2), bw::NodeId(3)};
  m.files.push_back({"000012.sst", {4096, 0x1234}});
  m.files.push_back({"MANIFEST-000005", {312, 0xabcdef01}});
  m.files.push_back({"CURRENT", {16, 7}});
  SnapshotManifest empty;
  empty.meta.index = bw::LogIndex(1);
  empty.meta.term = bw::Term(1);
  return {EncodeSnapshotManifest(m), EncodeSnapshotManifest(empty)};
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Check(in);
  if (in.size() >= 4) {
    std::string fixed(in.substr(0, in.size() - 4));
    bw::core::ByteWriter(&fixed).Fixed32(bw::core::Crc32c(fixed));
    Check(fixed);
  }
  return 0;
}
