// SPDX-License-Identifier: Apache-2.0
// Backlog: a destination's waiting recipients and where their messages are.
#include "outbound/backlog.h"

#include <salvo/base/assert.h>

namespace salvo::outbound {

void Backlog::add(const Enqueue& e, WallTime now) {
  Held& m = msgs_[e.message];
  if (m.refs == 0) {
    SALVO_CHECK(e.origin < (1u << 31));  // shard numbers
    m.origin = e.origin;
    m.is_job = e.is_job ? 1 : 0;
    m.received_unix_ns = e.received_unix_ns;
    if (e.is_job) {
      jobs_[e.message].job_template = e.job_template;
    } else {
      m.record = spool::PackedLocation(e.record);
    }
  }
  if (e.is_job) jobs_[e.message].batches.emplace(e.recipient - e.index_in_record, e.record);
  ++m.refs;
  queue::QueuedRecipient q;
  q.message = e.message;
  q.recipient = e.recipient;
  q.attempts = e.attempts;
  q.next_attempt = from_ns(e.next_attempt_unix_ns);
  if (e.next_attempt_unix_ns != 0 && q.next_attempt > now) {
    queue_.push_deferred(q);
  } else {
    queue_.push_ready(q);
  }
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

std::vector<Enqueue> Backlog::drain_to(std::string_view domain, std::string_view key,
                                       WallTime now) {
  std::vector<Enqueue> out;
  for (const queue::QueuedRecipient& q : queue_.take_all()) {
    const std::optional<MsgInfo> m = info(q.message, q.recipient);
    if (!m) {
      SALVO_BUG("outbound: a queued recipient without its message info");
      continue;  // it stays in the spool: the next start routes it
    }
    Enqueue e;
    e.origin = m->origin;
    e.message = q.message;
    e.recipient = q.recipient;
    e.is_job = m->is_job;
    e.received_unix_ns = m->received_unix_ns;
    e.attempts = q.attempts;
    if (q.attempts != 0 && q.next_attempt > now) e.next_attempt_unix_ns = to_ns(q.next_attempt);
    bool located = true;
    if (m->is_job) {
      e.job_template = m->job_template;
      located = !m->batches.empty();
      if (located) {
        e.record = m->batches.begin()->second;
        e.index_in_record = q.recipient - m->batches.begin()->first;
      } else {
        SALVO_BUG("outbound: a job recipient without its batch");
      }
    } else {
      e.record = m->record;
      e.index_in_record = q.recipient;
    }
    e.domain = std::string(domain);
    e.key = std::string(key);
    release(q.message);
    if (located) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace salvo::outbound
