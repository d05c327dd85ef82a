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

namespace {

constexpr auto kPending = static_cast<std::uint8_t>(RecipientState::Pending);

bool final_state(std::uint8_t s) { return is_final(static_cast<RecipientState>(s)); }

}  // namespace

std::span<const std::uint8_t> SpoolIndex::states(std::uint64_t id, const Slot& s) const {
  if (s.count != kWide) return std::span(s.states.data(), s.count);
  if ((s.flags & kJob) != 0) return jobs_.find(id)->second.states;
  const Wide& w = wide_.find(id)->second;
  return std::span(w.states.get(), w.size);
}

std::span<std::uint8_t> SpoolIndex::states(std::uint64_t id, Slot& s) {
  if (s.count != kWide) return std::span(s.states.data(), s.count);
  if ((s.flags & kJob) != 0) return jobs_.find(id)->second.states;
  Wide& w = wide_.find(id)->second;
  return std::span(w.states.get(), w.size);
}

std::uint32_t* SpoolIndex::live_counter(std::uint64_t id, const Slot& s) {
  if (s.count != kWide) return nullptr;
  if ((s.flags & kJob) != 0) return &jobs_.find(id)->second.live;
  return &wide_.find(id)->second.live;
}

std::uint32_t SpoolIndex::live(std::uint64_t id, const Slot& s) const {
  if (s.count == kWide) {
    return (s.flags & kJob) != 0 ? jobs_.find(id)->second.live : wide_.find(id)->second.live;
  }
  return static_cast<std::uint32_t>(
      std::count_if(s.states.begin(), s.states.begin() + s.count,
                    [](std::uint8_t st) { return !final_state(st); }));
}

SpoolIndex::Entry SpoolIndex::view(std::uint64_t id, const Slot& s) const {
  Entry e;
  e.loc = s.loc.unpack();
  e.is_job = (s.flags & kJob) != 0;
  e.committed = (s.flags & kCommitted) != 0;
  e.state = states(id, s);
  e.live = live(id, s);
  if (e.is_job) {
    const Job& j = jobs_.find(id)->second;
    e.commit_loc = j.commit_loc;
    e.batches = j.batches;
  }
  return e;
}

void SpoolIndex::add_message(MessageId id, Location loc, std::uint32_t recipients) {
  if (recipients == 0 || messages_.contains(id.value())) return;
  Slot s;
  s.loc = PackedLocation(loc);
  s.flags = kCommitted;
  if (recipients <= kInlineRecipients) {
    s.count = static_cast<std::uint8_t>(recipients);
    std::fill_n(s.states.begin(), recipients, kPending);
  } else {
    s.count = kWide;
    Wide& w = wide_[id.value()];
    w.live = recipients;
    w.size = recipients;
    w.states = std::make_unique<std::uint8_t[]>(recipients);  // zeroed: Pending
    static_assert(kPending == 0);
  }
  messages_.emplace(id.value(), s);
  change_live(loc.segment, recipients);
  live_recipients_ += recipients;
}

void SpoolIndex::add_job_template(MessageId id, Location loc) {
  if (messages_.contains(id.value())) return;
  Slot s;
  s.loc = PackedLocation(loc);
  s.count = kWide;
  s.flags = kJob;
  jobs_[id.value()] = Job{};
  messages_.emplace(id.value(), s);
  change_pins(loc.segment, 1);
}

bool SpoolIndex::add_job_batch(MessageId id, std::uint32_t first, std::uint32_t count,
                               Location loc) {
  auto it = messages_.find(id.value());
  if (it == messages_.end() || it->second.flags != kJob) return false;
  Job& j = jobs_.find(id.value())->second;
  // Batches continue the job's indexes in order; a gap is allowed only where reclaimed
  // batches were (recovery), so only require monotonic indexes.
  if (first < j.states.size() || count == 0) return false;
  j.states.resize(first, static_cast<std::uint8_t>(RecipientState::Delivered));  // reclaimed
  j.states.resize(std::size_t{first} + count, kPending);
  j.batches.push_back({first, count, loc});
  j.live += count;
  change_live(loc.segment, count);
  live_recipients_ += count;
  return true;
}

bool SpoolIndex::commit_job(MessageId id, Location commit_loc) {
  auto it = messages_.find(id.value());
  if (it == messages_.end() || it->second.flags != kJob) return false;
  it->second.flags |= kCommitted;
  Job& j = jobs_.find(id.value())->second;
  j.commit_loc = commit_loc;
  change_pins(commit_loc.segment, 1);
  if (j.live == 0) release(it);
  return true;
}

void SpoolIndex::release(Messages::iterator it) {
  const Slot& s = it->second;
  if ((s.flags & kJob) != 0) {
    auto j = jobs_.find(it->first);
    change_pins(s.loc.segment(), -1);
    if ((s.flags & kCommitted) != 0) change_pins(j->second.commit_loc.segment, -1);
    jobs_.erase(j);
  } else if (s.count == kWide) {
    wide_.erase(it->first);
  }
  messages_.erase(it);
}

void SpoolIndex::drop(MessageId id) {
  auto it = messages_.find(id.value());
  if (it == messages_.end()) return;
  const Slot& s = it->second;
  if ((s.flags & kJob) != 0) {
    const Job& j = jobs_.find(id.value())->second;
    for (const JobBatch& b : j.batches) {
      for (std::uint32_t i = 0; i < b.count; ++i) {
        if (!final_state(j.states[b.first + i])) {
          change_live(b.loc.segment, -1);
          --live_recipients_;
        }
      }
    }
  } else {
    const std::uint32_t n = live(id.value(), s);
    change_live(s.loc.segment(), -static_cast<std::int64_t>(n));
    live_recipients_ -= n;
  }
  release(it);
}

bool SpoolIndex::apply(const StateUpdate& u, SegmentSeq record_segment) {
  auto it = messages_.find(u.message.value());
  if (it == messages_.end()) return false;
  Slot& s = it->second;
  const std::span<std::uint8_t> st = states(it->first, s);
  std::uint32_t idx = u.recipient.value();
  if (idx >= st.size()) return false;
  if (final_state(st[idx])) return false;
  if (!is_final(u.state)) {
    st[idx] = static_cast<std::uint8_t>(u.state);
    return true;
  }
  SegmentSeq where = s.loc.segment();
  if ((s.flags & kJob) != 0) {
    const std::vector<JobBatch>& batches = jobs_.find(it->first)->second.batches;
    auto b = std::upper_bound(batches.begin(), batches.end(), idx,
                              [](std::uint32_t v, const JobBatch& jb) { return v < jb.first; });
    if (b == batches.begin()) return false;
    --b;
    if (idx >= b->first + b->count) return false;
    where = b->loc.segment;
  }
  st[idx] = static_cast<std::uint8_t>(u.state);
  if (std::uint32_t* n = live_counter(it->first, s)) --*n;
  --live_recipients_;
  change_live(where, -1);
  if (where != record_segment) {
    auto& deps = segments_[record_segment.value()].holds_finals_for;
    if (std::find(deps.begin(), deps.end(), where.value()) == deps.end()) {
      deps.push_back(where.value());
    }
  }
  if ((s.flags & kCommitted) != 0 && live(it->first, s) == 0) release(it);
  return true;
}

std::optional<SpoolIndex::Entry> SpoolIndex::find(MessageId id) const {
  auto it = messages_.find(id.value());
  if (it == messages_.end()) return std::nullopt;
  return view(it->first, it->second);
}

std::optional<SpoolIndex::RecipientRef> SpoolIndex::recipient(MessageId id,
                                                              RecipientIndex r) const {
  const std::optional<Entry> e = find(id);
  if (!e || r.value() >= e->state.size()) return std::nullopt;
  if (!e->is_job) return RecipientRef{e->loc, r.value(), std::nullopt};
  auto b = std::upper_bound(e->batches.begin(), e->batches.end(), r.value(),
                            [](std::uint32_t v, const JobBatch& jb) { return v < jb.first; });
  if (b == e->batches.begin()) return std::nullopt;
  --b;
  if (r.value() >= b->first + b->count) return std::nullopt;
  return RecipientRef{b->loc, r.value() - b->first, e->loc};
}

RecipientState SpoolIndex::state(MessageId id, RecipientIndex r) const {
  auto it = messages_.find(id.value());
  // Unknown messages were fully final and reclaimed (or never committed).
  if (it == messages_.end()) return RecipientState::Delivered;
  const std::span<const std::uint8_t> st = states(it->first, it->second);
  return r.value() < st.size() ? static_cast<RecipientState>(st[r.value()])
                               : RecipientState::Delivered;
}

void SpoolIndex::for_each(const std::function<void(MessageId, const Entry&)>& fn) const {
  for (const auto& [id, s] : messages_) fn(MessageId(id), view(id, s));
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
  // The bigger tables take the smaller ones' entries. After a restart over millions of
  // messages the scanned index is the big one: growing the new one to its size would hold
  // two full tables at once, at the moment the recovery's plan is largest too.
  const bool swapped = older.messages_.size() > messages_.size();
  if (swapped) {
    messages_.swap(older.messages_);
    wide_.swap(older.wide_);
    jobs_.swap(older.jobs_);
  }
  // An id in both (none unless a failed id mark went unnoticed): the newer entry is kept.
  // The other's live counts stay in its segments (never reclaimed while this process runs);
  // it is not counted as live here.
  std::vector<MessageId> clashes;
  for (const auto& [id, s] : older.messages_) {
    auto [it, inserted] = messages_.try_emplace(id, s);
    if (!inserted) {
      clashes.emplace_back(id);
      if (!swapped) {  // the entry here is the newer one
        live_recipients_ -= older.live(id, s);
        continue;
      }
      live_recipients_ -= live(id, it->second);  // the older one gives way
      wide_.erase(id);
      jobs_.erase(id);
      it->second = s;
    }
    if (auto w = older.wide_.find(id); w != older.wide_.end()) {
      wide_.insert_or_assign(id, std::move(w->second));
    }
    if (auto j = older.jobs_.find(id); j != older.jobs_.end()) {
      jobs_.insert_or_assign(id, std::move(j->second));
    }
  }
  older.messages_.clear();
  older.wide_.clear();
  older.jobs_.clear();
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
  for (const auto& [id, s] : messages_) {
    note(s.loc.unpack());
    if ((s.flags & kJob) == 0) continue;
    const Entry e = view(id, s);
    if (e.committed) note(e.commit_loc);
    for (const JobBatch& b : e.batches) note(b.loc);
  }
  for (auto& [seq, lr] : by_segment) std::sort(lr.offsets.begin(), lr.offsets.end());
}

void SpoolIndex::for_each_segment(const std::function<void(const SegmentInfo&)>& fn) const {
  for (const auto& [seq, s] : segments_) {
    fn(SegmentInfo{SegmentSeq(seq), s.quarantined, s.holds_finals_for});
  }
}

void SpoolIndex::restore_segment(SegmentSeq seq, bool quarantined,
                                 std::vector<std::uint64_t> holds) {
  Segment& s = segments_[seq.value()];
  s.quarantined = quarantined;
  s.holds_finals_for = std::move(holds);
}

bool SpoolIndex::restore(MessageId id, const Entry& e) {
  const auto known = [&](const Location& l) {
    return l.segment.value() <= PackedLocation::kMaxSegment &&
           l.offset <= PackedLocation::kMaxOffset && segments_.contains(l.segment.value());
  };
  constexpr auto kLastState = static_cast<std::uint8_t>(RecipientState::Deferred);
  const auto bad_state = [](std::uint8_t st) { return st > kLastState; };
  if (!e.committed || messages_.contains(id.value()) || e.state.empty() ||
      e.state.size() > UINT32_MAX || !known(e.loc) ||
      std::any_of(e.state.begin(), e.state.end(), bad_state)) {
    return false;
  }
  const auto live_in = [&](std::size_t first, std::size_t count) {
    const auto from = e.state.begin() + static_cast<std::ptrdiff_t>(first);
    const auto to = from + static_cast<std::ptrdiff_t>(count);
    return static_cast<std::uint32_t>(
        std::count_if(from, to, [](std::uint8_t st) { return !final_state(st); }));
  };
  const std::uint32_t live_count = live_in(0, e.state.size());
  if (live_count == 0) return false;  // an entry goes with its last live recipient
  const auto size = static_cast<std::uint32_t>(e.state.size());
  Slot s;
  s.loc = PackedLocation(e.loc);
  s.flags = kCommitted;
  if (!e.is_job) {
    if (size <= kInlineRecipients) {
      s.count = static_cast<std::uint8_t>(size);
      std::copy(e.state.begin(), e.state.end(), s.states.begin());
    } else {
      s.count = kWide;
      Wide& w = wide_[id.value()];
      w.live = live_count;
      w.size = size;
      w.states = std::make_unique<std::uint8_t[]>(size);
      std::copy(e.state.begin(), e.state.end(), w.states.get());
    }
    messages_.emplace(id.value(), s);
    change_live(e.loc.segment, live_count);
    live_recipients_ += live_count;
    return true;
  }
  // A job's batches cover its states in order; what lies between them (reclaimed batches)
  // and nothing after the last one.
  if (!known(e.commit_loc)) return false;
  std::uint64_t next = 0;
  for (const JobBatch& b : e.batches) {
    if (b.count == 0 || b.first < next || std::uint64_t{b.first} + b.count > size ||
        !known(b.loc) || live_in(next, b.first - next) != 0) {
      return false;
    }
    next = std::uint64_t{b.first} + b.count;
  }
  if (next != size) return false;
  s.count = kWide;
  s.flags |= kJob;
  Job& j = jobs_[id.value()];
  j.live = live_count;
  j.states.assign(e.state.begin(), e.state.end());
  j.commit_loc = e.commit_loc;
  j.batches.assign(e.batches.begin(), e.batches.end());
  for (const JobBatch& b : e.batches) change_live(b.loc.segment, live_in(b.first, b.count));
  messages_.emplace(id.value(), s);
  change_pins(e.loc.segment, 1);
  change_pins(e.commit_loc.segment, 1);
  live_recipients_ += live_count;
  return true;
}

void SpoolIndex::remove_segment(SegmentSeq seq) { segments_.erase(seq.value()); }

std::uint64_t SpoolIndex::segment_live(SegmentSeq seq) const {
  auto it = segments_.find(seq.value());
  return it == segments_.end() ? 0 : it->second.live;
}

}  // namespace salvo::spool
