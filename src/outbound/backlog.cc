// SPDX-License-Identifier: Apache-2.0
// Backlog: a destination's waiting recipients and where their messages are.
#include "outbound/backlog.h"

#include <algorithm>
#include <utility>

#include <salvo/base/assert.h>

namespace salvo::outbound {

namespace {

// Chunks promote() reads per call and list (a pump or a tick): bounded IO per loop turn.
constexpr int kReadsPerPromote = 2;

SpillEntry entry_of_enqueue(const Enqueue& e) {
  SpillEntry s;
  s.message = e.message;
  s.recipient = e.recipient;
  s.attempts = e.attempts;
  s.next_attempt_unix_ns = e.next_attempt_unix_ns;
  s.received_unix_ns = e.received_unix_ns;
  s.origin = e.origin;
  s.index_in_record = e.index_in_record;
  s.record = spool::PackedLocation(e.record);
  if (e.is_job) s.job_template = spool::PackedLocation(e.job_template);
  s.is_job = e.is_job ? 1 : 0;
  return s;
}

}  // namespace

Backlog::~Backlog() {
  if (sp_ == nullptr || spill_ == nullptr || spill_->store == nullptr) return;
  for (const SpillChunk& c : sp_->ready_chunks) spill_->store->drop(c);
  for (const SpillChunk& c : sp_->later_chunks) spill_->store->drop(c);
}

Backlog::Spilled& Backlog::spilled_state() {
  if (!sp_) sp_ = std::make_unique<Spilled>();
  return *sp_;
}

queue::QueuedRecipient Backlog::hold(const SpillEntry& e) {
  Held& m = msgs_[e.message];
  if (m.refs == 0) {
    SALVO_CHECK(e.origin < (1u << 31));  // shard numbers
    m.origin = e.origin;
    m.is_job = e.is_job != 0 ? 1 : 0;
    m.received_unix_ns = e.received_unix_ns;
    if (e.is_job != 0) {
      jobs_[e.message].job_template = e.job_template.unpack();
    } else {
      m.record = e.record;
    }
  }
  if (e.is_job != 0) {
    jobs_[e.message].batches.emplace(e.recipient - e.index_in_record, e.record.unpack());
  }
  ++m.refs;
  queue::QueuedRecipient q;
  q.message = e.message;
  q.recipient = e.recipient;
  q.attempts = e.attempts;
  q.next_attempt = from_ns(e.next_attempt_unix_ns);
  return q;
}

void Backlog::add(const Enqueue& e, WallTime now) {
  const SpillEntry s = entry_of_enqueue(e);
  const WallTime due = from_ns(e.next_attempt_unix_ns);
  if (e.next_attempt_unix_ns == 0 || due <= now) {
    push_ready_entry(s);
  } else if (spill_ != nullptr && spill_->on() && due > now + spill_->horizon) {
    push_later(s);
  } else {
    queue_.push_deferred(hold(s));
  }
}

void Backlog::push_ready_entry(const SpillEntry& e) {
  if (spill_ != nullptr && spill_->on() &&
      (queue_.ready() >= spill_->in_memory ||
       (sp_ && (!sp_->ready_chunks.empty() || !sp_->tail.empty())))) {
    spilled_state().tail.push_back(e);
    if (sp_->tail.size() >= spill_->chunk()) spill_tail();
    return;
  }
  queue_.push_ready(hold(e));
}

void Backlog::push_later(const SpillEntry& e) {
  spilled_state().later.push_back(e);
  sp_->later_min = std::min(sp_->later_min, from_ns(e.next_attempt_unix_ns));
  if (sp_->later.size() >= spill_->chunk()) spill_later();
}

void Backlog::spill_tail() {
  std::vector<SpillEntry> entries = std::exchange(sp_->tail, {});
  if (auto c = spill_->store->write(entries)) {
    sp_->ready_chunks.push_back(*c);
    sp_->ready_on_disk += c->count;
    return;
  }
  for (const SpillEntry& e : entries) queue_.push_ready(hold(e));  // the disk refused them
}

void Backlog::spill_later() {
  std::vector<SpillEntry> entries = std::exchange(sp_->later, {});
  if (auto c = spill_->store->write(entries)) {
    sp_->later_chunks.push_back(*c);
    sp_->later_on_disk += c->count;
  } else {
    for (const SpillEntry& e : entries) queue_.push_deferred(hold(e));
  }
  refresh_later_min();
}

void Backlog::refresh_later_min() noexcept {
  sp_->later_min = WallTime::max();
  for (const SpillChunk& c : sp_->later_chunks) sp_->later_min = std::min(sp_->later_min, c.earliest);
  for (const SpillEntry& e : sp_->later) {
    sp_->later_min = std::min(sp_->later_min, from_ns(e.next_attempt_unix_ns));
  }
}

void Backlog::bring_back(const SpillEntry& e, bool ready) {
  const queue::QueuedRecipient q = hold(e);
  if (!sp_->cancelled.empty() && sp_->cancelled.contains(e.message)) {
    sp_->cancelled_back.push_back(q);
  } else if (ready) {
    queue_.push_ready(q);
  } else {
    queue_.push_deferred(q);
  }
}

void Backlog::read_ready_chunk() {
  const SpillChunk c = sp_->ready_chunks.front();
  sp_->ready_chunks.pop_front();
  sp_->ready_on_disk -= c.count;
  auto entries = spill_->store->read(c);
  if (!entries) return;  // logged; the spool still has them for the next start
  for (const SpillEntry& e : *entries) bring_back(e, true);
}

bool Backlog::read_later_chunk(WallTime edge) {
  auto first = std::min_element(sp_->later_chunks.begin(), sp_->later_chunks.end(),
                                [](const SpillChunk& a, const SpillChunk& b) {
                                  return a.earliest < b.earliest;
                                });
  if (first == sp_->later_chunks.end() || first->earliest > edge) return false;
  const SpillChunk c = *first;
  sp_->later_chunks.erase(first);
  sp_->later_on_disk -= c.count;
  auto entries = spill_->store->read(c);
  if (entries) {
    for (const SpillEntry& e : *entries) {
      if (from_ns(e.next_attempt_unix_ns) <= edge) {
        bring_back(e, false);
      } else {
        push_later(e);  // still beyond the horizon
      }
    }
  }
  refresh_later_min();
  return true;
}

void Backlog::promote(WallTime now) {
  if (spill_ == nullptr || sp_ == nullptr) {
    queue_.promote(now);
    return;
  }
  {
    const WallTime edge = now + spill_->horizon;
    for (int i = 0; i < kReadsPerPromote && sp_->later_min <= edge; ++i) {
      if (!read_later_chunk(edge)) break;
    }
    if (!sp_->later.empty() && sp_->later_min <= edge) {
      std::vector<SpillEntry> keep;
      for (const SpillEntry& e : sp_->later) {
        if (from_ns(e.next_attempt_unix_ns) <= edge) {
          bring_back(e, false);
        } else {
          keep.push_back(e);
        }
      }
      sp_->later = std::move(keep);
      refresh_later_min();
    }
  }
  queue_.promote(now);
  {
    const std::size_t low = std::max<std::size_t>(spill_->low_water(), 1);
    for (int i = 0; i < kReadsPerPromote && queue_.ready() < low; ++i) {
      if (!sp_->ready_chunks.empty()) {
        read_ready_chunk();
        continue;
      }
      for (const SpillEntry& e : std::exchange(sp_->tail, {})) bring_back(e, true);
      break;
    }
  }
  if (!sp_->has_chunks()) sp_->cancelled.clear();
  if (sp_->empty()) sp_.reset();
}

bool Backlog::promote_wanted(WallTime now) const noexcept {
  if (spill_ == nullptr || sp_ == nullptr) return false;
  if (sp_->later_min != WallTime::max() && sp_->later_min - spill_->horizon <= now) return true;
  return queue_.ready() < std::max<std::size_t>(spill_->low_water(), 1) &&
         (!sp_->ready_chunks.empty() || !sp_->tail.empty());
}

WallTime Backlog::next_due() const noexcept {
  WallTime t = queue_.next_due();
  if (spill_ != nullptr && sp_ != nullptr && sp_->later_min != WallTime::max()) {
    t = std::min(t, sp_->later_min - spill_->horizon);
  }
  return t;
}

std::vector<queue::QueuedRecipient> Backlog::take_cancelled() {
  if (sp_ == nullptr) return {};
  return std::exchange(sp_->cancelled_back, {});
}

std::optional<SpillEntry> Backlog::entry_of(const queue::QueuedRecipient& q) const {
  const std::optional<MsgInfo> m = info(q.message, q.recipient);
  if (!m) return std::nullopt;
  SpillEntry s;
  s.message = q.message;
  s.recipient = q.recipient;
  s.attempts = q.attempts;
  s.next_attempt_unix_ns = to_ns(q.next_attempt);
  s.received_unix_ns = m->received_unix_ns;
  s.origin = m->origin;
  s.is_job = m->is_job ? 1 : 0;
  if (m->is_job) {
    if (m->batches.empty()) return std::nullopt;
    s.record = spool::PackedLocation(m->batches.begin()->second);
    s.index_in_record = q.recipient - m->batches.begin()->first;
    s.job_template = spool::PackedLocation(m->job_template);
  } else {
    s.record = spool::PackedLocation(m->record);
    s.index_in_record = q.recipient;
  }
  return s;
}

void Backlog::defer(const queue::QueuedRecipient& r, WallTime now) {
  if (spill_ != nullptr && spill_->on() && r.next_attempt > now + spill_->horizon) {
    if (const std::optional<SpillEntry> e = entry_of(r)) {
      push_later(*e);
      release(r.message);  // this recipient no longer holds its message here
      return;
    }
  }
  queue_.push_deferred(r);
}

std::vector<queue::QueuedRecipient> Backlog::extract(std::uint64_t message) {
  std::vector<queue::QueuedRecipient> out = queue_.extract(message);
  if (sp_ == nullptr) return out;
  const auto take = [&](std::vector<SpillEntry>& from) {
    std::erase_if(from, [&](const SpillEntry& e) {
      if (e.message != message) return false;
      out.push_back(hold(e));
      return true;
    });
  };
  take(sp_->tail);
  take(sp_->later);
  refresh_later_min();
  if (sp_->has_chunks()) sp_->cancelled.insert(message);
  return out;
}

std::size_t Backlog::flush_deferred() {
  std::size_t n = queue_.flush_deferred();
  if (sp_ == nullptr) return n;
  n += sp_->later.size() + sp_->later_on_disk;
  for (const SpillEntry& e : std::exchange(sp_->later, {})) push_ready_entry(e);
  // On disk they stay where they are, as ready chunks: read back in turn, due at once.
  for (const SpillChunk& c : sp_->later_chunks) sp_->ready_chunks.push_back(c);
  sp_->ready_on_disk += sp_->later_on_disk;
  sp_->later_on_disk = 0;
  sp_->later_chunks.clear();
  sp_->later_min = WallTime::max();
  return n;
}

MsgInfo Backlog::expand(std::uint64_t message, const Held& h) const {
  MsgInfo m;
  m.origin = h.origin;
  m.is_job = h.is_job != 0;
  m.received_unix_ns = h.received_unix_ns;
  m.refs = h.refs;
  if (m.is_job) {
    if (auto j = jobs_.find(message); j != jobs_.end()) m.job_template = j->second.job_template;
  } else {
    m.record = h.record.unpack();
  }
  return m;
}

std::optional<MsgInfo> Backlog::info(std::uint64_t message, std::uint32_t recipient) const {
  auto it = msgs_.find(message);
  if (it == msgs_.end()) return std::nullopt;
  MsgInfo m = expand(message, it->second);
  if (m.is_job) {
    if (auto j = jobs_.find(message); j != jobs_.end()) {
      auto b = j->second.batches.upper_bound(recipient);
      if (b != j->second.batches.begin()) m.batches.emplace(*std::prev(b));
    }
  }
  return m;
}

std::optional<MsgInfo> Backlog::peek() noexcept {
  for (;;) {
    const std::optional<queue::QueuedRecipient> head = queue_.peek_ready();
    if (!head) return std::nullopt;
    if (auto it = msgs_.find(head->message); it != msgs_.end()) {
      return expand(head->message, it->second);
    }
    SALVO_BUG("outbound: a queued recipient without its message info");
    (void)queue_.take_transaction(1);  // it stays in the spool: the next start routes it
  }
}

Batch Backlog::take(std::size_t max_recipients) {
  Batch b;
  const std::optional<MsgInfo> m = peek();
  if (!m) return b;
  if (m->is_job) max_recipients = 1;
  b.rcpts = queue_.take_transaction(max_recipients);
  b.info = *info(b.rcpts.front().message, b.rcpts.front().recipient);
  return b;
}

void Backlog::requeue(const std::vector<queue::QueuedRecipient>& rcpts) {
  for (const auto& q : rcpts) queue_.push_ready(q);
}

void Backlog::release(std::uint64_t message) {
  auto it = msgs_.find(message);
  if (it == msgs_.end() || --it->second.refs != 0) return;
  if (it->second.is_job != 0) jobs_.erase(message);
  msgs_.erase(it);
}

Enqueue Backlog::enqueue_of(const SpillEntry& s) const {
  Enqueue e;
  e.origin = s.origin;
  e.message = s.message;
  e.recipient = s.recipient;
  e.record = s.record.unpack();
  e.index_in_record = s.index_in_record;
  e.is_job = s.is_job != 0;
  if (e.is_job) e.job_template = s.job_template.unpack();
  e.received_unix_ns = s.received_unix_ns;
  e.attempts = s.attempts;
  e.next_attempt_unix_ns = s.next_attempt_unix_ns;
  return e;
}

std::vector<Enqueue> Backlog::drain_to(std::string_view domain, std::string_view key,
                                       WallTime now) {
  std::vector<Enqueue> out;
  for (const queue::QueuedRecipient& q : queue_.take_all()) {
    std::optional<SpillEntry> s = entry_of(q);
    if (!s) {
      SALVO_BUG("outbound: a queued recipient without its message info");
      continue;  // it stays in the spool: the next start routes it
    }
    Enqueue e = enqueue_of(*s);
    e.next_attempt_unix_ns = q.attempts != 0 && q.next_attempt > now ? to_ns(q.next_attempt) : 0;
    e.domain = std::string(domain);
    e.key = std::string(key);
    release(q.message);
    out.push_back(std::move(e));
  }
  if (sp_ == nullptr) return out;
  // The buffers go too (nothing of theirs is held here); chunks on disk follow as they are
  // read back.
  for (std::vector<SpillEntry>* from : {&sp_->tail, &sp_->later}) {
    for (const SpillEntry& s : std::exchange(*from, {})) {
      Enqueue e = enqueue_of(s);
      e.domain = std::string(domain);
      e.key = std::string(key);
      out.push_back(std::move(e));
    }
  }
  refresh_later_min();
  return out;
}

}  // namespace salvo::outbound
