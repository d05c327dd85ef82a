// SPDX-License-Identifier: Apache-2.0
// Hostile or damaged disks (docs/reliability.md E11): arbitrary bytes as the records of a spool
// segment, behind a valid segment header (version 2 and version 1), through the recovery
// scan and its resync. Never a crash, and every record that verifies re-encodes to the same
// payload (the codec is canonical).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <salvo/spool/records.h>
#include <salvo/spool/recovery.h>

#include "spool/segment_file.h"

namespace {

using namespace salvo::spool;

template <class Rec>
void check_canonical(const salvo::Result<Rec>& r, std::string_view payload) {
  if (!r) return;
  if constexpr (requires { r->pickup; }) {
    // A pickup identity written before claims (kind 1) is read but never written again:
    // it decodes without a claim and re-encodes as a claim. Not canonical by design.
    if (r->pickup && r->pickup->claim.empty()) return;
  }
  std::string again;
  encode(*r, again);
  if (again != payload) std::abort();
}

void check_record(const RawRecord& rec) {
  std::string_view p = rec.payload;
  switch (rec.type) {
    case RecordType::SegmentHeader:
      check_canonical(decode_segment_header(p), p);
      break;
    case RecordType::Message:
      check_canonical(decode_message(p), p);
      break;
    case RecordType::JobTemplate:
      check_canonical(decode_job_template(p), p);
      break;
    case RecordType::JobRecipients:
      check_canonical(decode_job_recipients(p), p);
      break;
    case RecordType::JobCommit:
      check_canonical(decode_job_commit(p), p);
      break;
    case RecordType::RecipientState:
      check_canonical(decode_recipient_state(p), p);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The raw bytes as a whole segment (almost always rejected at the header).
  {
    SpoolIndex index;
    RecoveryReport report;
    ScanState st{&index, &report, nullptr, nullptr, 0};
    scan_segment(input, SegmentSeq(1), st);
  }
  // Behind a valid header, so the fuzzer reaches the record decoders and the resync: a
  // version-2 header (records must be bound to their place) and a version-1 one (unbound
  // records, as spools written before binding hold).
  for (std::uint16_t version : {kSegmentVersion, std::uint16_t{1}}) {
    std::string seg, payload;
    encode(SegmentHeaderRecord{.version = version, .seq = SegmentSeq(1), .capacity = 1 << 20},
           payload);
    frame(RecordType::SegmentHeader, payload, SegmentSeq(1), 0, seg);
    if (version == 1) {  // the old framing: no flags, the CRC over the frame alone
      seg[5] = 0;
      const std::size_t covered = seg.size() - 4;
      const std::uint32_t crc = crc32c(std::string_view(seg).substr(0, covered));
      for (int i = 0; i < 4; ++i) seg[covered + i] = static_cast<char>(crc >> (8 * i));
    }
    seg.append(input);
    SpoolIndex index;
    RecoveryReport report;
    std::vector<PendingRecipient> deferred;
    std::vector<std::pair<std::string, MessageId>> claims;
    ScanState st{&index, &report, &deferred, &claims, 0};
    if (!scan_segment(seg, SegmentSeq(1), st)) std::abort();
    salvo::spool::detail::SegmentScanner scan(seg, SegmentSeq(1));
    while (auto rec = scan.next()) check_record(*rec);
    std::uint64_t live = 0;
    index.for_each([&](MessageId, const SpoolIndex::Entry& e) {
      if (e.state.size() > (1u << 30)) std::abort();
      live += e.live;
    });
    if (live != index.live_recipients()) std::abort();
  }
  return 0;
}
