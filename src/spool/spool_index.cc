// SPDX-License-Identifier: Apache-2.0
// SpoolIndex: live counts, pins and reclamation order (see src/spool/README.md).
#include <salvo/spool/spool_index.h>

#include <algorithm>
#include <set>

namespace salvo::spool {

void SpoolIndex::add_segment(SegmentSeq seq) { segments_.try_emplace(seq.value()); }

void SpoolIndex::quarantine(SegmentSeq seq) { segments_[seq.value()].quarantined = true; }

bool SpoolIndex::quarantined(SegmentSeq seq) const {
  auto it = segments_.find(seq.value());
  return it != segments_.end() && it->second.quarantined;
}

void SpoolIndex::change_live(SegmentSeq seq, std::int64_t delta) {
  auto& s = segments_[seq.value()];
  s.live = static_cast<std::uint64_t>(static_cast<std::int64_t>(s.live) + delta);
}

void SpoolIndex::change_pins(SegmentSeq seq, std::int64_t delta) {
  auto& s = segments_[seq.value()];
  s.pins = static_cast<std::uint64_t>(static_cast<std::int64_t>(s.pins) + delta);
}

void SpoolIndex::add_message(MessageId id, Location loc, std::uint32_t recipients) {
  if (recipients == 0 || messages_.contains(id.value())) return;
  Entry e;
  e.loc = loc;
  e.live = recipients;
  e.committed = true;
  e.state.assign(recipients, static_cast<std::uint8_t>(RecipientState::Pending));
  messages_.emplace(id.value(), std::move(e));
  change_live(loc.segment, recipients);
  live_recipients_ += recipients;
}

void SpoolIndex::add_job_template(MessageId id, Location loc) {
  if (messages_.contains(id.value())) return;
  Entry e;
  e.loc = loc;
  e.is_job = true;
  messages_.emplace(id.value(), std::move(e));
  change_pins(loc.segment, 1);
}

bool SpoolIndex::add_job_batch(MessageId id, std::uint32_t first, std::uint32_t count,
                               Location loc) {
  auto it = messages_.find(id.value());
  if (it == messages_.end() || !it->second.is_job || it->second.committed) return false;
  Entry& e = it->second;
  // Batches continue the job's indexes in order; a gap is allowed only where reclaimed
  // batches were (recovery), so only require monotonic indexes.
  if (first < e.state.size() || count == 0) return false;
  e.state.resize(first, static_cast<std::uint8_t>(RecipientState::Delivered));  // reclaimed
  e.state.resize(std::size_t{first} + count, static_cast<std::uint8_t>(RecipientState::Pending));
  e.batches.push_back({first, count, loc});
  e.live += count;
  change_live(loc.segment, count);
  live_recipients_ += count;
  return true;
}

bool SpoolIndex::commit_job(MessageId id, Location commit_loc) {
  auto it = messages_.find(id.value());
  if (it == messages_.end() || !it->second.is_job || it->second.committed) return false;
  it->second.committed = true;
  it->second.commit_loc = commit_loc;
  change_pins(commit_loc.segment, 1);
  if (it->second.live == 0) release(it);
  return true;
}

void SpoolIndex::release(std::unordered_map<std::uint64_t, Entry>::iterator it) {
  Entry& e = it->second;
  if (e.is_job) {
    change_pins(e.loc.segment, -1);
    if (e.committed) change_pins(e.commit_loc.segment, -1);
  }
  messages_.erase(it);
}

void SpoolIndex::drop(MessageId id) {
  auto it = messages_.find(id.value());
  if (it == messages_.end()) return;
  Entry& e = it->second;
  if (e.is_job) {
    for (const JobBatch& b : e.batches) {
      for (std::uint32_t i = 0; i < b.count; ++i) {
        if (!is_final(static_cast<RecipientState>(e.state[b.first + i]))) {
          change_live(b.loc.segment, -1);
          --live_recipients_;
        }
      }
    }
  } else {
    change_live(e.loc.segment, -static_cast<std::int64_t>(e.live));
    live_recipients_ -= e.live;
  }
  release(it);
}

bool SpoolIndex::apply(const StateUpdate& u, SegmentSeq record_segment) {
  auto it = messages_.find(u.message.value());
  if (it == messages_.end()) return false;
  Entry& e = it->second;
  std::uint32_t idx = u.recipient.value();
  if (idx >= e.state.size()) return false;
  auto cur = static_cast<RecipientState>(e.state[idx]);
  if (is_final(cur)) return false;
  if (!is_final(u.state)) {
    e.state[idx] = static_cast<std::uint8_t>(u.state);
    return true;
  }
  Location where = e.loc;
  if (e.is_job) {
    auto b = std::upper_bound(e.batches.begin(), e.batches.end(), idx,
                              [](std::uint32_t v, const JobBatch& jb) { return v < jb.first; });
    if (b == e.batches.begin()) return false;
    --b;
    if (idx >= b->first + b->count) return false;
    where = b->loc;
  }
  e.state[idx] = static_cast<std::uint8_t>(u.state);
  --e.live;
  --live_recipients_;
  change_live(where.segment, -1);
  if (where.segment != record_segment) {
    auto& deps = segments_[record_segment.value()].holds_finals_for;
    if (std::find(deps.begin(), deps.end(), where.segment.value()) == deps.end()) {
      deps.push_back(where.segment.value());
    }
  }
  if (e.live == 0 && e.committed) release(it);
  return true;
}

const SpoolIndex::Entry* SpoolIndex::find(MessageId id) const {
  auto it = messages_.find(id.value());
  return it == messages_.end() ? nullptr : &it->second;
}

std::optional<SpoolIndex::RecipientRef> SpoolIndex::recipient(MessageId id,
                                                              RecipientIndex r) const {
  const Entry* e = find(id);
  if (e == nullptr || r.value() >= e->state.size()) return std::nullopt;
  if (!e->is_job) return RecipientRef{e->loc, r.value(), std::nullopt};
  auto b = std::upper_bound(e->batches.begin(), e->batches.end(), r.value(),
                            [](std::uint32_t v, const JobBatch& jb) { return v < jb.first; });
  if (b == e->batches.begin()) return std::nullopt;
  --b;
  if (r.value() >= b->first + b->count) return std::nullopt;
  return RecipientRef{b->loc, r.value() - b->first, e->loc};
}

RecipientState SpoolIndex::state(MessageId id, RecipientIndex r) const {
  const Entry* e = find(id);
  // Unknown messages were fully final and reclaimed (or never committed).
  if (e == nullptr || r.value() >= e->state.size()) return RecipientState::Delivered;
  return static_cast<RecipientState>(e->state[r.value()]);
}

void SpoolIndex::for_each(const std::function<void(MessageId, const Entry&)>& fn) const {
  for (const auto& [id, e] : messages_) fn(MessageId(id), e);
}

std::vector<SegmentSeq> SpoolIndex::reclaimable(SegmentSeq keep) const {
  std::vector<SegmentSeq> out;
  std::set<std::uint64_t> gone;
  for (const auto& [seq, s] : segments_) {
    if (seq >= keep.value()) break;
    if (s.live != 0 || s.pins != 0) continue;
    bool blocked =
        std::any_of(s.holds_finals_for.begin(), s.holds_finals_for.end(),
                    [&](std::uint64_t d) { return segments_.contains(d) && !gone.contains(d); });
    if (blocked) continue;
    gone.insert(seq);
    out.emplace_back(seq);
  }
  return out;
}

std::vector<MessageId> SpoolIndex::absorb(SpoolIndex&& older) {
  for (auto& [seq, seg] : older.segments_) {
    auto [it, inserted] = segments_.try_emplace(seq, std::move(seg));
    if (inserted) continue;
    Segment& s = it->second;  // not expected: the writer's segments are all newer
    s.live += seg.live;
    s.pins += seg.pins;
    s.quarantined = s.quarantined || seg.quarantined;
    for (std::uint64_t d : seg.holds_finals_for) {
      if (std::find(s.holds_finals_for.begin(), s.holds_finals_for.end(), d) ==
          s.holds_finals_for.end()) {
        s.holds_finals_for.push_back(d);
      }
    }
  }
  live_recipients_ += older.live_recipients_;
  messages_.merge(older.messages_);
  // What is left shares an id with an entry here. Its live counts stay in its segments
  // (never reclaimed while this process runs); it is not counted as live here.
  std::vector<MessageId> clashes;
  for (const auto& [id, e] : older.messages_) {
    live_recipients_ -= e.live;
    clashes.emplace_back(id);
  }
  older.messages_.clear();
  older.segments_.clear();
  older.live_recipients_ = 0;
  return clashes;
}

std::vector<std::pair<SegmentSeq, std::uint64_t>> SpoolIndex::punch_candidates(
    SegmentSeq keep) const {
  std::vector<std::pair<SegmentSeq, std::uint64_t>> out;
  for (const auto& [seq, s] : segments_) {
    if (seq >= keep.value()) break;
    if (!s.quarantined) out.emplace_back(SegmentSeq(seq), s.live);
  }
  return out;
}

void SpoolIndex::live_records(std::map<std::uint64_t, LiveRecords>& by_segment) const {
  auto note = [&](const Location& loc) {
    auto it = by_segment.find(loc.segment.value());
    if (it == by_segment.end()) return;
    it->second.offsets.push_back(loc.offset);
    it->second.bytes += loc.length;
  };
  for (const auto& [id, e] : messages_) {
    note(e.loc);
    if (!e.is_job) continue;
    if (e.committed) note(e.commit_loc);
    for (const JobBatch& b : e.batches) note(b.loc);
  }
  for (auto& [seq, lr] : by_segment) std::sort(lr.offsets.begin(), lr.offsets.end());
}

void SpoolIndex::remove_segment(SegmentSeq seq) { segments_.erase(seq.value()); }

std::uint64_t SpoolIndex::segment_live(SegmentSeq seq) const {
  auto it = segments_.find(seq.value());
  return it == segments_.end() ? 0 : it->second.live;
}

}  // namespace salvo::spool
