// SPDX-License-Identifier: Apache-2.0
// Checkpoint file (docs/spool-format.md §10): a 32-byte header (magic, version, shard, body
// length, body CRC32C, header CRC32C), then the body: the identity of the files it
// describes, the index's segments and entries, the deferred recipients.
#include <salvo/spool/checkpoint.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include <salvo/base/log.h>

#include "spool/segment_file.h"
#include "spool/wire.h"

namespace salvo::spool {
namespace {

constexpr std::string_view kMagic = "SALVOCKP";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + 8 + 4 + 4;
constexpr std::uint8_t kEntryJob = 1;

// What tells one file from another of the same name: a copy, a rewrite or a touch changes
// at least one of these (ctime cannot be set from user space).
struct FileId {
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileId&) const = default;
};

std::optional<FileId> file_id(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) return std::nullopt;
  return FileId{static_cast<std::uint64_t>(sb.st_ino), static_cast<std::uint64_t>(sb.st_size),
                sb.st_mtim.tv_sec * 1'000'000'000LL + sb.st_mtim.tv_nsec,
                sb.st_ctim.tv_sec * 1'000'000'000LL + sb.st_ctim.tv_nsec};
}

void put_file_id(std::string& out, const FileId& f) {
  wire::put_u64(out, f.ino);
  wire::put_u64(out, f.size);
  wire::put_i64(out, f.mtime_ns);
  wire::put_i64(out, f.ctime_ns);
}

FileId read_file_id(wire::Reader& r) {
  FileId f;
  f.ino = r.u64();
  f.size = r.u64();
  f.mtime_ns = r.i64();
  f.ctime_ns = r.i64();
  return f;
}

void put_location(std::string& out, const Location& l) {
  wire::put_u64(out, l.segment.value());
  wire::put_u64(out, l.offset);
  wire::put_u32(out, l.length);
}

Location read_location(wire::Reader& r) {
  Location l;
  l.segment = SegmentSeq(r.u64());
  l.offset = r.u64();
  l.length = r.u32();
  return l;
}

// One segment file as the checkpoint saw it, with its punch note if it had one.
struct SavedFile {
  SegmentSeq seq;
  FileId segment;
  std::optional<FileId> note;
};

Result<std::vector<SavedFile>> current_files(const std::string& dir,
                                             const std::vector<SegmentSeq>& segments) {
  std::vector<SavedFile> out;
  out.reserve(segments.size());
  for (SegmentSeq seq : segments) {
    auto seg = file_id(detail::segment_path(dir, seq));
    if (!seg) return fail_errno(errno);
    out.push_back({seq, *seg, file_id(detail::punch_note_path(dir, seq))});
  }
  return out;
}

// File times come from the kernel's coarse clock: a write within the same tick as the last
// one before the stop would leave mtime and ctime as they were. Waits (a few ms at most)
// until that clock has passed every time the checkpoint records, so that any later change
// to a file shows in its times.
void wait_past(const std::vector<SavedFile>& files) {
  std::int64_t latest = 0;
  for (const SavedFile& f : files) {
    latest = std::max({latest, f.segment.mtime_ns, f.segment.ctime_ns});
    if (f.note) latest = std::max({latest, f.note->mtime_ns, f.note->ctime_ns});
  }
  for (int i = 0; i < 1000; ++i) {  // bounded: 1 s
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec * 1'000'000'000LL + now.tv_nsec > latest) return;
    ::usleep(1000);
  }
}

}  // namespace

std::string checkpoint_path(const std::string& dir) { return dir + "/checkpoint"; }

Status remove_checkpoint(const std::string& dir) {
  if (::unlink(checkpoint_path(dir).c_str()) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno(errno);
  }
  return detail::fsync_dir(dir);
}

Status save_checkpoint(const std::string& dir, std::uint32_t shard, const SpoolIndex& index,
                       std::span<const PendingRecipient> deferred, MessageId next_id) {
  auto segments = detail::list_segments(dir);
  if (!segments) return std::unexpected(segments.error());
  auto files = current_files(dir, *segments);
  if (!files) return std::unexpected(files.error());
  auto mark = detail::read_id_mark(dir);
  if (!mark) return std::unexpected(mark.error());
  wait_past(*files);

  std::string body;
  wire::put_u64(body, *mark);
  wire::put_u64(body, next_id.value());
  wire::put_u32(body, static_cast<std::uint32_t>(files->size()));
  for (const SavedFile& f : *files) {
    wire::put_u64(body, f.seq.value());
    put_file_id(body, f.segment);
    wire::put_u8(body, f.note ? 1 : 0);
    if (f.note) put_file_id(body, *f.note);
  }
  std::uint32_t segment_count = 0;
  index.for_each_segment([&](const SpoolIndex::SegmentInfo&) { ++segment_count; });
  wire::put_u32(body, segment_count);
  index.for_each_segment([&](const SpoolIndex::SegmentInfo& s) {
    wire::put_u64(body, s.seq.value());
    wire::put_u8(body, s.quarantined ? 1 : 0);
    wire::put_u32(body, static_cast<std::uint32_t>(s.holds_finals_for.size()));
    for (std::uint64_t d : s.holds_finals_for) wire::put_u64(body, d);
  });
  // Jobs that never committed are not mail (a scan drops them): left out.
  std::uint32_t entries = 0;
  index.for_each([&](MessageId, const SpoolIndex::Entry& e) { entries += e.committed ? 1 : 0; });
  wire::put_u32(body, entries);
  index.for_each([&](MessageId id, const SpoolIndex::Entry& e) {
    if (!e.committed) return;
    wire::put_u64(body, id.value());
    wire::put_u8(body, e.is_job ? kEntryJob : 0);
    put_location(body, e.loc);
    wire::put_u32(body, static_cast<std::uint32_t>(e.state.size()));
    body.append(reinterpret_cast<const char*>(e.state.data()), e.state.size());
    if (!e.is_job) return;
    put_location(body, e.commit_loc);
    wire::put_u32(body, static_cast<std::uint32_t>(e.batches.size()));
    for (const SpoolIndex::JobBatch& b : e.batches) {
      wire::put_u32(body, b.first);
      wire::put_u32(body, b.count);
      put_location(body, b.loc);
    }
  });
  std::vector<const PendingRecipient*> kept;
  for (const PendingRecipient& p : deferred) {
    if (index.state(p.message, p.recipient) == RecipientState::Deferred) kept.push_back(&p);
  }
  wire::put_u32(body, static_cast<std::uint32_t>(kept.size()));
  for (const PendingRecipient* p : kept) {
    wire::put_u64(body, p->message.value());
    wire::put_u32(body, p->recipient.value());
    wire::put_u32(body, p->attempts);
    wire::put_i64(body, p->next_attempt_unix_ns);
  }

  std::string file(kMagic);
  wire::put_u32(file, kVersion);
  wire::put_u32(file, shard);
  wire::put_u64(file, body.size());
  wire::put_u32(file, crc32c(body));
  wire::put_u32(file, crc32c(file));
  file.append(body);
  body = {};
  return detail::replace_file(dir, checkpoint_path(dir), file);
}

namespace {

CheckpointLoad reject(CheckpointUse use, std::string why) {
  CheckpointLoad l;
  l.use = use;
  l.why = std::move(why);
  return l;
}

// The body, checked against the spool as it is now; Used with the result, or why not.
CheckpointLoad restore(std::string_view body, const SpoolListing& listing) {
  wire::Reader r(body);
  const std::uint64_t saved_mark = r.u64();
  const std::uint64_t saved_next_id = r.u64();
  const std::uint32_t file_count = r.count(8 + 32 + 1);
  std::vector<SavedFile> saved;
  saved.reserve(file_count);
  for (std::uint32_t i = 0; i < file_count && r.ok(); ++i) {
    SavedFile f;
    f.seq = SegmentSeq(r.u64());
    f.segment = read_file_id(r);
    if (r.u8() != 0) f.note = read_file_id(r);
    saved.push_back(f);
  }
  if (!r.ok()) return reject(CheckpointUse::Bad, "malformed file list");

  // The same files, unchanged, and the same id mark: else the spool moved on (or was
  // touched) since the stop.
  if (saved.size() != listing.segments.size()) {
    return reject(CheckpointUse::Stale, fmt::format("it names {} segment(s), the spool has {}",
                                                    saved.size(), listing.segments.size()));
  }
  auto now = current_files(listing.dir, listing.segments);
  if (!now) return reject(CheckpointUse::Stale, "a segment is gone: " + now.error().message());
  std::map<std::uint64_t, std::uint64_t> sizes;
  for (std::size_t i = 0; i < saved.size(); ++i) {
    const SavedFile& a = saved[i];
    const SavedFile& b = (*now)[i];
    if (a.seq != b.seq || a.segment != b.segment || a.note != b.note) {
      return reject(CheckpointUse::Stale,
                    fmt::format("segment {} changed since the stop",
                                detail::segment_path(listing.dir, b.seq)));
    }
    sizes[a.seq.value()] = a.segment.size;
  }
  // The mark as the listing read it: a background recovery takes the checkpoint while the
  // shard's new mail already moves the mark on.
  if (listing.bad_id_mark || listing.id_mark != saved_mark) {
    return reject(CheckpointUse::Stale,
                  fmt::format("the next-id mark changed since the stop ({:x}, then {:x})",
                              saved_mark, listing.id_mark));
  }

  RecoveryResult out;
  SpoolIndex& index = out.index;
  const std::uint32_t segment_count = r.count(8 + 1 + 4);
  for (std::uint32_t i = 0; i < segment_count && r.ok(); ++i) {
    const SegmentSeq seq(r.u64());
    const bool quarantined = r.u8() != 0;
    const std::uint32_t holds_count = r.count(8);
    std::vector<std::uint64_t> holds;
    holds.reserve(holds_count);
    for (std::uint32_t k = 0; k < holds_count && r.ok(); ++k) holds.push_back(r.u64());
    if (!r.ok() || !sizes.contains(seq.value()) || index.has_segment(seq)) {
      return reject(CheckpointUse::Bad, "malformed segment list");
    }
    index.restore_segment(seq, quarantined, std::move(holds));
    if (quarantined) ++out.report.quarantined_segments;
  }
  // Every location lies inside its segment file.
  const auto fits = [&](const Location& l) {
    auto it = sizes.find(l.segment.value());
    return it != sizes.end() && l.offset <= it->second && l.length <= it->second - l.offset;
  };
  const std::uint32_t entry_count = r.count(8 + 1 + 20 + 4);
  index.reserve(entry_count);
  std::vector<std::uint8_t> states;
  std::vector<SpoolIndex::JobBatch> batches;
  for (std::uint32_t i = 0; i < entry_count && r.ok(); ++i) {
    const MessageId id(r.u64());
    SpoolIndex::Entry e;
    e.committed = true;
    e.is_job = (r.u8() & kEntryJob) != 0;
    e.loc = read_location(r);
    const std::uint32_t n = r.count(1);
    states.resize(n);
    for (std::uint32_t k = 0; k < n && r.ok(); ++k) states[k] = r.u8();
    batches.clear();
    if (e.is_job) {
      e.commit_loc = read_location(r);
      const std::uint32_t nb = r.count(4 + 4 + 20);
      for (std::uint32_t k = 0; k < nb && r.ok(); ++k) {
        SpoolIndex::JobBatch b;
        b.first = r.u32();
        b.count = r.u32();
        b.loc = read_location(r);
        if (!fits(b.loc)) r.invalidate();
        batches.push_back(b);
      }
      if (!fits(e.commit_loc)) r.invalidate();
    }
    e.state = states;
    e.batches = batches;
    if (!r.ok() || !fits(e.loc) || !index.restore(id, e)) {
      return reject(CheckpointUse::Bad, fmt::format("malformed entry {}", i));
    }
  }
  const std::uint32_t deferred_count = r.count(8 + 4 + 4 + 8);
  out.deferred.reserve(deferred_count);
  for (std::uint32_t i = 0; i < deferred_count && r.ok(); ++i) {
    PendingRecipient p;
    p.message = MessageId(r.u64());
    p.recipient = RecipientIndex(r.u32());
    p.attempts = r.u32();
    p.next_attempt_unix_ns = r.i64();
    const bool ordered = out.deferred.empty() ||
                         std::pair(out.deferred.back().message, out.deferred.back().recipient) <
                             std::pair(p.message, p.recipient);
    if (!ordered || index.state(p.message, p.recipient) != RecipientState::Deferred) {
      r.invalidate();
    }
    out.deferred.push_back(p);
  }
  if (!r.ok() || !r.at_end()) return reject(CheckpointUse::Bad, "malformed index");

  out.report.segments = saved.size();
  out.report.bad_segments = saved.size() - index.segment_count();
  out.report.messages = index.message_count();
  out.report.checkpoint = CheckpointUse::Used;
  out.next_segment = listing.next_segment;
  out.next_id = MessageId(std::max(saved_next_id, listing.next_id.value()));
  CheckpointLoad l;
  l.use = CheckpointUse::Used;
  l.result = std::move(out);
  return l;
}

}  // namespace

namespace {

CheckpointLoad read_and_remove(const SpoolListing& listing, bool use) {
  const std::string path = checkpoint_path(listing.dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    return reject(CheckpointUse::Bad, fmt::format("cannot open {}: {}", path,
                                                  std::error_code(errno, std::generic_category())
                                                      .message()));
  }
  struct stat sb {};
  const bool sized = ::fstat(fd, &sb) == 0;
  const auto size = sized ? static_cast<std::size_t>(sb.st_size) : 0;
  void* p = size >= kHeaderSize ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0)
                                : MAP_FAILED;
  ::close(fd);
  // Used at most once: gone before anything new is written, whatever it held.
  if (auto st = remove_checkpoint(listing.dir); !st) {
    if (p != MAP_FAILED) ::munmap(p, size);
    return reject(CheckpointUse::Bad, "cannot remove it: " + st.error().message());
  }
  if (!use) {
    if (p != MAP_FAILED) ::munmap(p, size);
    return {};
  }
  if (p == MAP_FAILED) return reject(CheckpointUse::Bad, "shorter than its header");
  const std::string_view in(static_cast<const char*>(p), size);
  CheckpointLoad l;
  wire::Reader h(in.substr(kMagic.size(), kHeaderSize - kMagic.size()));
  const std::uint32_t version = h.u32();
  const std::uint32_t shard = h.u32();
  const std::uint64_t body_size = h.u64();
  const std::uint32_t body_crc = h.u32();
  const std::uint32_t header_crc = h.u32();
  if (!in.starts_with(kMagic) || crc32c(in.substr(0, kHeaderSize - 4)) != header_crc) {
    l = reject(CheckpointUse::Bad, "not a checkpoint (magic or header CRC)");
  } else if (version != kVersion) {
    l = reject(CheckpointUse::Bad, fmt::format("unknown format version {}", version));
  } else if (shard != listing.shard) {
    l = reject(CheckpointUse::Bad, fmt::format("written by shard {}", shard));
  } else if (body_size != size - kHeaderSize) {
    l = reject(CheckpointUse::Bad, fmt::format("{} bytes long, its header says {}", size,
                                               body_size + kHeaderSize));
  } else if (crc32c(in.substr(kHeaderSize)) != body_crc) {
    l = reject(CheckpointUse::Bad, "CRC mismatch");
  } else {
    l = restore(in.substr(kHeaderSize), listing);
  }
  ::munmap(p, size);
  return l;
}

}  // namespace

CheckpointLoad take_checkpoint(const SpoolListing& listing, bool use) {
  const auto t0 = std::chrono::steady_clock::now();
  CheckpointLoad l = read_and_remove(listing, use);
  if (l.use == CheckpointUse::Used) {
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
    log::info("spool {}: recovered {} messages from checkpoint in {:.0f} ms", listing.dir,
              l.result->index.message_count(), took.count());
  } else if (l.use != CheckpointUse::None) {
    log::warn("spool {}: checkpoint not used ({}: {}); scanning the segments", listing.dir,
              to_string(l.use), l.why);
  }
  return l;
}

}  // namespace salvo::spool
