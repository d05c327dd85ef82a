// SPDX-License-Identifier: Apache-2.0
// SpoolIndex: the in-memory view of one shard's spool. Per message (or job) the location of
// its records and one state byte per recipient; per segment the count of live recipients,
// pins and ordering constraints that decide when the segment file may be deleted. Bodies
// stay on disk. Owner: the shard that owns the spool directory (not thread-safe).
//
// Memory: a message of up to kInlineRecipients recipients is one 32-byte slot
// of an open-addressing table (its id, a PackedLocation, its states inline); a bigger
// message also has a 24-byte Wide record in a second table (its live count and state
// array), a job a Job record in a third (states, commit location, batches). See
// src/spool/README.md.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include <salvo/spool/packed_location.h>
#include <salvo/spool/records.h>

namespace salvo::spool {

class SpoolIndex {
 public:
  struct JobBatch {
    std::uint32_t first = 0;
    std::uint32_t count = 0;
    Location loc;
  };
  // Recipients whose states live in the message's own slot; more get a Wide record.
  static constexpr std::size_t kInlineRecipients = 6;
  // A view of one message or job, built by find() and for_each(): valid until the index
  // next changes (its spans point into the index).
  struct Entry {
    Location loc;         // the Message record, or the JobTemplate record of a job
    Location commit_loc;  // jobs: the JobCommit record
    std::uint32_t live = 0;
    bool is_job = false;
    bool committed = false;
    std::span<const std::uint8_t> state;  // RecipientState per recipient index
    std::span<const JobBatch> batches;    // jobs: sorted by first
  };
  // Where one recipient's data sits: the message record (index_in_record = recipient
  // index), or for a job the batch record plus the template.
  struct RecipientRef {
    Location record;
    std::uint32_t index_in_record = 0;
    std::optional<Location> job_template;
  };

  // A segment file that exists on disk (recovery) or was just created (writer).
  void add_segment(SegmentSeq seq);
  bool has_segment(SegmentSeq seq) const { return segments_.contains(seq.value()); }
  // Recovery found damage in it: when reclaimable it is renamed aside, never deleted
  // (docs/spool-format.md §7).
  void quarantine(SegmentSeq seq);
  bool quarantined(SegmentSeq seq) const;
  std::size_t segment_count() const noexcept { return segments_.size(); }

  // Committed records. Every recipient starts Pending.
  void add_message(MessageId id, Location loc, std::uint32_t recipients);
  void add_job_template(MessageId id, Location loc);
  // False when the job is unknown or the batch does not continue the job's indexes.
  bool add_job_batch(MessageId id, std::uint32_t first, std::uint32_t count, Location loc);
  bool commit_job(MessageId id, Location commit_loc);
  // Forgets a job that will never commit (recovery end, or a failed job at run time).
  void drop(MessageId id);

  // Applies a committed state record found in (or written to) record_segment. Returns true
  // when a known, non-final recipient changed. Finals free the recipient; when a message
  // has no live recipient left its entry is erased.
  bool apply(const StateUpdate& u, SegmentSeq record_segment);

  // The view of a message or job; nullopt when unknown.
  std::optional<Entry> find(MessageId id) const;
  bool contains(MessageId id) const { return messages_.contains(id.value()); }
  std::optional<RecipientRef> recipient(MessageId id, RecipientIndex r) const;
  RecipientState state(MessageId id, RecipientIndex r) const;
  void for_each(const std::function<void(MessageId, const Entry&)>& fn) const;

  // Segments that may be deleted now, oldest first, never `keep` or any later one (the
  // writer's open and in-flight segments). Delete them in this order; call
  // remove_segment() after each unlink.
  std::vector<SegmentSeq> reclaimable(SegmentSeq keep) const;
  void remove_segment(SegmentSeq seq);

  // Takes over what a background recovery found (docs/spool-format.md §7): the segments
  // and entries of `older`, which was built by recover_segments() from segments that are
  // all older than any this index knows, while this index took new mail (ids above the
  // id mark). The two never share an id; if they did, this index's entry is kept and the
  // other's recipients keep their segments from being reclaimed. Returns such ids (none
  // unless a failed id mark went unnoticed): their recipients are not delivered.
  std::vector<MessageId> absorb(SpoolIndex&& older);

  // Punching (punch.h): the segments before `keep` that are not quarantined, with their
  // live recipients, oldest first; and, for each segment asked (the keys of by_segment),
  // the offsets of its live records (messages, job templates, batches and commits),
  // sorted, and their bytes. One pass over the index.
  std::vector<std::pair<SegmentSeq, std::uint64_t>> punch_candidates(SegmentSeq keep) const;
  struct LiveRecords {
    std::vector<std::uint64_t> offsets;
    std::uint64_t bytes = 0;  // their lengths, summed
  };
  void live_records(std::map<std::uint64_t, LiveRecords>& by_segment) const;

  // Checkpoint (checkpoint.h): what reclamation keeps per segment, and the restore of a
  // segment and of an entry as a checkpoint saved them (the live and pin counts are
  // recomputed from the entries).
  struct SegmentInfo {
    SegmentSeq seq;
    bool quarantined = false;
    std::span<const std::uint64_t> holds_finals_for;
  };
  void for_each_segment(const std::function<void(const SegmentInfo&)>& fn) const;
  void restore_segment(SegmentSeq seq, bool quarantined, std::vector<std::uint64_t> holds);
  // False (and nothing changed) when the entry cannot be one an index holds: id already
  // here, no live recipient, a state byte that is no RecipientState, a location in a
  // segment this index does not have, job batches out of order or outside the states.
  bool restore(MessageId id, const Entry& e);
  // Room for this many messages without rehashing (a restore of a known count).
  void reserve(std::size_t messages) { messages_.reserve(messages); }

  std::size_t message_count() const noexcept { return messages_.size(); }
  std::uint64_t live_recipients() const noexcept { return live_recipients_; }
  // Live recipients whose record lives in seq (tests, spool-dump).
  std::uint64_t segment_live(SegmentSeq seq) const;

 private:
  struct Segment {
    std::uint64_t live = 0;  // live recipients whose record is here
    std::uint64_t pins = 0;  // live jobs whose template or commit record is here
    // Older segments this one holds final-state records for: it must outlive them, or
    // recovery would resurrect their recipients.
    std::vector<std::uint64_t> holds_finals_for;
    bool quarantined = false;
  };
  // 24 bytes (32 with its key in the table): all a message of up to kInlineRecipients
  // recipients needs. Live recipients of an inline message are counted from its states.
  struct Slot {
    PackedLocation loc;  // the Message record, or the JobTemplate record of a job
    std::array<std::uint8_t, kInlineRecipients> states{};  // inline ones
    std::uint8_t count = 0;  // inline recipients; kWide: the states are in wide_ or jobs_
    std::uint8_t flags = 0;  // kJob, kCommitted
  };
  static constexpr std::uint8_t kWide = 0xff;
  static constexpr std::uint8_t kJob = 1;
  static constexpr std::uint8_t kCommitted = 2;
  // A message of more than kInlineRecipients recipients.
  struct Wide {
    std::uint32_t live = 0;
    std::uint32_t size = 0;
    std::unique_ptr<std::uint8_t[]> states;
  };
  // A job: its recipients arrive batch by batch.
  struct Job {
    std::uint32_t live = 0;
    std::vector<std::uint8_t> states;
    Location commit_loc;
    std::vector<JobBatch> batches;  // sorted by first
  };
  using Messages = absl::flat_hash_map<std::uint64_t, Slot>;
  static_assert(sizeof(Slot) == 24);

  void change_live(SegmentSeq seq, std::int64_t delta);
  void change_pins(SegmentSeq seq, std::int64_t delta);
  void release(Messages::iterator it);
  Entry view(std::uint64_t id, const Slot& s) const;
  // The slot's state bytes (inline, in wide_ or in jobs_).
  std::span<const std::uint8_t> states(std::uint64_t id, const Slot& s) const;
  std::span<std::uint8_t> states(std::uint64_t id, Slot& s);
  // The live count kept for a wide message or a job; null for an inline one (counted).
  std::uint32_t* live_counter(std::uint64_t id, const Slot& s);
  std::uint32_t live(std::uint64_t id, const Slot& s) const;

  Messages messages_;
  absl::flat_hash_map<std::uint64_t, Wide> wide_;
  absl::flat_hash_map<std::uint64_t, Job> jobs_;
  std::map<std::uint64_t, Segment> segments_;
  std::uint64_t live_recipients_ = 0;
};

}  // namespace salvo::spool
