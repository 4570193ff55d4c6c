#include "storage/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "raft/codec.h"

namespace bw::storage {

namespace {

uint32_t RecordCrc(uint8_t type, std::string_view payload) {
  char t = static_cast<char>(type);
  return core::Crc32c(payload, core::Crc32c(std::string_view(&t, 1)));
}

// Parses "wal-<16 hex>.seg"; false for any other name.
bool ParseSegmentName(const std::string& name, uint64_t* seq) {
  if (name.size() != 4 + 16 + 4 || name.compare(0, 4, "wal-") != 0 ||
      name.compare(20, 4, ".seg") != 0) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 4; i < 20; ++i) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *seq = v;
  return true;
}

// What a segment's first entry follows (the header's last byte; segments
// written before it existed have none, and are read as kFollowsUnknown).
enum SegmentFollows : uint8_t {
  kFollowsUnknown = 0,
  // Started by rotation: prev_index is the last index of the segment before.
  kFollowsLastSegment = 1,
  // Started by Rebase: prev_index is a snapshot's index, which may be below
  // what the segment before holds (the log was cut back there).
  kFollowsSnapshot = 2,
};

struct SegmentHeader {
  uint32_t magic = 0;
  uint32_t version = 0;
  uint64_t cluster_id = 0;
  uint64_t node_id = 0;
  uint64_t seq = 0;
  uint64_t prev_index = 0;
  uint8_t follows = kFollowsUnknown;
  // kFollowsLastSegment: the term of entry prev_index (0: not known).
  uint64_t prev_term = 0;
};

std::string EncodeHeader(const SegmentHeader& h) {
  std::string out;
  core::ByteWriter w(&out);
  w.Fixed32(h.magic);
  w.Fixed32(h.version);
  w.Varint(h.cluster_id);
  w.Varint(h.node_id);
  w.Varint(h.seq);
  w.Varint(h.prev_index);
  // Readers from before these fields ignore bytes after prev_index.
  w.U8(h.follows);
  w.Varint(h.prev_term);
  return out;
}

// One record read from a buffer, or why there is none.
struct Record {
  uint8_t type = 0;
  std::string_view payload;
  size_t size = 0;     // header + payload
  std::string bad;     // non-empty: the record at this offset is not whole
  std::string detail;  // what was expected and what was found
  bool torn = false;   // and it can only be a torn write
};

Record ReadRecord(std::string_view data, size_t off) {
  Record rec;
  std::string_view rest = data.substr(off);
  uint32_t len = 0;
  if (rest.size() < kWalRecordHeaderBytes) {
    rec.bad = "short record header";
  } else {
    core::ByteReader r(rest);
    len = r.Fixed32();
    uint32_t len_crc = r.Fixed32();
    uint32_t crc = r.Fixed32();
    rec.type = r.U8();
    const uint32_t want_len_crc = core::Crc32c(rest.substr(0, 4));
    if (want_len_crc != len_crc) {
      rec.bad = "damaged record header";
      rec.detail = absl::StrFormat(" (length %d with checksum %08x; the length's checksum is %08x)",
                                   len, len_crc, want_len_crc);
    } else if (len > rest.size() - kWalRecordHeaderBytes) {
      rec.bad = "record runs past the end of the file";
      rec.detail = absl::StrFormat(" (%d bytes of payload expected, %d there)", len,
                                   rest.size() - kWalRecordHeaderBytes);
    } else {
      rec.payload = rest.substr(kWalRecordHeaderBytes, len);
      rec.size = kWalRecordHeaderBytes + len;
      const uint32_t want = RecordCrc(rec.type, rec.payload);
      if (want != crc) {
        rec.bad = "checksum mismatch";
        rec.detail = absl::StrFormat(" (stored %08x, computed %08x over type %d and %d bytes)", crc,
                                     want, rec.type, len);
      }
    }
  }
  if (!rec.bad.empty()) {
    // A torn write is the last thing in the file: the file ends inside the
    // record, or everything from it on is zeros (a tail the file system
    // zero-filled). A whole record whose checksum fails is damage, even at
    // the very end: a crash cuts a write short, it does not change bytes that
    // reached the file, and treating it as torn would drop a synced record.
    bool ends_inside =
        rec.bad == "short record header" || rec.bad == "record runs past the end of the file";
    bool zeros = rest.find_first_not_of('\0') == std::string_view::npos;
    rec.torn = ends_inside || zeros;
  }
  return rec;
}

// Writes the header of the record whose payload follows it at `start`.
void FillRecordHeader(std::string* buf, size_t start, uint8_t type) {
  std::string_view payload = std::string_view(*buf).substr(start + kWalRecordHeaderBytes);
  std::string header;
  core::ByteWriter w(&header);
  w.Fixed32(static_cast<uint32_t>(payload.size()));
  w.Fixed32(core::Crc32c(std::string_view(header).substr(0, 4)));
  w.Fixed32(RecordCrc(type, payload));
  w.U8(type);
  buf->replace(start, kWalRecordHeaderBytes, header);
}

}  // namespace

void AppendWalRecord(std::string* out, uint8_t type, std::string_view payload) {
  core::ByteWriter w(out);
  size_t len_at = out->size();
  w.Fixed32(static_cast<uint32_t>(payload.size()));
  w.Fixed32(core::Crc32c(std::string_view(*out).substr(len_at, 4)));
  w.Fixed32(RecordCrc(type, payload));
  w.U8(type);
  out->append(payload);
}

absl::Status WalOptions::Validate() const {
  if (node_id == kNoNode && check_identity) {
    return absl::InvalidArgumentError("wal: node id must be non-zero");
  }
  if (segment_bytes < 4096) {
    return absl::InvalidArgumentError("wal: segment size must be at least 4096 bytes");
  }
#ifndef BW_PLANTED_BUGS
  if (planted_skip_checksums || planted_lying_sync) {
    return absl::InvalidArgumentError("wal: planted bugs are not compiled in this build");
  }
#endif
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(env::Disk& disk, std::string dir,
                                               const WalOptions& options, LogIndex after,
                                               bool repair) {
  BW_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Wal> wal(new Wal(disk, std::move(dir), options));
  BW_RETURN_IF_ERROR(wal->Recover(after, repair));
  return wal;
}

Wal::~Wal() {
  // A clean close writes what the planted lie held back; only a crash loses it.
  (void)PlantedFlush();
}

absl::Status Wal::PlantedFlush() {
  if (planted_pending_.empty() || !file_ || !failed_.ok()) return absl::OkStatus();
  std::string pending = std::move(planted_pending_);
  planted_pending_.clear();
  BW_RETURN_IF_ERROR(Fail(file_->Append(pending)));
  return Fail(file_->Sync());
}

WalRecovered Wal::TakeRecovered() {
  WalRecovered out = std::move(recovered_);
  recovered_ = WalRecovered{};
  return out;
}

std::string Wal::SegmentPath(uint64_t seq) const {
  return absl::StrFormat("%s/wal-%016x.seg", dir_, seq);
}

uint64_t Wal::bytes() const {
  uint64_t n = 0;
  for (const WalSegmentInfo& s : segments_)
    n += s.bytes;
  return n;
}

absl::Status Wal::Recover(LogIndex after, bool repair) {
  last_index_ = after;
  // locs_ runs parallel to recovered_.entries (both start after `after`).
  locs_from_ = after;
  if (repair && options_.writable) {
    BW_RETURN_IF_ERROR(disk_.CreateDir(dir_));
  } else if (!disk_.Exists(dir_)) {
    return absl::OkStatus();
  }
  BW_ASSIGN_OR_RETURN(std::vector<std::string> names, disk_.List(dir_));
  std::vector<uint64_t> seqs;
  for (const std::string& name : names) {
    uint64_t seq = 0;
    if (ParseSegmentName(name, &seq)) {
      seqs.push_back(seq);
    } else if (repair && options_.writable && name.size() > 8 &&
               name.compare(name.size() - 8, 8, ".seg.tmp") == 0) {
      // A rebased segment whose atomic write a crash cut short: never in use.
      BW_RETURN_IF_ERROR(disk_.Remove(dir_ + "/" + name));
    }
  }
  std::sort(seqs.begin(), seqs.end());
  // Segments left empty at the end (a crash right after one was created)
  // hold nothing; the one before them is the last that can be torn.
  while (!seqs.empty()) {
    BW_ASSIGN_OR_RETURN(uint64_t size, disk_.FileSize(SegmentPath(seqs.back())));
    if (size > 0) break;
    if (repair) BW_RETURN_IF_ERROR(disk_.Remove(SegmentPath(seqs.back())));
    seqs.pop_back();
  }
  for (size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] != seqs[i - 1] + 1) {
      return absl::DataLossError(absl::StrCat(
          SegmentPath(seqs[i - 1] + 1), ": missing (segments ", seqs[i - 1], " and ", seqs[i],
          " are present, nothing between); refusing to start: rebuild this member from its peers"));
    }
  }
  for (uint64_t seq : seqs) {
    WalSegmentInfo info;
    info.path = SegmentPath(seq);
    info.seq = seq;
    segments_.push_back(info);
  }
  recovered_.fresh = segments_.empty() && names.empty();
  for (size_t i = 0; i < segments_.size(); ++i) {
    BW_RETURN_IF_ERROR(RecoverSegment(i, i + 1 == segments_.size(), after, repair));
  }
  // A torn segment header (or a crash right after the file was created)
  // leaves a last segment with nothing in it: it is removed, or a later torn
  // write in the segment before it would look like damage in the middle.
  if (!segments_.empty() && segments_.back().records == 0) {
    if (repair && disk_.Exists(segments_.back().path)) {
      BW_RETURN_IF_ERROR(disk_.Remove(segments_.back().path));
    }
    segments_.pop_back();
  }
  // Hard states are written after the entries they cover, so even a torn
  // tail cannot leave the commit index past the log.
  LogIndex last = std::max(after, last_index_);
  if (recovered_.hard_state.commit > last) {
    return absl::DataLossError(absl::StrCat(segments_.empty() ? dir_ : segments_.back().path,
                                            ": commit index ", recovered_.hard_state.commit.value(),
                                            " is past the last entry ", last.value(),
                                            " (a segment at the end is missing or was cut short)"));
  }
  if (recovered_.hard_state.commit < after) recovered_.hard_state.commit = after;
  hard_state_ = recovered_.hard_state;
  last_index_ = last;
  const std::vector<raft::Entry>& entries = recovered_.entries;
  last_term_ = !entries.empty() && entries.back().index == last ? entries.back().term : Term(0);
  recovered_.segments = segments_;
  if (!repair || !options_.writable) return absl::OkStatus();
  if (segments_.empty()) return StartSegment(seqs.empty() ? 1 : seqs.back(), last_index_);
  BW_ASSIGN_OR_RETURN(file_, disk_.OpenAppend(segments_.back().path));
  if (segments_.back().records < 2) {
    // The hard-state record after the header was torn off: put it back, so
    // the segment holds the vote once the ones before it are released.
    std::string buf;
    AppendWalRecord(&buf, kWalHardState, raft::EncodeHardState(hard_state_));
    BW_RETURN_IF_ERROR(Write(buf));
    ++segments_.back().records;
  }
  // Without room to reserve the node still starts: appends then meet the
  // full disk one by one, and each is refused whole.
  if (options_.preallocate) {
    absl::Status room = file_->Preallocate(options_.segment_bytes);
    if (!room.ok() && !absl::IsResourceExhausted(room)) return room;
  }
  return absl::OkStatus();
}

absl::Status Wal::RecoverSegment(size_t i, bool last, LogIndex after, bool repair) {
  WalSegmentInfo& seg = segments_[i];
  BW_ASSIGN_OR_RETURN(std::string data, disk_.ReadFile(seg.path));
  std::vector<raft::Entry>& entries = recovered_.entries;
  auto corrupt = [&](size_t off, const std::string& what, const std::string& detail = "") {
    return absl::DataLossError(absl::StrCat(
        seg.path, ": ", what, " at offset ", off, " of ", data.size(), " bytes", detail,
        "; refusing to start: rebuild this member from its peers (bulwark check-data shows the "
        "damage)"));
  };
  size_t off = 0;
  while (off < data.size()) {
    Record rec = ReadRecord(data, off);
#ifdef BW_PLANTED_BUGS
    if (options_.planted_skip_checksums && rec.bad == "checksum mismatch") rec.bad.clear();
#endif
    if (!rec.bad.empty()) {
      if (!last || !rec.torn) return corrupt(off, rec.bad, rec.detail);
      // A torn write at the tail: nothing from `off` on was acknowledged.
      recovered_.torn_tail = absl::StrCat(seg.path, ": cut ", data.size() - off,
                                          " bytes at offset ", off, " (", rec.bad, ")");
      if (repair) {
        if (off == 0) {
          BW_RETURN_IF_ERROR(disk_.Remove(seg.path));
        } else {
          BW_RETURN_IF_ERROR(disk_.Truncate(seg.path, off));
        }
      }
      break;
    }
    if (seg.records == 0) {
      // The segment header.
      if (rec.type != kWalSegmentHeader) return corrupt(off, "first record is not a header");
      core::ByteReader r(rec.payload);
      SegmentHeader h;
      h.magic = r.Fixed32();
      h.version = r.Fixed32();
      h.cluster_id = r.Varint();
      h.node_id = r.Varint();
      h.seq = r.Varint();
      h.prev_index = r.Varint();
      if (!r.done()) h.follows = r.U8();
      if (!r.done()) h.prev_term = r.Varint();
      if (!r.ok() || h.magic != kWalMagic) {
        return corrupt(off, absl::StrFormat("bad magic 0x%08x (expected 0x%08x, \"BWWL\"): not a "
                                            "bulwark WAL segment",
                                            h.magic, kWalMagic));
      }
      if (h.version != kWalVersion) {
        return corrupt(
            off, absl::StrCat("format version ", h.version, ", this build reads ", kWalVersion));
      }
      seg.cluster_id = h.cluster_id;
      seg.node_id = NodeId(h.node_id);
      if (options_.check_identity &&
          (h.cluster_id != options_.cluster_id || h.node_id != options_.node_id.value())) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s: written by node %d of cluster %016x, but this is node %d of cluster %016x: "
            "wrong data directory",
            seg.path, h.node_id, h.cluster_id, options_.node_id.value(), options_.cluster_id));
      }
      if (h.seq != seg.seq) {
        return corrupt(off,
                       absl::StrCat("header says segment ", h.seq, ", the name says ", seg.seq));
      }
      LogIndex prev(h.prev_index);
      if (i == 0) {
        if (prev > after) {
          return corrupt(off, absl::StrCat("the log starts after entry ", h.prev_index,
                                           " but the snapshot covers only up to ", after.value(),
                                           ": earlier segments are missing"));
        }
      } else if ((prev > last_index_ && prev > after) ||
                 (h.follows == kFollowsLastSegment && prev != last_index_)) {
        // A rotated segment continues exactly where the one before ended,
        // which was synced whole before it began. Ending earlier means that
        // segment lost records; if the log had been overwritten there, what
        // it still holds would otherwise come back in place of the entries
        // that replaced it.
        return corrupt(off, absl::StrCat("segment follows entry ", h.prev_index,
                                         " but the one before ends at ", last_index_.value()));
      } else if (h.follows == kFollowsLastSegment && h.prev_term != 0 && prev > after &&
                 entries[prev - after - 1].term != Term(h.prev_term)) {
        // Ends at the right index, but not with the entry this segment
        // follows: the one before lost an overwrite of its last entries.
        return corrupt(off, absl::StrCat("segment follows entry ", h.prev_index, " of term ",
                                         h.prev_term, " but the one before holds it with term ",
                                         entries[prev - after - 1].term.value()));
      }
      seg.prev_index = prev;
      // Entries past `prev` that an earlier segment held were cut off the
      // log before this segment began (a snapshot rewrote the log here).
      last_index_ = prev;
      if (prev > after) {
        entries.resize(std::min<size_t>(entries.size(), prev - after));
      } else {
        entries.clear();
      }
      locs_.resize(entries.size());
    } else if (rec.type == kWalHardState) {
      BW_ASSIGN_OR_RETURN(recovered_.hard_state, raft::DecodeHardState(rec.payload));
    } else if (rec.type == kWalEntry) {
      std::string_view in = rec.payload;
      BW_ASSIGN_OR_RETURN(raft::Entry e, raft::DecodeEntry(&in));
      if (e.index > last_index_ + 1 && e.index > after + 1) {
        return corrupt(off, absl::StrCat("entry ", e.index.value(), " leaves a gap after ",
                                         last_index_.value()));
      }
      if (e.index > after) {
        size_t pos = e.index - (after + 1);
        entries.resize(std::min(pos, entries.size()));
        if (pos != entries.size()) {
          return corrupt(off, absl::StrCat("entry ", e.index.value(), " leaves a gap after ",
                                           (after + entries.size()).value()));
        }
        entries.push_back(std::move(e));
        last_index_ = entries.back().index;
        locs_.resize(pos);
        locs_.push_back(EntryLoc{seg.seq, off, rec.size});
      } else {
        // The log was cut back to at or below the snapshot: whatever came
        // after `after` so far is gone from it.
        entries.clear();
        locs_.clear();
        last_index_ = e.index;
      }
    } else {
      return corrupt(off, absl::StrCat("unknown record type ", rec.type));
    }
    ++seg.records;
    off += rec.size;
    seg.bytes = off;
  }
  if (seg.records == 0 && !last) return corrupt(0, "no segment header (the segment is empty)");
  seg.last_index = last_index_;
  return absl::OkStatus();
}

absl::Status Wal::Fail(absl::Status s) {
  if (!s.ok() && failed_.ok()) failed_ = s;
  return s;
}

absl::Status Wal::Write(std::string_view bytes) {
  if (!failed_.ok()) return failed_;
  absl::Status s = file_->Append(bytes);
  if (absl::IsResourceExhausted(s)) {
    // The device is full. Cut off whatever part of the write landed, so the
    // log ends on a whole record, and report it: the caller may try again
    // once space returns. If the cut fails, the log is in doubt: sticky.
    const WalSegmentInfo& cur = segments_.back();
    file_.reset();
    absl::Status cut = disk_.Truncate(cur.path, cur.bytes);
    if (cut.ok()) {
      absl::StatusOr<std::unique_ptr<env::AppendFile>> f = disk_.OpenAppend(cur.path);
      if (f.ok()) {
        file_ = std::move(*f);
        return s;
      }
      cut = f.status();
    }
    return Fail(absl::DataLossError(absl::StrCat(s.message(),
                                                 "; then could not cut the partial "
                                                 "write: ",
                                                 cut.message())));
  }
  BW_RETURN_IF_ERROR(Fail(s));
  segments_.back().bytes += bytes.size();
  return absl::OkStatus();
}

std::string Wal::SegmentStart(uint64_t seq, LogIndex prev_index, const raft::HardState& hs,
                              bool rebase) const {
  SegmentHeader h;
  h.follows = rebase ? kFollowsSnapshot : kFollowsLastSegment;
  h.prev_term = rebase ? 0 : last_term_.value();
  h.magic = kWalMagic;
  h.version = kWalVersion;
  h.cluster_id = options_.cluster_id;
  h.node_id = options_.node_id.value();
  h.seq = seq;
  h.prev_index = prev_index.value();
  std::string buf;
  AppendWalRecord(&buf, kWalSegmentHeader, EncodeHeader(h));
  AppendWalRecord(&buf, kWalHardState, raft::EncodeHardState(hs));
  return buf;
}

absl::Status Wal::CloseSegment() {
  if (!file_) return absl::OkStatus();
  BW_RETURN_IF_ERROR(PlantedFlush());
  // Only the last segment may ever hold an unsynced tail: this one is
  // synced before the next exists, so a crash in between leaves it whole.
  return Fail(file_->Sync());
}

absl::Status Wal::StartSegment(uint64_t seq, LogIndex prev_index) {
  if (!failed_.ok()) return failed_;
  BW_RETURN_IF_ERROR(CloseSegment());
  WalSegmentInfo info;
  info.path = SegmentPath(seq);
  info.seq = seq;
  info.cluster_id = options_.cluster_id;
  info.node_id = options_.node_id;
  info.prev_index = prev_index;
  info.last_index = prev_index;
  // Room for the whole segment first, then its header. A full device
  // refuses the rotation with nothing of the new segment left behind, and
  // the log goes on in the old one (synced above, still open).
  BW_ASSIGN_OR_RETURN(std::unique_ptr<env::AppendFile> next, disk_.OpenAppend(info.path));
  const std::string start = SegmentStart(seq, prev_index, hard_state_, /*rebase=*/false);
  absl::Status s =
      options_.preallocate ? next->Preallocate(options_.segment_bytes) : absl::OkStatus();
  if (s.ok()) s = next->Append(start);
  if (!s.ok()) {
    next.reset();
    absl::Status removed = disk_.Remove(info.path);
    if (absl::IsResourceExhausted(s) && removed.ok()) return s;
    return Fail(removed.ok() ? s : removed);
  }
  file_ = std::move(next);
  info.records = 2;
  info.bytes = start.size();
  segments_.push_back(info);
  last_index_ = prev_index;
  return absl::OkStatus();
}

absl::Status Wal::Append(const std::optional<raft::HardState>& hs,
                         const std::vector<raft::Entry>& entries) {
  if (!failed_.ok()) return failed_;
  if (!file_) return absl::FailedPreconditionError(absl::StrCat(dir_, ": opened for reading only"));
  if (entries.empty() && !hs) return absl::OkStatus();
  // One buffer, reused: a fresh multi-megabyte string per group costs page
  // faults and copies as it grows.
  std::string& buf = scratch_;
  buf.clear();
  std::vector<size_t>& starts = scratch_starts_;
  starts.clear();
  for (const raft::Entry& e : entries) {
    // Encoded in place: the header is filled in once the payload's size is
    // known (one copy of the data fewer than encoding it apart).
    size_t start = buf.size();
    starts.push_back(start);
    buf.append(kWalRecordHeaderBytes, '\0');
    raft::AppendEntry(&buf, e);
    FillRecordHeader(&buf, start, kWalEntry);
  }
  starts.push_back(buf.size());
  // The hard state goes after the entries, so a torn tail never leaves a
  // commit index pointing past the log.
  if (hs) AppendWalRecord(&buf, kWalHardState, raft::EncodeHardState(*hs));
  WalSegmentInfo& cur = segments_.back();
  if (cur.records > 2 && cur.bytes + buf.size() > options_.segment_bytes) {
    BW_RETURN_IF_ERROR(StartSegment(cur.seq + 1, last_index_));
  }
  const uint64_t base = segments_.back().bytes;
  if (options_.planted_lying_sync) {
    planted_pending_ += buf;
    segments_.back().bytes += buf.size();
  } else {
    BW_RETURN_IF_ERROR(Write(buf));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    NoteEntry(entries[i].index,
              EntryLoc{segments_.back().seq, base + starts[i], starts[i + 1] - starts[i]});
  }
  segments_.back().records += entries.size() + (hs ? 1 : 0);
  if (!entries.empty()) {
    last_index_ = entries.back().index;
    last_term_ = entries.back().term;
  }
  if (hs) hard_state_ = *hs;
  segments_.back().last_index = last_index_;
  return absl::OkStatus();
}

absl::Status Wal::Sync() {
  if (!failed_.ok()) return failed_;
  if (!file_) return absl::FailedPreconditionError(absl::StrCat(dir_, ": opened for reading only"));
  if (options_.planted_lying_sync) return absl::OkStatus();
  return Fail(file_->Sync());
}

void Wal::SyncAsync(env::Env& env, std::function<void(absl::Status)> done) {
  absl::Status refused = failed_;
  if (refused.ok() && !file_) {
    refused = absl::FailedPreconditionError(absl::StrCat(dir_, ": opened for reading only"));
  }
  if (!refused.ok() || options_.planted_lying_sync) {
    env.Offload([refused] { return refused; }, std::move(done));
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  env.Offload([file = file_] { return file->Sync(); },
              [this, alive, done = std::move(done)](absl::Status s) {
                if (alive.expired()) return;  // closed meanwhile: nobody waits
                done(Fail(s));
              });
}

absl::Status Wal::Rebase(LogIndex index, const raft::HardState& hs,
                         const std::vector<raft::Entry>& after) {
  if (!failed_.ok()) return failed_;
  if (!file_) return absl::FailedPreconditionError(absl::StrCat(dir_, ": opened for reading only"));
  BW_RETURN_IF_ERROR(CloseSegment());
  // The whole new segment is written atomically (temporary file, sync,
  // rename, directory sync): a crash leaves it complete or absent, never a
  // header that cuts the log back without the entries that follow it (the
  // previous segments still hold those). It opens with a hard state whose
  // commit index does not pass `index`; the full one follows the entries.
  WalSegmentInfo info;
  info.seq = segments_.back().seq + 1;
  info.path = SegmentPath(info.seq);
  info.cluster_id = options_.cluster_id;
  info.node_id = options_.node_id;
  info.prev_index = index;
  raft::HardState opening = hs;
  opening.commit = std::min(hs.commit, index);
  std::string buf = SegmentStart(info.seq, index, opening, /*rebase=*/true);
  info.records = 2;
  LogIndex last = index;
  Term last_term;  // of entry `last`; 0 (not known) while that is the snapshot's
  std::string payload;
  std::deque<EntryLoc> locs;
  for (const raft::Entry& e : after) {
    if (e.index <= index) continue;
    payload.clear();
    raft::AppendEntry(&payload, e);
    const size_t start = buf.size();
    AppendWalRecord(&buf, kWalEntry, payload);
    locs.push_back(EntryLoc{info.seq, start, buf.size() - start});
    last = e.index;
    last_term = e.term;
    ++info.records;
  }
  AppendWalRecord(&buf, kWalHardState, raft::EncodeHardState(hs));
  ++info.records;
  info.bytes = buf.size();
  info.last_index = last;
  absl::Status s = disk_.WriteFileAtomic(info.path, buf);
  if (absl::IsResourceExhausted(s)) return s;
  BW_RETURN_IF_ERROR(Fail(s));
  absl::StatusOr<std::unique_ptr<env::AppendFile>> next = disk_.OpenAppend(info.path);
  if (!next.ok()) return Fail(next.status());
  file_ = std::move(*next);
  if (options_.preallocate) {
    absl::Status room = file_->Preallocate(options_.segment_bytes);
    if (!room.ok() && !absl::IsResourceExhausted(room)) return Fail(room);
  }
  segments_.push_back(info);
  hard_state_ = hs;
  last_index_ = last;
  last_term_ = last_term;
  locs_ = std::move(locs);
  locs_from_ = index;
  return absl::OkStatus();
}

absl::StatusOr<size_t> Wal::Release(LogIndex index) {
  if (!failed_.ok()) return failed_;
  // Entries at or below `index` are no longer read back (the segments that
  // held some of them go).
  while (locs_from_ < index && !locs_.empty()) {
    locs_.pop_front();
    locs_from_ = locs_from_ + 1;
  }
  // The newest segment that starts at or below `index` begins where the log
  // was at most `index`: every live entry before it is covered by the
  // snapshot, and it holds the hard state. Everything before it can go.
  size_t keep_from = 0;
  for (size_t i = 1; i < segments_.size(); ++i) {
    if (segments_[i].prev_index <= index) keep_from = i;
  }
  if (keep_from == 0) return size_t{0};
  // The segment kept first must be durable (its header and hard state)
  // before the ones it replaces go.
  if (keep_from + 1 == segments_.size()) BW_RETURN_IF_ERROR(Fail(file_->Sync()));
  // Oldest first, so a crash part-way leaves the log a contiguous suffix.
  for (size_t i = 0; i < keep_from; ++i) {
    BW_RETURN_IF_ERROR(disk_.Remove(segments_[i].path));
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(keep_from));
  return keep_from;
}

void Wal::NoteEntry(LogIndex index, EntryLoc loc) {
  if (index <= locs_from_ || index > locs_from_ + locs_.size() + 1) {
    // Overwrites all this knew (or, never in practice, leaves a gap).
    locs_.clear();
    locs_from_ = index - 1;
  } else {
    locs_.resize(index - locs_from_ - 1);
  }
  locs_.push_back(loc);
}

absl::Status Wal::ReadEntries(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                              std::vector<raft::Entry>* out) const {
  const LogIndex last = locs_from_ + locs_.size();
  if (lo <= locs_from_ || hi > last || lo > hi) {
    return absl::OutOfRangeError(absl::StrCat(dir_, ": entries ", lo.value(), "..", hi.value(),
                                              " asked for; the log can read back ",
                                              locs_from_.value() + 1, "..", last.value()));
  }
  // Entries of one Ready lie together, but the hard state written after
  // them separates one Ready's entries from the next's: a read spans such
  // small gaps rather than stopping at each.
  constexpr uint64_t kMaxGapBytes = 4096;
  uint64_t bytes = 0;
  LogIndex i = lo;
  while (i <= hi) {
    // One read for a run of entries close together in one segment.
    const EntryLoc& first = locs_[i - locs_from_ - 1];
    if (bytes > 0 && bytes + first.size > max_bytes) break;
    uint64_t end = first.offset + first.size;
    uint64_t run = first.size;  // entry bytes, for the budget
    LogIndex j = i + 1;
    for (; j <= hi; j = j + 1) {
      const EntryLoc& next = locs_[j - locs_from_ - 1];
      if (next.seq != first.seq || next.offset < end || next.offset - end > kMaxGapBytes) break;
      if (bytes + run + next.size > max_bytes) break;
      run += next.size;
      end = next.offset + next.size;
    }
    const std::string path = SegmentPath(first.seq);
    BW_ASSIGN_OR_RETURN(std::string data, disk_.ReadAt(path, first.offset, end - first.offset));
    for (; i < j; i = i + 1) {
      const uint64_t at = locs_[i - locs_from_ - 1].offset;
      Record rec = ReadRecord(data, at - first.offset);
      auto bad = [&](const std::string& what) {
        return absl::DataLossError(
            absl::StrCat(path, ": entry ", i.value(), " at offset ", at, " reads back as ", what));
      };
      if (!rec.bad.empty()) return bad(rec.bad + rec.detail);
      if (rec.type != kWalEntry) return bad(absl::StrCat("a record of type ", rec.type));
      std::string_view in = rec.payload;
      absl::StatusOr<raft::Entry> e = raft::DecodeEntry(&in);
      if (!e.ok()) return bad(std::string(e.status().message()));
      if (e->index != i) return bad(absl::StrCat("entry ", e->index.value()));
      out->push_back(std::move(*e));
    }
    bytes += run;
  }
  return absl::OkStatus();
}

}  // namespace bw::storage
