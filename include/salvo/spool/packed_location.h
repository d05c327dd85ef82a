// SPDX-License-Identifier: Apache-2.0
// PackedLocation: a Location in 16 bytes instead of 24, for the per-message tables that
// hold millions of them (SpoolIndex, the destinations' backlogs). The segment number and
// the offset get 48 bits each, the length its 32. Both bounds hold by construction: a
// record's offset is below its segment's size, which is at most the larger of
// spool_segment_size (<= 4 GB) and the record itself (<= max_message_size, 4 GB, plus its
// framing), far below 2^48; segment numbers grow by one per segment created, and 2^48 of
// them at a thousand a second last nine thousand years. pack() still checks both.
#pragma once

#include <cstdint>

#include <salvo/base/assert.h>
#include <salvo/spool/records.h>

namespace salvo::spool {

class PackedLocation {
 public:
  static constexpr std::uint64_t kMaxSegment = (std::uint64_t{1} << 48) - 1;
  static constexpr std::uint64_t kMaxOffset = (std::uint64_t{1} << 48) - 1;

  PackedLocation() = default;
  explicit PackedLocation(const Location& l) noexcept
      : length_(l.length),
        segment_lo_(static_cast<std::uint32_t>(l.segment.value())),
        offset_lo_(static_cast<std::uint32_t>(l.offset)),
        segment_hi_(static_cast<std::uint16_t>(l.segment.value() >> 32)),
        offset_hi_(static_cast<std::uint16_t>(l.offset >> 32)) {
    SALVO_CHECK(l.segment.value() <= kMaxSegment && l.offset <= kMaxOffset);
  }

  Location unpack() const noexcept {
    return Location{SegmentSeq(std::uint64_t{segment_hi_} << 32 | segment_lo_),
                    std::uint64_t{offset_hi_} << 32 | offset_lo_, length_};
  }
  SegmentSeq segment() const noexcept {
    return SegmentSeq(std::uint64_t{segment_hi_} << 32 | segment_lo_);
  }
  bool operator==(const PackedLocation&) const = default;

 private:
  std::uint32_t length_ = 0;
  std::uint32_t segment_lo_ = 0;
  std::uint32_t offset_lo_ = 0;
  std::uint16_t segment_hi_ = 0;
  std::uint16_t offset_hi_ = 0;
};
static_assert(sizeof(PackedLocation) == 16 && alignof(PackedLocation) == 4);

}  // namespace salvo::spool
