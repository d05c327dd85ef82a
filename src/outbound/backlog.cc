// SPDX-License-Identifier: Apache-2.0
// Backlog: a destination's waiting recipients and where their messages are.
#include "outbound/backlog.h"

#include <salvo/base/assert.h>

namespace salvo::outbound {

void Backlog::add(const Enqueue& e, WallTime now) {
  MsgInfo& m = msgs_[e.message];
  if (m.refs == 0) {
    m.origin = e.origin;
    m.is_job = e.is_job;
    m.received_unix_ns = e.received_unix_ns;
    if (e.is_job) {
      m.job_template = e.job_template;
    } else {
      m.record = e.record;
    }
  }
  if (e.is_job) m.batches.emplace(e.recipient - e.index_in_record, e.record);
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

const MsgInfo* Backlog::info(std::uint64_t message) const {
  auto it = msgs_.find(message);
  return it == msgs_.end() ? nullptr : &it->second;
}

const MsgInfo* Backlog::peek() noexcept {
  for (;;) {
    const queue::QueuedRecipient* head = queue_.peek_ready();
    if (head == nullptr) return nullptr;
    if (const MsgInfo* m = info(head->message)) return m;
    SALVO_BUG("outbound: a queued recipient without its message info");
    (void)queue_.take_transaction(1);  // it stays in the spool: the next start routes it
  }
}

Batch Backlog::take(std::size_t max_recipients) {
  Batch b;
  const MsgInfo* m = peek();
  if (m == nullptr) return b;
  if (m->is_job) max_recipients = 1;
  b.rcpts = queue_.take_transaction(max_recipients);
  b.info.origin = m->origin;
  b.info.is_job = m->is_job;
  b.info.record = m->record;
  b.info.job_template = m->job_template;
  b.info.received_unix_ns = m->received_unix_ns;
  if (m->is_job) {
    auto it = m->batches.upper_bound(b.rcpts.front().recipient);
    if (it != m->batches.begin()) b.info.batches.emplace(*std::prev(it));
  }
  return b;
}

void Backlog::requeue(const std::vector<queue::QueuedRecipient>& rcpts) {
  for (const auto& q : rcpts) queue_.push_ready(q);
}

void Backlog::release(std::uint64_t message) {
  auto it = msgs_.find(message);
  if (it != msgs_.end() && --it->second.refs == 0) msgs_.erase(it);
}

std::vector<Enqueue> Backlog::drain_to(std::string_view domain, std::string_view key,
                                       WallTime now) {
  std::vector<Enqueue> out;
  queue_.flush_deferred();
  for (;;) {
    auto batch = queue_.take_transaction(1000);
    if (batch.empty()) break;
    for (const auto& q : batch) {
      auto it = msgs_.find(q.message);
      if (it == msgs_.end()) {
        SALVO_BUG("outbound: a queued recipient without its message info");
        continue;  // it stays in the spool: the next start routes it
      }
      const MsgInfo& m = it->second;
      Enqueue e;
      e.origin = m.origin;
      e.message = q.message;
      e.recipient = q.recipient;
      e.is_job = m.is_job;
      e.received_unix_ns = m.received_unix_ns;
      e.attempts = q.attempts;
      if (q.attempts != 0 && q.next_attempt > now) e.next_attempt_unix_ns = to_ns(q.next_attempt);
      bool located = true;
      if (m.is_job) {
        e.job_template = m.job_template;
        auto b = m.batches.upper_bound(q.recipient);
        located = b != m.batches.begin();
        if (located) {
          --b;
          e.record = b->second;
          e.index_in_record = q.recipient - b->first;
        } else {
          SALVO_BUG("outbound: a job recipient without its batch");
        }
      } else {
        e.record = m.record;
        e.index_in_record = q.recipient;
      }
      e.domain = std::string(domain);
      e.key = std::string(key);
      release(q.message);
      if (located) out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace salvo::outbound
