// SPDX-License-Identifier: Apache-2.0
// Recovery: the start-up scan of one shard's spool directory. Verifies every record, skips
// damage to the next record that verifies (counted, logged, and the segment quarantined),
// ends a segment at a torn tail, never crashes on corrupt input, and rebuilds the SpoolIndex
// plus what the services need (docs/spool-format.md §7).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/spool/punch.h>
#include <salvo/spool/records.h>
#include <salvo/spool/spool_index.h>

namespace salvo::spool {

struct PendingRecipient {
  MessageId message{};
  RecipientIndex recipient{};
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_unix_ns = 0;  // 0: due now
};

// What the scan of one segment could not read (all zero for a sound segment).
struct SegmentDamage {
  // Stretches that hold no record that verifies, with records that do after them: each
  // was skipped to the next record that verifies.
  std::uint64_t regions = 0;
  std::uint64_t skipped_bytes = 0;  // the bytes of those stretches
  std::uint64_t records_after = 0;  // records that verified after the first of them
  // Ends in bytes that are neither records nor the zero tail, with no record after them:
  // a write cut short by a crash (or damage to the last records: the two look the same).
  bool torn = false;
  std::uint64_t dropped_bytes = 0;  // from the torn record to the last non-zero byte
  // The resync budget ran out (only bytes built to look like frames cost that much): the
  // rest counts as one region, skipped unread.
  bool gave_up = false;
  // Not damage: bytes of dead records a punch noted (punch.h), stepped over unread.
  std::uint64_t punched_bytes = 0;

  // Damage found: the segment is kept, never deleted (docs/spool-format.md §7).
  bool quarantined() const noexcept { return regions != 0; }
};

// What a start did with the shard's checkpoint (checkpoint.h; the label of
// salvo_spool_checkpoint_loads_total).
enum class CheckpointUse : std::uint8_t {
  None,   // none there (a first start, a crash, or checkpoints off at the last stop)
  Used,   // the index came from it: no segment was read
  Stale,  // well formed, but the segment files or the id mark changed since: scanned
  Bad,    // unreadable, short, or a wrong magic, version, shard or CRC: scanned
};
std::string_view to_string(CheckpointUse u) noexcept;

struct RecoveryReport {
  std::uint64_t segments = 0;
  std::uint64_t bad_segments = 0;   // header missing or inconsistent: left on disk, unused
  std::uint64_t torn_segments = 0;  // ended in a torn tail (SegmentDamage::torn)
  std::uint64_t dropped_bytes = 0;  // their dropped bytes (upper bound)
  // Damage skipped by resynchronising (SegmentDamage), summed over segments.
  std::uint64_t damaged_regions = 0;
  std::uint64_t skipped_bytes = 0;
  std::uint64_t records_after_damage = 0;
  std::uint64_t quarantined_segments = 0;  // segments with a damaged region
  std::uint64_t records = 0;
  std::uint64_t undecodable = 0;  // checksum ok but payload malformed: skipped
  std::uint64_t messages = 0;     // committed messages and jobs found
  std::uint64_t uncommitted_jobs = 0;
  std::uint64_t orphan_states = 0;  // states for messages no longer in the spool
  std::uint64_t duplicate_pickups = 0;  // a pickup claim committed again: the older dropped
  std::uint64_t punched_bytes = 0;  // dead bytes noted by punches, stepped over (not damage)
  std::uint64_t bad_punch_notes = 0;  // notes unreadable or not matching their segment
  bool bad_id_mark = false;  // next-id unreadable: ids continue above those found only
  CheckpointUse checkpoint = CheckpointUse::None;
};

struct RecoveryResult {
  SpoolIndex index;
  // Recipients whose last state is Deferred (attempts and next time); every other
  // non-final recipient of index is pending with 0 attempts. See for_each_pending().
  std::vector<PendingRecipient> deferred;  // sorted by (message, recipient)
  // The claims of the pickup files this shard queued (sorted, unique): a claimed file
  // still in pickup/.work/shard-N/ under one of these names was queued before a crash and
  // is removed, not queued again (docs/spool-format.md §8).
  std::vector<std::string> pickup_claims;
  SegmentSeq next_segment{1};
  MessageId next_id{};
  RecoveryReport report;
};

// Scans dir (created if missing). Diagnostics: only directory-level errors (ENOENT of the
// parent, EACCES ...) fail; bad data is reported in RecoveryReport, never an error. Ids
// for the shard start above (shard << 48) so they are unique across shards.
// Equivalent to list_spool() followed by recover_segments().
[[nodiscard]] Result<RecoveryResult> recover(const std::string& dir, std::uint32_t shard);

// Start-up in two steps (docs/spool-format.md §7, "Background recovery"). The first step
// gives what a writer needs to begin at once: the next segment number (from the directory
// listing) and the next id (the durable id mark, which is above every id the spool holds).
struct SpoolListing {
  std::string dir;
  std::uint32_t shard = 0;
  std::vector<SegmentSeq> segments;  // the segment files, ascending
  std::uint64_t bytes = 0;           // their sizes, summed
  SegmentSeq next_segment{1};
  MessageId next_id{};  // the id mark (or the shard's first id for an empty spool)
  // True when next_id is known to be above every id in `segments`: the mark is present
  // and readable, or there are no segments. Only then may new mail be written before the
  // segments are scanned; otherwise recover_segments() must run first.
  bool ids_known = false;
  bool bad_id_mark = false;
  std::uint64_t id_mark = 0;  // the mark as read (0: none or unreadable)
};
// Creates dir if missing and lists it; reads no segment. Errors as recover().
[[nodiscard]] Result<SpoolListing> list_spool(const std::string& dir, std::uint32_t shard);
// The daemon's start, before list_spool: removes segments whose creation a crash cut short
// (seg-*.spool.new: a segment is linked into place only once its header is durable, so
// these hold no mail). Never while a writer runs on dir (spool-dump does not call it).
[[nodiscard]] Status remove_unfinished_segments(const std::string& dir);

// Progress of recover_segments(), shared between the thread that scans and any reader.
struct ScanProgress {
  std::atomic<std::uint64_t> segments_done{0};
  std::atomic<std::uint64_t> bytes_done{0};
  std::atomic<std::uint64_t> messages{0};  // messages and jobs found so far
  // Set by any thread: the scan stops before its next segment with
  // std::errc::operation_canceled.
  std::atomic<bool> cancel{false};
  // Tests only (salvod reads SALVO_TEST_RECOVERY_DELAY_MS): each segment waits this long
  // before it is scanned (in short steps, so cancel still stops it promptly).
  Duration test_delay_per_segment{0};
};

// The second step: scans the listed segments in sequence order (the same scan as
// recover(); it uses no shard state, so it may run on any thread). progress may be null.
// next_segment and next_id are computed from the listing as recover() does.
[[nodiscard]] Result<RecoveryResult> recover_segments(const SpoolListing& listing,
                                                      ScanProgress* progress);

// Every non-final recipient, with its attempts when deferred.
void for_each_pending(const RecoveryResult& r,
                      const std::function<void(const PendingRecipient&)>& fn);

// The scan of one segment's bytes into an index (used by recover() and the fuzz target).
struct ScanState {
  SpoolIndex* index = nullptr;
  RecoveryReport* report = nullptr;
  std::vector<PendingRecipient>* deferred = nullptr;                 // may be null
  std::vector<std::pair<std::string, MessageId>>* claims = nullptr;  // may be null
  std::uint64_t max_id = 0;
};
// Adds the segment's damage to the report and quarantines it in the index when damaged.
// nullopt when the segment header is bad (nothing else was read). punched: the segment's
// punch note, if it has one; used only when it names this segment (sequence and creation
// time) and its ranges fit, else the punched ranges read as damage (nothing is lost).
std::optional<SegmentDamage> scan_segment(std::string_view bytes, SegmentSeq seq, ScanState& state,
                                          const PunchNote* punched = nullptr);

// Adds the counts of `more` (another scan of the same shard) to `into`.
void add(RecoveryReport& into, const RecoveryReport& more);
// The warnings salvod logs about a shard's recovery (damage, torn or bad segments, an
// unreadable id mark); nothing when the spool was sound.
void log_report(const std::string& dir, const RecoveryReport& report);

// The report's damage counters as gauges (salvo_spool_recovery_*, salvo_spool_quarantined_
// segments): what the start-up recovery found.
void add_metrics(const RecoveryReport& report, metrics::Snapshot& s);

}  // namespace salvo::spool
