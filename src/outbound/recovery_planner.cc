// SPDX-License-Identifier: Apache-2.0
// RecoveryPlanner and plan_recovery: what a recovered spool owes, read back from its
// records a slice at a time (see outbound.h).
#include <salvo/outbound/outbound.h>

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include <salvo/smtp/address.h>
#include <salvo/spool/records.h>

namespace salvo::outbound {
namespace {

bool pending(const spool::SpoolIndex::Entry& entry, std::uint32_t r) {
  return r < entry.state.size() &&
         !spool::is_final(static_cast<spool::RecipientState>(entry.state[r]));
}

bool by_recipient(const spool::PendingRecipient& a, const spool::PendingRecipient& b) {
  return std::tuple(a.message.value(), a.recipient.value()) <
         std::tuple(b.message.value(), b.recipient.value());
}

}  // namespace

RecoveryPlanner::RecoveryPlanner(const spool::RecoveryResult& recovered, std::string spool_dir)
    : dir_(std::move(spool_dir)) {
  // Deferred recipients: of messages kept sorted for next(); of jobs handed to their job (a
  // job is not expanded: its cursor looks them up when it reaches them).
  std::unordered_map<std::uint64_t, std::vector<RecoveredJob::Deferred>> job_deferred;
  for (const auto& p : recovered.deferred) {
    const auto e = recovered.index.find(p.message);
    if (e && e->is_job) {
      job_deferred[p.message.value()].push_back(
          {p.recipient.value(), p.attempts, p.next_attempt_unix_ns});
    } else {
      deferred_.push_back(p);
    }
  }
  if (!std::is_sorted(deferred_.begin(), deferred_.end(), by_recipient)) {
    std::sort(deferred_.begin(), deferred_.end(), by_recipient);
  }
  recovered.index.for_each([&](spool::MessageId id, const spool::SpoolIndex::Entry& entry) {
    if (entry.is_job) {
      if (!entry.committed) return;
      auto trec = spool::read_record(dir_, entry.loc);
      auto t = trec ? spool::decode_job_template(trec->raw.payload)
                    : Result<spool::JobTemplateRecord>(std::unexpected(trec.error()));
      if (!t) {
        ++unreadable_;
        return;
      }
      RecoveredJob& j = jobs_.emplace_back();
      j.id = id.value();
      j.received_unix_ns = t->received_unix_ns;
      if (auto d = job_deferred.find(id.value()); d != job_deferred.end()) {
        j.deferred = std::move(d->second);
      }
      return;
    }
    for (std::uint32_t r = 0; r < entry.state.size(); ++r) {
      if (!pending(entry, r)) continue;
      todo_[entry.loc.segment.value()].emplace_back(entry.loc);
      ++messages_left_;
      return;
    }
  });
  for (auto& [seg, locs] : todo_) {
    std::sort(locs.begin(), locs.end(), [](spool::PackedLocation a, spool::PackedLocation b) {
      return a.unpack().offset < b.unpack().offset;
    });
  }
}

bool RecoveryPlanner::next(std::size_t max_messages, std::vector<RecoveredRecipient>& out) {
  std::size_t n = 0;
  while (n < max_messages && !todo_.empty()) {
    auto& [seg, locs] = *todo_.begin();
    if (!open_) {
      auto f = spool::SegmentRecords::open(dir_, spool::SegmentSeq(seg));
      if (!f) {
        unreadable_ += locs.size() - pos_;
        messages_left_ -= locs.size() - pos_;
        n += locs.size() - pos_;
        todo_.erase(todo_.begin());
        pos_ = 0;
        continue;
      }
      open_.emplace(std::move(*f));
    }
    for (; n < max_messages && pos_ < locs.size(); ++n, ++pos_, --messages_left_) {
      read_message(*open_, locs[pos_], out);
    }
    if (pos_ == locs.size()) {
      todo_.erase(todo_.begin());  // its storage goes back as the read-back moves on
      open_.reset();
      pos_ = 0;
    }
  }
  return n > 0;
}

void RecoveryPlanner::read_message(const spool::SegmentRecords& seg, spool::PackedLocation loc,
                                   std::vector<RecoveredRecipient>& out) {
  auto rec = seg.read(loc.unpack());
  auto m = rec ? spool::decode_message(rec->raw.payload)
               : Result<spool::MessageRecord>(std::unexpected(rec.error()));
  if (!m) {
    ++unreadable_;
    return;
  }
  const std::uint64_t id = m->id.value();
  auto d = std::lower_bound(deferred_.begin(), deferred_.end(), id,
                            [](const spool::PendingRecipient& p, std::uint64_t v) {
                              return p.message.value() < v;
                            });
  for (std::uint32_t r = 0; r < m->recipients.size(); ++r) {
    RecoveredRecipient& o = out.emplace_back();
    o.message = id;
    o.recipient = r;
    o.record = loc;
    o.received_unix_ns = m->received_unix_ns;
    o.domain = smtp::domain_of(m->recipients[r].address);
    while (d != deferred_.end() && d->message.value() == id && d->recipient.value() < r) ++d;
    if (d != deferred_.end() && d->message.value() == id && d->recipient.value() == r) {
      o.attempts = d->attempts;
      o.next_attempt_unix_ns = d->next_attempt_unix_ns;
    }
  }
}

RecoveryPlan plan_recovery(const spool::RecoveryResult& recovered, const std::string& spool_dir,
                           const std::atomic<bool>* cancel) {
  RecoveryPlanner planner(recovered, spool_dir);
  RecoveryPlan plan;
  plan.jobs = planner.take_jobs();
  std::vector<RecoveredRecipient> slice;
  while (cancel == nullptr || !cancel->load(std::memory_order_relaxed)) {
    slice.clear();
    if (!planner.next(4096, slice)) break;
    for (RecoveredRecipient& r : slice) {
      const auto e = recovered.index.find(spool::MessageId(r.message));
      if (e && pending(*e, r.recipient)) plan.recipients.push_back(std::move(r));
    }
  }
  plan.unreadable = planner.unreadable();
  return plan;
}

}  // namespace salvo::outbound
