// SPDX-License-Identifier: Apache-2.0
// Punching dead records out of old segments (docs/spool-format.md §7, "Punching dead
// records"): the byte ranges of Message, JobTemplate and JobRecipients records whose mail is
// entirely final (those finals durable) are noted in a durable sidecar, then their whole
// blocks are deallocated (fallocate PUNCH_HOLE | KEEP_SIZE). Live records never move, so no
// Location held anywhere changes; recovery skips the noted ranges instead of taking the
// zeros for damage. Blocking file IO: run punch_segment on a thread of its own.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/spool/records.h>

namespace salvo::spool {

// [begin, end) in a segment's bytes.
struct ByteRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t size() const noexcept { return end - begin; }
  bool operator==(const ByteRange&) const = default;
};

// The durable note of what was punched in one segment (SPOOL/shard-N/seg-<hex>.spool.punched),
// bound to the segment by its sequence number and its header's creation time: a note left
// behind by a reclaimed segment can never apply to another. Ranges are sorted, disjoint,
// and each starts and ends on a record boundary.
struct PunchNote {
  SegmentSeq seq{};
  std::int64_t created_unix_ns = 0;
  std::vector<ByteRange> ranges;
};

// One record of a segment, or a range an earlier punch noted, in offset order.
struct PunchItem {
  ByteRange bytes;
  bool dead = false;
};

// The ranges of adjacent dead items (a live item or a gap between items ends a range),
// keeping only those that contain at least one whole block of `block` bytes: the rest
// would punch nothing. Never a byte of a live item.
std::vector<ByteRange> dead_ranges(std::span<const PunchItem> items, std::uint64_t block);
// The whole blocks inside r (empty when there is none): what may be deallocated without
// touching a byte outside r.
ByteRange punchable(ByteRange r, std::uint64_t block) noexcept;

struct PunchOutcome {
  bool punched = false;               // a note was written and ranges deallocated
  std::uint64_t freed_bytes = 0;      // allocated bytes before minus after (st_blocks)
  std::uint64_t live_bytes = 0;       // bytes of the records kept (all types, header included)
  std::uint64_t noted_bytes = 0;      // bytes of the dead ranges in the note now
  std::uint64_t allocated_bytes = 0;  // st_blocks * 512 after
};

// Punches segment seq of dir: every Message, JobTemplate and JobRecipients record whose
// offset is not in live_offsets (sorted) is dead. Does nothing (punched = false) when the
// segment is gone, its header does not verify, the scan finds damage, or the new dead
// blocks (with the never-written tail, if still allocated) come to less than
// min_new_bytes. Otherwise writes the note (the union with the old one; durable: temporary
// file, fsync, rename, directory fsync) and only then deallocates; and deallocates the
// whole blocks of the never-written tail (zeros either way: no note needed). Idempotent; a
// crash at any point leaves ranges that are noted and dead, punched or not, which recovery
// skips alike. The caller guarantees that seq is closed
// (never appended to again) and that the live set is a superset of what is live.
[[nodiscard]] Result<PunchOutcome> punch_segment(const std::string& dir, SegmentSeq seq,
                                                 std::span<const std::uint64_t> live_offsets,
                                                 std::uint64_t min_new_bytes);

// st_blocks * 512 and st_size summed over the segment files of dir (what they take on disk
// and what they would take without holes).
struct SpoolDiskUse {
  std::uint64_t allocated_bytes = 0;
  std::uint64_t file_bytes = 0;
};
SpoolDiskUse disk_use(const std::string& dir);

}  // namespace salvo::spool
