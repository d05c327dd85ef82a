// SPDX-License-Identifier: Apache-2.0
// Punching dead records out of closed segments (see punch.h, docs/spool-format.md §7).
#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <salvo/spool/punch.h>

#include "spool/segment_file.h"

namespace salvo::spool {

ByteRange punchable(ByteRange r, std::uint64_t block) noexcept {
  const std::uint64_t begin = (r.begin + block - 1) / block * block;
  const std::uint64_t end = r.end / block * block;
  return begin < end ? ByteRange{begin, end} : ByteRange{begin, begin};
}

std::vector<ByteRange> dead_ranges(std::span<const PunchItem> items, std::uint64_t block) {
  std::vector<ByteRange> out;
  std::optional<ByteRange> run;
  auto close = [&] {
    if (run && punchable(*run, block).size() != 0) out.push_back(*run);
    run.reset();
  };
  for (const PunchItem& it : items) {
    if (!it.dead) {
      close();
      continue;
    }
    if (run && run->end == it.bytes.begin) {
      run->end = it.bytes.end;
      continue;
    }
    close();
    run = it.bytes;
  }
  close();
  return out;
}

namespace {

// How many times a punch looks again for state records its last stage made dead: a state
// record's bytes may join a range that then reaches another message's header. It ends when
// a stage adds none (7-13 stages in bench/load/punch.sh's segments).
constexpr int kStateStages = 64;

bool punchable_type(RecordType t) {
  return t == RecordType::Message || t == RecordType::JobTemplate || t == RecordType::JobRecipients;
}

std::uint64_t whole_blocks(std::span<const ByteRange> ranges, std::uint64_t block) {
  std::uint64_t n = 0;
  for (const ByteRange& r : ranges) n += punchable(r, block).size();
  return n;
}

struct Mapped {
  int fd = -1;
  void* p = MAP_FAILED;
  std::size_t size = 0;
  ~Mapped() {
    if (p != MAP_FAILED) ::munmap(p, size);
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<PunchOutcome> punch_segment(const std::string& dir, SegmentSeq seq,
                                   std::span<const std::uint64_t> live_offsets,
                                   std::uint64_t min_new_bytes) {
  PunchOutcome out;
  Mapped m;
  m.fd = ::open(detail::segment_path(dir, seq).c_str(), O_RDWR | O_CLOEXEC);
  if (m.fd < 0) {
    if (errno == ENOENT) return out;  // reclaimed meanwhile
    return fail_errno(errno);
  }
  struct stat sb {};
  if (::fstat(m.fd, &sb) != 0) return fail_errno(errno);
  if (sb.st_size <= 0) return out;
  m.size = static_cast<std::size_t>(sb.st_size);
  m.p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, m.fd, 0);
  if (m.p == MAP_FAILED) return fail_errno(errno);
  const std::uint64_t block = sb.st_blksize > 0 ? static_cast<std::uint64_t>(sb.st_blksize) : 4096;
  const std::uint64_t allocated_before = static_cast<std::uint64_t>(sb.st_blocks) * 512;
  out.allocated_bytes = allocated_before;

  auto old = detail::read_punch_note(dir, seq);
  if (!old) return out;  // recovery will read those ranges as damage; do not add to it
  detail::SegmentScanner scan(std::string_view(static_cast<const char*>(m.p), m.size), seq);
  auto first = scan.next();
  if (!first || first->type != RecordType::SegmentHeader) return out;
  auto hdr = decode_segment_header(first->payload);
  if (!hdr || hdr->seq != seq) return out;
  scan.stop_at(hdr->capacity);
  PunchNote note{seq, hdr->created_unix_ns, {}};
  if (*old) {
    if ((*old)->created_unix_ns != hdr->created_unix_ns ||
        !detail::punch_note_fits(**old, first->offset + first->length, hdr->capacity)) {
      return out;
    }
    note.ranges = (*old)->ranges;
    scan.skip(note.ranges);
  }
  // Every record and every range noted before, in offset order. For the state records:
  // the messages they name, and the dead messages of this segment by id.
  std::vector<PunchItem> items;
  std::vector<std::vector<std::uint64_t>> names;  // per item: a state record's messages
  std::map<std::uint64_t, ByteRange> dead_messages;  // id -> its record
  items.push_back({{first->offset, first->offset + first->length}, false});
  names.emplace_back();
  std::size_t next_old = 0;
  auto take_old_before = [&](std::uint64_t offset) {
    while (next_old < note.ranges.size() && note.ranges[next_old].begin < offset) {
      items.push_back({note.ranges[next_old++], true});
      names.emplace_back();
    }
  };
  while (auto rec = scan.next()) {
    take_old_before(rec->offset);
    const bool dead = punchable_type(rec->type) &&
                      !std::binary_search(live_offsets.begin(), live_offsets.end(), rec->offset);
    items.push_back({{rec->offset, rec->offset + rec->length}, dead});
    names.emplace_back();
    if (dead && rec->type == RecordType::Message) {
      if (auto msg = decode_message(rec->payload)) {
        dead_messages[msg->id.value()] = {rec->offset, rec->offset + rec->length};
      }
    } else if (rec->type == RecordType::RecipientState) {
      if (auto st = decode_recipient_state(rec->payload)) {
        for (const StateUpdate& u : st->updates) names.back().push_back(u.message.value());
      }
      if (names.back().empty()) names.back().push_back(0);  // unreadable: never dead
    }
  }
  take_old_before(UINT64_MAX);
  const SegmentDamage& d = scan.damage();
  if (d.quarantined() || d.torn) return out;  // recovery's business: leave it as it is
  // In stages. First the dead records but state records. A message one of whose blocks a
  // stage deallocates can never be read again once that stage is durable, noted or not:
  // its magic is gone (the header's block), or its CRC no longer matches (a block of it
  // that held a byte other than zero; by chance one time in 2^32). A state record that
  // names only such messages is dead from the next stage on. Its bytes join the ranges
  // around it, so the next stage may reach more messages (docs/spool-format.md §7, "State
  // records").
  const char* const bytes = static_cast<const char*>(m.p);
  std::vector<std::vector<ByteRange>> stages{dead_ranges(items, block)};
  for (int k = 0; k < kStateStages; ++k) {
    const std::vector<ByteRange>& punched = stages.back();
    auto block_punched = [&](std::uint64_t b) {
      auto r = std::upper_bound(punched.begin(), punched.end(), b * block,
                                [](std::uint64_t o, const ByteRange& x) { return o < x.begin; });
      if (r == punched.begin()) return false;
      const ByteRange p = punchable(*std::prev(r), block);
      return b * block >= p.begin && (b + 1) * block <= p.end;
    };
    auto unreadable = [&](ByteRange rec) {
      for (std::uint64_t b = rec.begin / block; b * block < rec.end; ++b) {
        if (!block_punched(b)) continue;
        if (b == rec.begin / block) return true;  // the magic
        const std::uint64_t from = b * block, to = std::min(rec.end, (b + 1) * block);
        if (std::any_of(bytes + from, bytes + to, [](char c) { return c != 0; })) return true;
      }
      return false;
    };
    bool more = false;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (names[i].empty() || items[i].dead) continue;
      // Only a block an earlier stage deallocates will do: that message is then inside a
      // noted range too, so recovery with the note skips it as it skips the state record.
      items[i].dead = std::all_of(names[i].begin(), names[i].end(), [&](std::uint64_t id) {
        auto at = dead_messages.find(id);
        return at != dead_messages.end() && unreadable(at->second);
      });
      more |= items[i].dead;
    }
    if (!more) break;
    stages.push_back(dead_ranges(items, block));
  }
  for (const PunchItem& it : items) out.live_bytes += it.dead ? 0 : it.bytes.size();
  std::vector<ByteRange> ranges = stages.back();
  for (const ByteRange& r : ranges) out.noted_bytes += r.size();
  const std::uint64_t before = whole_blocks(note.ranges, block);
  const std::uint64_t after = whole_blocks(ranges, block);
  // The never-written tail (preallocated zeros; a segment closed by a restart or an IO
  // error keeps most of its capacity there) reads as zeros punched or not: the clean end
  // recovery expects. It needs no note.
  const ByteRange tail =
      punchable({items.back().bytes.end, std::min<std::uint64_t>(hdr->capacity, m.size)}, block);
  const off_t data =
      tail.size() == 0 ? -1 : ::lseek(m.fd, static_cast<off_t>(tail.begin), SEEK_DATA);
  const bool tail_allocated = data >= 0 && static_cast<std::uint64_t>(data) < tail.end;
  const std::uint64_t gain = after - std::min(after, before) + (tail_allocated ? tail.size() : 0);
  if (gain < std::max<std::uint64_t>(min_new_bytes, 1)) return out;
  auto punch = [&](ByteRange p) {
    return ::fallocate(m.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       static_cast<off_t>(p.begin), static_cast<off_t>(p.size())) == 0;
  };
  if (after > before) {
    note.ranges = std::move(ranges);
    // The note first: a range may be deallocated only once recovery is sure to skip it.
    if (auto st = detail::write_punch_note(dir, note); !st) return std::unexpected(st.error());
    // Noted, so recovery skips them punched or not. Without the note (lost to damage) it
    // reads what is left: each stage is durable before the next, so a state record is
    // never gone while a message it finalises can still be read.
    for (std::size_t k = 0; k < stages.size(); ++k) {
      if (k > 0 && ::fsync(m.fd) != 0) return fail_errno(errno);
      for (const ByteRange& r : stages[k]) {
        // A range the stage before punched as it is has nothing new.
        if (k > 0 && std::binary_search(stages[k - 1].begin(), stages[k - 1].end(), r,
                                        [](const ByteRange& a, const ByteRange& b) {
                                          return a.begin < b.begin ||
                                                 (a.begin == b.begin && a.end < b.end);
                                        })) {
          continue;
        }
        if (!punch(punchable(r, block))) return fail_errno(errno);
      }
    }
  }
  if (tail_allocated && !punch(tail)) return fail_errno(errno);
  out.punched = true;
  if (::fstat(m.fd, &sb) == 0) {
    out.allocated_bytes = static_cast<std::uint64_t>(sb.st_blocks) * 512;
    out.freed_bytes = allocated_before - std::min(allocated_before, out.allocated_bytes);
  }
  return out;
}

SpoolDiskUse disk_use(const std::string& dir) {
  SpoolDiskUse u;
  auto segs = detail::list_segments(dir);
  if (!segs) return u;
  for (SegmentSeq seq : *segs) {
    struct stat sb {};
    if (::stat(detail::segment_path(dir, seq).c_str(), &sb) != 0) continue;
    u.allocated_bytes += static_cast<std::uint64_t>(sb.st_blocks) * 512;
    u.file_bytes += static_cast<std::uint64_t>(sb.st_size);
  }
  return u;
}

}  // namespace salvo::spool
