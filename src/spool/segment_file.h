// SPDX-License-Identifier: Apache-2.0
// Segment files: naming, creation (fallocate + header + fsync file and directory, once),
// listing, and the record scanner that recovery and the fuzz target share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/spool/punch.h>
#include <salvo/spool/records.h>
#include <salvo/spool/recovery.h>

namespace salvo::spool::detail {

// DIR/seg-<16 hex digits>.spool
std::string segment_path(const std::string& dir, SegmentSeq seq);
// Where create_segment makes a segment before linking it into place: segment_path + ".new".
inline constexpr std::string_view kUnfinishedSuffix = ".new";
std::string unfinished_path(const std::string& dir, SegmentSeq seq);
// Removes the seg-*.spool.new files a crash left half-made (never read: they hold no mail)
// and fsyncs the directory if it removed any. Only while no writer runs on dir.
[[nodiscard]] Status remove_unfinished_segments(const std::string& dir);
std::optional<SegmentSeq> parse_segment_name(std::string_view name);
// Segment files in dir, ascending. Other files are ignored.
[[nodiscard]] Result<std::vector<SegmentSeq>> list_segments(const std::string& dir);
[[nodiscard]] Status fsync_dir(const std::string& dir);

// Replaces path (in dir) with bytes, atomically and durably: path.tmp written and fsynced,
// renamed over path, then the directory fsynced.
[[nodiscard]] Status replace_file(const std::string& dir, const std::string& path,
                                  std::string_view bytes);

// DIR/next-id: the id high-water mark. Every id a writer hands out is below the mark it
// made durable first, so ids stay unique for the life of the spool even after every
// segment that held the highest id was reclaimed.
// 0 when the file is absent; errc::bad_id_mark when it is unreadable or malformed.
[[nodiscard]] Result<std::uint64_t> read_id_mark(const std::string& dir);
// Atomic and durable: a temporary file, fsync, rename over, fsync of the directory.
[[nodiscard]] Status write_id_mark(const std::string& dir, std::uint64_t mark);
// Removes the mark (absent already is fine) and fsyncs the directory: after a failed
// write_id_mark the old mark is below ids in use and must not be trusted.
[[nodiscard]] Status remove_id_mark(const std::string& dir);

// DIR/seg-<16 hex digits>.spool.punched: the punch note of a segment (punch.h). Removed
// with its segment; one whose segment is gone is removed at start.
inline constexpr std::string_view kPunchNoteSuffix = ".punched";
std::string punch_note_path(const std::string& dir, SegmentSeq seq);
// nullopt when there is none; errc::bad_punch_note when it is malformed or fails its CRC.
[[nodiscard]] Result<std::optional<PunchNote>> read_punch_note(const std::string& dir,
                                                               SegmentSeq seq);
// Atomic and durable, as write_id_mark.
[[nodiscard]] Status write_punch_note(const std::string& dir, const PunchNote& note);
// Best effort (a stray note is harmless: it names its segment's creation time).
void remove_punch_note(const std::string& dir, SegmentSeq seq) noexcept;
// The note's ranges are sorted, disjoint, after the header and within the capacity.
bool punch_note_fits(const PunchNote& note, std::uint64_t header_end,
                     std::uint64_t capacity) noexcept;

struct CreatedSegment {
  int fd = -1;
  std::uint64_t header_length = 0;  // the first append offset
};
// Creates and preallocates a segment of `capacity` bytes with its header record, durable
// (file and directory fsync'ed) before it returns. Blocking syscalls: called rarely.
[[nodiscard]] Result<CreatedSegment> create_segment(const std::string& dir, SegmentSeq seq,
                                                    std::uint32_t shard, std::uint64_t capacity,
                                                    std::int64_t now_unix_ns);
// create_segment in three steps, for a caller that runs the two fsyncs itself (through the
// engine, off its loop): begin_segment makes unfinished_path(dir, seq), preallocated, with
// the header written (not yet durable); once the caller has fsync'ed that fd,
// finish_segment links it into place (and removes the unfinished name and an old punch
// note of the number); the caller then fsyncs the directory. On failure each step removes
// what it made (the fd stays the caller's to close).
[[nodiscard]] Result<CreatedSegment> begin_segment(const std::string& dir, SegmentSeq seq,
                                                   std::uint32_t shard, std::uint64_t capacity,
                                                   std::int64_t now_unix_ns);
[[nodiscard]] Status finish_segment(const std::string& dir, SegmentSeq seq);

// Walks the framed records of a segment's bytes in offset order. Where a record does not
// verify, everything from there to the end may be zero: the preallocated, never-written tail,
// a clean end. Otherwise the scanner resynchronises: it looks for the next offset where a
// whole record verifies (magic, sane header, CRC over the whole frame, and the segment's
// framing: every record of a version-2 segment is bound to its place), goes on from there
// and counts the stretch it skipped. Bad bytes with no record after them are a torn tail.
// The first record is taken only at offset 0 (the segment header: no resync before it).
// Work is bounded: the CRC bytes spent on candidates that fail are capped at
// kResyncBudgetFactor times the segment size; past that the rest counts as skipped.
class SegmentScanner {
 public:
  static constexpr std::uint64_t kResyncBudgetFactor = 4;

  SegmentScanner(std::string_view bytes, SegmentSeq seq) : bytes_(bytes), seq_(seq) {}
  // The next record that verifies; nullopt at the end.
  std::optional<RawRecord> next();
  // Ignores the bytes from `end` on: past the segment's capacity nothing was ever written.
  void stop_at(std::uint64_t end) noexcept;
  // Ranges a punch noted (sorted, disjoint, on record boundaries): the walk steps over
  // them unread, and resync never takes a candidate inside one.
  void skip(std::vector<ByteRange> ranges) noexcept { skips_ = std::move(ranges); }
  const SegmentDamage& damage() const noexcept { return damage_; }

 private:
  std::optional<RawRecord> verify(std::uint64_t pos);
  std::optional<RawRecord> resync(std::uint64_t from);
  RawRecord take(const RawRecord& rec) noexcept;
  // The noted range holding pos, or null.
  const ByteRange* skip_at(std::uint64_t pos) const noexcept;

  std::string_view bytes_;
  SegmentSeq seq_;
  std::uint64_t pos_ = 0;
  std::uint64_t spent_ = 0;    // CRC bytes of candidates that failed
  std::optional<bool> bound_;  // the header's framing, which every record must share
  SegmentDamage damage_;
  std::vector<ByteRange> skips_;
  bool done_ = false;
};

}  // namespace salvo::spool::detail
