// SPDX-License-Identifier: Apache-2.0
// Recovery scan: segments in sequence order, records in offset order, so every state
// record is applied after the message it names (states are only ever appended after the
// message committed). A job counts only with its JobCommit record. Damage is skipped to the
// next record that verifies; the segment is then quarantined.
#include <salvo/spool/recovery.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include <salvo/base/log.h>

#include "spool/segment_file.h"

namespace salvo::spool {
namespace {

// Identities without a claim (written before claims) cannot tell two files apart: they are
// not used (docs/spool-format.md §8).
void note_pickup(ScanState& st, const std::optional<PickupIdentity>& p, MessageId id) {
  if (p && !p->claim.empty() && st.claims != nullptr) st.claims->emplace_back(p->claim, id);
}

void apply_record(const RawRecord& rec, SegmentSeq seq, ScanState& st) {
  Location loc{seq, rec.offset, rec.length};
  SpoolIndex& index = *st.index;
  RecoveryReport& rep = *st.report;
  switch (rec.type) {
    case RecordType::SegmentHeader:
      break;  // only valid first; a repeat is harmless
    case RecordType::Message: {
      auto m = decode_message(rec.payload);
      if (!m) break;
      st.max_id = std::max(st.max_id, m->id.value());
      ++rep.messages;
      index.add_message(m->id, loc, static_cast<std::uint32_t>(m->recipients.size()));
      note_pickup(st, m->pickup, m->id);
      return;
    }
    case RecordType::JobTemplate: {
      auto t = decode_job_template(rec.payload);
      if (!t) break;
      st.max_id = std::max(st.max_id, t->job_id.value());
      index.add_job_template(t->job_id, loc);
      return;
    }
    case RecordType::JobRecipients: {
      auto b = decode_job_recipients(rec.payload);
      if (!b) break;
      if (!b->recipients.empty()) {
        index.add_job_batch(b->job_id, b->first_index,
                            static_cast<std::uint32_t>(b->recipients.size()), loc);
      }
      return;
    }
    case RecordType::JobCommit: {
      auto c = decode_job_commit(rec.payload);
      if (!c) break;
      if (index.commit_job(c->job_id, loc)) {
        ++rep.messages;
        note_pickup(st, c->pickup, c->job_id);
      }
      return;
    }
    case RecordType::RecipientState: {
      auto s = decode_recipient_state(rec.payload);
      if (!s) break;
      for (const StateUpdate& u : s->updates) {
        if (!index.apply(u, seq)) {
          if (!index.contains(u.message)) ++rep.orphan_states;
          continue;
        }
        if (u.state == RecipientState::Deferred && st.deferred != nullptr) {
          st.deferred->push_back({u.message, u.recipient, u.attempts, u.next_attempt_unix_ns});
        }
      }
      return;
    }
  }
  ++rep.undecodable;
}

}  // namespace

std::optional<SegmentDamage> scan_segment(std::string_view bytes, SegmentSeq seq, ScanState& st,
                                          const PunchNote* punched) {
  detail::SegmentScanner scan(bytes, seq);
  auto first = scan.next();
  if (!first || first->type != RecordType::SegmentHeader) return std::nullopt;
  auto hdr = decode_segment_header(first->payload);
  // Version 2 binds every record to its place, the header included; version 1 knew no
  // binding.
  if (!hdr || hdr->seq != seq || first->bound != (hdr->version == kSegmentVersion)) {
    return std::nullopt;
  }
  scan.stop_at(hdr->capacity);
  if (punched != nullptr) {
    // A note names its segment's creation: one left by another segment of this number
    // (numbers restart once all were reclaimed) never applies.
    if (punched->seq == seq && punched->created_unix_ns == hdr->created_unix_ns &&
        detail::punch_note_fits(*punched, first->offset + first->length, hdr->capacity)) {
      scan.skip(punched->ranges);
    } else {
      ++st.report->bad_punch_notes;
    }
  }
  st.index->add_segment(seq);
  ++st.report->records;
  while (auto rec = scan.next()) {
    ++st.report->records;
    apply_record(*rec, seq, st);
  }
  const SegmentDamage& d = scan.damage();
  RecoveryReport& rep = *st.report;
  rep.punched_bytes += d.punched_bytes;
  if (d.torn) {
    ++rep.torn_segments;
    rep.dropped_bytes += d.dropped_bytes;
  }
  if (d.quarantined()) {
    ++rep.quarantined_segments;
    rep.damaged_regions += d.regions;
    rep.skipped_bytes += d.skipped_bytes;
    rep.records_after_damage += d.records_after;
    st.index->quarantine(seq);
  }
  return d;
}

namespace {

constexpr metrics::Family kDamagedRegions{
    "salvo_spool_recovery_damaged_regions", metrics::Type::Gauge,
    "Damaged stretches of spool segments that the start-up recovery skipped to the next "
    "record that verifies."};
constexpr metrics::Family kSkippedBytes{"salvo_spool_recovery_skipped_bytes", metrics::Type::Gauge,
                                        "Bytes of those damaged stretches."};
constexpr metrics::Family kRecordsAfterDamage{
    "salvo_spool_recovery_records_after_damage", metrics::Type::Gauge,
    "Records the start-up recovery found intact after damage in their segment."};
constexpr metrics::Family kQuarantined{
    "salvo_spool_quarantined_segments", metrics::Type::Gauge,
    "Segments in which the start-up recovery found damage: kept, never deleted (renamed "
    "*.damaged once their mail is final)."};

constexpr metrics::Family kCheckpointLoads{
    "salvo_spool_checkpoint_loads_total", metrics::Type::Counter,
    "Start-ups that found a shard's clean-stop checkpoint, by what became of it: used (no "
    "segment scanned), stale (the segments changed since: scanned) or bad (unreadable: "
    "scanned)."};

}  // namespace

void add(RecoveryReport& into, const RecoveryReport& more) {
  into.segments += more.segments;
  into.bad_segments += more.bad_segments;
  into.torn_segments += more.torn_segments;
  into.dropped_bytes += more.dropped_bytes;
  into.damaged_regions += more.damaged_regions;
  into.skipped_bytes += more.skipped_bytes;
  into.records_after_damage += more.records_after_damage;
  into.quarantined_segments += more.quarantined_segments;
  into.records += more.records;
  into.undecodable += more.undecodable;
  into.messages += more.messages;
  into.uncommitted_jobs += more.uncommitted_jobs;
  into.orphan_states += more.orphan_states;
  into.duplicate_pickups += more.duplicate_pickups;
  into.punched_bytes += more.punched_bytes;
  into.bad_punch_notes += more.bad_punch_notes;
  into.bad_id_mark = into.bad_id_mark || more.bad_id_mark;
  if (into.checkpoint == CheckpointUse::None) into.checkpoint = more.checkpoint;
}

void log_report(const std::string& dir, const RecoveryReport& rep) {
  if (rep.torn_segments != 0 || rep.bad_segments != 0 || rep.undecodable != 0 ||
      rep.quarantined_segments != 0) {
    log::warn(
        "spool {}: recovery: {} segments, {} torn, {} bad, {} undecodable records, {} "
        "bytes dropped; {} damaged (quarantined): {} stretch(es) and {} bytes skipped, "
        "{} records recovered after the damage",
        dir, rep.segments, rep.torn_segments, rep.bad_segments, rep.undecodable,
        rep.dropped_bytes, rep.quarantined_segments, rep.damaged_regions, rep.skipped_bytes,
        rep.records_after_damage);
  }
  if (rep.bad_punch_notes != 0) {
    log::warn("spool {}: {} punch note(s) unreadable or not matching their segment: the "
              "punched ranges there were read as damage",
              dir, rep.bad_punch_notes);
  }
  if (rep.bad_id_mark) {
    log::warn("spool {}: the next-id file is unreadable: message ids continue above the "
              "highest still in the spool and may repeat those of reclaimed messages",
              dir);
  }
}

std::string_view to_string(CheckpointUse u) noexcept {
  switch (u) {
    case CheckpointUse::None: return "none";
    case CheckpointUse::Used: return "used";
    case CheckpointUse::Stale: return "stale";
    case CheckpointUse::Bad: return "bad";
  }
  return "none";
}

void add_metrics(const RecoveryReport& r, metrics::Snapshot& s) {
  for (CheckpointUse u : {CheckpointUse::Used, CheckpointUse::Stale, CheckpointUse::Bad}) {
    s.add(kCheckpointLoads, metrics::label("result", to_string(u)),
          std::uint64_t{r.checkpoint == u ? 1u : 0u});
  }
  s.add(kDamagedRegions, {}, r.damaged_regions);
  s.add(kSkippedBytes, {}, r.skipped_bytes);
  s.add(kRecordsAfterDamage, {}, r.records_after_damage);
  s.add(kQuarantined, {}, r.quarantined_segments);
}

Status remove_unfinished_segments(const std::string& dir) {
  return detail::remove_unfinished_segments(dir);
}

Result<SpoolListing> list_spool(const std::string& dir, std::uint32_t shard) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno(errno);
  auto segs = detail::list_segments(dir);
  if (!segs) return std::unexpected(segs.error());
  SpoolListing l;
  l.dir = dir;
  l.shard = shard;
  l.segments = std::move(*segs);
  std::uint64_t max_seq = 0;
  for (SegmentSeq seq : l.segments) {
    max_seq = std::max(max_seq, seq.value());
    struct stat sb {};
    if (::stat(detail::segment_path(dir, seq).c_str(), &sb) == 0 && sb.st_size > 0) {
      l.bytes += static_cast<std::uint64_t>(sb.st_size);
    }
  }
  l.next_segment = SegmentSeq(max_seq + 1);
  const std::uint64_t first = (std::uint64_t{shard} << 48) + 1;
  auto mark = detail::read_id_mark(dir);
  l.bad_id_mark = !mark;
  // A writer makes its mark durable before it hands out an id below it (and removes the
  // mark when it cannot: SpoolWriter::reserve_ids), so a mark is above every id in the
  // spool. Without one (a spool from before marks, or an unreadable file) only a scan
  // can tell.
  l.ids_known = l.segments.empty() || (mark && *mark != 0);
  l.next_id = MessageId(std::max(first, mark ? *mark : 0));
  l.id_mark = mark ? *mark : 0;
  return l;
}

namespace {

// Waits up to `d` in short steps; false when cancelled meanwhile.
bool test_delay(const ScanProgress& p) {
  auto left = p.test_delay_per_segment;
  while (left > Duration::zero()) {
    if (p.cancel.load(std::memory_order_relaxed)) return false;
    const auto step = std::min<Duration>(left, std::chrono::milliseconds(10));
    ::usleep(static_cast<useconds_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(step).count()));
    left -= step;
  }
  return true;
}

}  // namespace

Result<RecoveryResult> recover(const std::string& dir, std::uint32_t shard) {
  auto listing = list_spool(dir, shard);
  if (!listing) return std::unexpected(listing.error());
  return recover_segments(*listing, nullptr);
}

Result<RecoveryResult> recover_segments(const SpoolListing& listing, ScanProgress* progress) {
  const std::string& dir = listing.dir;
  RecoveryResult out;
  std::vector<std::pair<std::string, MessageId>> claims;
  ScanState st{&out.index, &out.report, &out.deferred, &claims, 0};
  for (SegmentSeq seq : listing.segments) {
    if (progress != nullptr) {
      if (progress->cancel.load(std::memory_order_relaxed) || !test_delay(*progress)) {
        return fail(std::errc::operation_canceled);
      }
    }
    ++out.report.segments;
    std::string path = detail::segment_path(dir, seq);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno(errno);
    struct stat sb {};
    std::optional<SegmentDamage> scanned;
    std::uint64_t size_scanned = 0;
    // Unreadable: the punched ranges read as damage (the segment is quarantined, its live
    // records still found).
    auto note = detail::read_punch_note(dir, seq);
    if (!note) {
      ++out.report.bad_punch_notes;
      log::warn("spool: {}: {}; its punched ranges will count as damage", path,
                note.error().message());
    }
    const PunchNote* punched = note && *note ? &**note : nullptr;
    if (::fstat(fd, &sb) == 0 && sb.st_size > 0) {
      auto size = static_cast<std::size_t>(sb.st_size);
      size_scanned = size;
      void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        scanned = scan_segment(std::string_view(static_cast<const char*>(p), size), seq, st,
                               punched);
        ::munmap(p, size);
      }
    }
    ::close(fd);
    if (progress != nullptr) {
      progress->segments_done.fetch_add(1, std::memory_order_relaxed);
      progress->bytes_done.fetch_add(size_scanned, std::memory_order_relaxed);
      progress->messages.store(out.report.messages, std::memory_order_relaxed);
    }
    if (!scanned) {
      // Quarantined in place: not in the index, so never appended to or deleted.
      ++out.report.bad_segments;
      log::error("spool: {}: bad or missing segment header; left for inspection", path);
    } else if (scanned->quarantined()) {
      log::warn(
          "spool: {}: damaged: skipped {} stretch(es), {} bytes{}, and recovered {} "
          "record(s) after them; the segment is quarantined (kept; renamed {}.damaged "
          "instead of deleted once its mail is final)",
          path, scanned->regions, scanned->skipped_bytes,
          scanned->gave_up ? " (resync gave up: the rest is unread)" : "", scanned->records_after,
          path);
    }
  }
  if (out.report.torn_segments > 0) {
    log::warn("spool: {}: {} segment(s) ended in a torn or corrupt record ({} bytes dropped)", dir,
              out.report.torn_segments, out.report.dropped_bytes);
  }
  // Jobs without their commit record were never accepted.
  std::vector<MessageId> uncommitted;
  out.index.for_each([&](MessageId id, const SpoolIndex::Entry& e) {
    if (e.is_job && !e.committed) uncommitted.push_back(id);
  });
  for (MessageId id : uncommitted) out.index.drop(id);
  out.report.uncommitted_jobs = uncommitted.size();
  // One queued copy per claimed file. A claim is committed twice only when a commit that
  // reported failure reached the disk anyway and the file was retried: keep the latest.
  std::map<std::string, MessageId> latest;
  for (auto& [claim, id] : claims) {
    auto [it, inserted] = latest.try_emplace(std::move(claim), id);
    if (!inserted) {
      ++out.report.duplicate_pickups;
      out.index.drop(it->second);
      it->second = id;
    }
  }
  out.pickup_claims.reserve(latest.size());
  for (auto& [claim, id] : latest) out.pickup_claims.push_back(claim);
  // Keep the last Deferred state per recipient that is still deferred.
  auto& d = out.deferred;
  std::stable_sort(d.begin(), d.end(), [](const PendingRecipient& a, const PendingRecipient& b) {
    return std::pair(a.message, a.recipient) < std::pair(b.message, b.recipient);
  });
  std::vector<PendingRecipient> kept;
  for (std::size_t i = 0; i < d.size(); ++i) {
    bool last = i + 1 == d.size() || d[i + 1].message != d[i].message ||
                d[i + 1].recipient != d[i].recipient;
    if (last && out.index.state(d[i].message, d[i].recipient) == RecipientState::Deferred) {
      kept.push_back(d[i]);
    }
  }
  d = std::move(kept);
  out.next_segment = listing.next_segment;
  // listing.next_id is the mark (or the shard's first id); bad_id_mark: ids may repeat
  // ones of reclaimed messages, mail is safe.
  out.next_id = MessageId(std::max(st.max_id + 1, listing.next_id.value()));
  out.report.bad_id_mark = listing.bad_id_mark;
  if (progress != nullptr) progress->messages.store(out.report.messages);
  return out;
}

void for_each_pending(const RecoveryResult& r,
                      const std::function<void(const PendingRecipient&)>& fn) {
  r.index.for_each([&](MessageId id, const SpoolIndex::Entry& e) {
    if (!e.committed) return;
    for (std::uint32_t i = 0; i < e.state.size(); ++i) {
      auto s = static_cast<RecipientState>(e.state[i]);
      if (is_final(s)) continue;
      PendingRecipient p{id, RecipientIndex(i), 0, 0};
      if (s == RecipientState::Deferred) {
        auto it = std::lower_bound(r.deferred.begin(), r.deferred.end(), p,
                                   [](const PendingRecipient& a, const PendingRecipient& b) {
                                     return std::pair(a.message, a.recipient) <
                                            std::pair(b.message, b.recipient);
                                   });
        if (it != r.deferred.end() && it->message == id && it->recipient == p.recipient) p = *it;
      }
      fn(p);
    }
  });
}

}  // namespace salvo::spool
