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
#include <salvo/spool/records.h>

namespace salvo::spool::detail {

// DIR/seg-<16 hex digits>.spool
std::string segment_path(const std::string& dir, SegmentSeq seq);
std::optional<SegmentSeq> parse_segment_name(std::string_view name);
// Segment files in dir, ascending. Other files are ignored.
[[nodiscard]] Result<std::vector<SegmentSeq>> list_segments(const std::string& dir);
[[nodiscard]] Status fsync_dir(const std::string& dir);

// DIR/next-id: the id high-water mark. Every id a writer hands out is below the mark it
// made durable first, so ids stay unique for the life of the spool even after every
// segment that held the highest id was reclaimed.
// 0 when the file is absent; errc::bad_id_mark when it is unreadable or malformed.
[[nodiscard]] Result<std::uint64_t> read_id_mark(const std::string& dir);
// Atomic and durable: a temporary file, fsync, rename over, fsync of the directory.
[[nodiscard]] Status write_id_mark(const std::string& dir, std::uint64_t mark);

struct CreatedSegment {
  int fd = -1;
  std::uint64_t header_length = 0;  // the first append offset
};
// Creates and preallocates a segment of `capacity` bytes with its header record, durable
// (file and directory fsync'ed) before it returns. Blocking syscalls: called rarely.
[[nodiscard]] Result<CreatedSegment> create_segment(const std::string& dir, SegmentSeq seq,
                                                    std::uint32_t shard, std::uint64_t capacity,
                                                    std::int64_t now_unix_ns);

// Walks framed records from the start of a segment's bytes. Stops at the first record that
// does not verify. A stop at zero bytes (the preallocated, never written tail) is a clean
// end; anything else is torn or corrupt, and the rest of the segment is not trusted.
class SegmentScanner {
 public:
  explicit SegmentScanner(std::string_view bytes) : bytes_(bytes) {}
  std::optional<RawRecord> next();
  bool torn() const noexcept { return torn_; }
  std::uint64_t offset() const noexcept { return pos_; }

 private:
  std::string_view bytes_;
  std::uint64_t pos_ = 0;
  bool torn_ = false;
  bool done_ = false;
};

}  // namespace salvo::spool::detail
