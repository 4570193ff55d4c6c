// Small builders shared by the storage tests: entries, hard states, a
// readable form of a log, and bit flips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "raft/types.h"

namespace bw::storage {

// An entry whose data names it ("e<index>t<term>") unless given.
inline raft::Entry E(uint64_t index, uint64_t term, std::string data = "") {
  if (data.empty()) data = absl::StrCat("e", index, "t", term);
  return raft::Entry{Term(term), LogIndex(index), raft::EntryType::kNormal, std::move(data)};
}

// An entry with 100 bytes of data, so that ~35 fill a 4 KiB segment.
inline raft::Entry Big(uint64_t index, uint64_t term) {
  std::string data = absl::StrCat("e", index, "t", term);
  data.resize(100, '.');
  return E(index, term, std::move(data));
}

inline std::vector<raft::Entry> Bigs(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = first; i <= last; ++i)
    out.push_back(Big(i, term));
  return out;
}

inline raft::HardState HS(uint64_t term, uint64_t vote, uint64_t commit) {
  return raft::HardState{Term(term), NodeId(vote), LogIndex(commit)};
}

// "index@term:data" per entry, for readable comparisons.
inline std::vector<std::string> Show(const std::vector<raft::Entry>& entries) {
  std::vector<std::string> out;
  for (const raft::Entry& e : entries)
    out.push_back(absl::StrCat(e.index.value(), "@", e.term.value(), ":", e.data));
  return out;
}

inline std::string FlipBit(std::string s, size_t bit) {
  s[bit / 8] = static_cast<char>(static_cast<unsigned char>(s[bit / 8]) ^ (1u << (bit % 8)));
  return s;
}

}  // namespace bw::storage
