// SPDX-License-Identifier: Apache-2.0
// Origin: dispatch of committed recipients, recovery, and durable outcomes with DSNs.
#include "outbound/origin.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/base/log.h>
#include <salvo/smtp/address.h>
#include <salvo/spool/errc.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::outbound {

// Waits for a DSN's commit; then the recipient states that caused it are written and the
// DSN is dispatched. If the DSN cannot be queued, bounces and expiries are written as
// deferred (a delivered recipient stays delivered: the server said 250).
class DsnCommit final : public spool::CommitWaiter {
 public:
  DsnCommit(Origin& o, std::uint64_t original, std::string to, std::int64_t received,
            std::vector<spool::StateUpdate> states)
      : o_(o), original_(original), to_(std::move(to)), received_(received),
        states_(std::move(states)) {}
  spool::MessageId id{};

  void write_states(bool dsn_queued) noexcept {
    if (!dsn_queued) {
      const std::int64_t next =
          received_ +
          std::chrono::duration_cast<std::chrono::nanoseconds>(o_.d_.first_retry()).count();
      for (auto& u : states_) {
        if (u.state == spool::RecipientState::Bounced ||
            u.state == spool::RecipientState::Expired) {
          u.state = spool::RecipientState::Deferred;
          u.next_attempt_unix_ns = next;
        }
      }
    }
    o_.write_states(original_, states_);
  }

  void on_committed(Status status) noexcept override {
    --o_.dsn_commits_;
    if (!o_.stopped_) write_states(static_cast<bool>(status));
    if (status && !o_.stopped_) {
      ++o_.stats_.dsns;
      if (o_.d_.accounting != nullptr) {
        const std::string oid = spool::format_id(original_);
        const std::string did = spool::format_id(id.value());
        accounting::Event ev;
        ev.type = accounting::EventType::Dsn;
        ev.ts_unix_ns = received_;
        ev.id = oid;
        ev.rcpt = to_;
        ev.response = did;  // the DSN's own message id
        ev.source = "dsn";
        o_.d_.accounting->append(ev);
      }
      std::string_view rcpt = to_;
      o_.queued(id, received_, 0, std::span<const std::string_view>(&rcpt, 1));
    } else if (!status) {
      log::warn("outbound: DSN for message {} not queued: {}", spool::format_id(original_),
                status.error().message());
    }
    delete this;
  }

 private:
  Origin& o_;
  std::uint64_t original_;
  std::string to_;
  std::int64_t received_;
  std::vector<spool::StateUpdate> states_;
};

void Origin::dispatch(std::uint64_t id, std::uint32_t recipient,
                      const spool::SpoolIndex::RecipientRef& ref, std::int64_t received_unix_ns,
                      std::string domain, std::uint32_t attempts,
                      std::int64_t next_attempt_unix_ns, bool cancelled) noexcept {
  Enqueue e;
  e.cancelled = cancelled;
  e.origin = d_.me;
  e.message = id;
  e.recipient = recipient;
  e.record = ref.record;
  e.index_in_record = ref.index_in_record;
  if (ref.job_template) {
    e.is_job = true;
    e.job_template = *ref.job_template;
  }
  e.received_unix_ns = received_unix_ns;
  e.attempts = attempts;
  e.next_attempt_unix_ns = next_attempt_unix_ns;
  e.domain = std::move(domain);
  // A recipient without a domain (RCPT TO:<postmaster>) is this host's, as Postfix
  // appends $myorigin: it goes where [node] hostname routes.
  if (e.domain.empty()) e.domain = smtp::normalize_domain(d_.hostname);
  ++stats_.dispatched;
  d_.route(std::move(e));
}

void Origin::queued(spool::MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
                    std::span<const std::string_view> addresses) noexcept {
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const auto r = static_cast<std::uint32_t>(first + i);
    auto ref = d_.index->recipient(id, spool::RecipientIndex(r));
    if (!ref) {
      SALVO_BUG("outbound: a queued recipient the spool index does not know");
      continue;
    }
    dispatch(id.value(), r, *ref, received_unix_ns, smtp::domain_of(addresses[i]), 0, 0);
  }
}

void Origin::write_states(std::uint64_t message,
                          std::span<const spool::StateUpdate> states) noexcept {
  if (states.empty()) return;
  if (auto st = d_.writer->append_states(states, nullptr); !st) {
    ++stats_.state_errors;
    log::error("outbound: message {}: recipient states not written: {}",
               spool::format_id(message), st.error().message());
  }
}

void Origin::on_outcomes(Outcomes&& o) noexcept {
  const bool freed = settle_job(o);
  record_outcomes(std::move(o));
  if (freed) pump_jobs();
}

void Origin::record_outcomes(Outcomes&& o) noexcept {
  std::vector<spool::StateUpdate> updates;
  updates.reserve(o.recipients.size());
  for (const auto& r : o.recipients) {
    spool::StateUpdate u;
    u.message = spool::MessageId(o.message);
    u.recipient = spool::RecipientIndex(r.recipient);
    u.state = r.state;
    u.attempts = r.attempts;
    u.next_attempt_unix_ns = r.next_attempt_unix_ns;
    updates.push_back(u);
  }
  if (o.dsn.empty() || o.dsn_to.empty()) {
    write_states(o.message, updates);
    return;
  }
  // The DSN is committed before the final states that caused it are written. A DSN about
  // non-final states only (a delay notice) does not hold them back: a later outcome of
  // the same recipient must never be overwritten by this one.
  const bool has_final = std::any_of(updates.begin(), updates.end(),
                                     [](const auto& u) { return spool::is_final(u.state); });
  if (!has_final) {
    write_states(o.message, updates);
    updates.clear();
  }
  queue_dsn(std::move(o), std::move(updates));
}

void Origin::queue_dsn(Outcomes&& o, std::vector<spool::StateUpdate> states) noexcept {
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  d_.clock->wall_now().time_since_epoch())
                                  .count();
  spool::MessageRecord m;
  m.received_unix_ns = now_ns;
  m.source = spool::Source::Dsn;
  m.flags = static_cast<std::uint8_t>((o.dsn_8bit ? spool::kFlag8BitMime : 0) |
                                      (o.dsn_smtputf8 ? spool::kFlagSmtpUtf8 : 0));
  m.reverse_path = "";
  m.recipients.push_back(spool::Recipient{o.dsn_to, 0, {}});
  m.body = o.dsn;
  auto* w = new DsnCommit(*this, o.message, o.dsn_to, now_ns, std::move(states));
  auto id = d_.writer->append_message(m, w);
  if (!id) {
    log::warn("outbound: DSN for message {} not queued: {}", spool::format_id(o.message),
              id.error().message());
    w->write_states(false);
    delete w;
    return;
  }
  w->id = *id;
  ++dsn_commits_;
}


// --- Bulk jobs: a cursor per job, a window per shard ----------------------------------

void Origin::job_queued(spool::MessageId id, std::int64_t received_unix_ns) noexcept {
  add_job(id.value(), received_unix_ns, {});
  pump_jobs();
}

void Origin::recover_jobs(std::vector<RecoveredJob>&& jobs) noexcept {
  for (const RecoveredJob& j : jobs) add_job(j.id, j.received_unix_ns, j.deferred);
  jobs = {};
  pump_jobs();
}

void Origin::add_job(std::uint64_t id, std::int64_t received_unix_ns,
                     const std::vector<RecoveredJob::Deferred>& deferred) noexcept {
  auto [it, added] = jobs_.try_emplace(id);
  if (!added) {
    SALVO_BUG("outbound: a job handed to delivery twice");
    return;
  }
  it->second = std::make_unique<JobCursor>();
  JobCursor& c = *it->second;
  c.self = this;
  c.id = id;
  c.received_unix_ns = received_unix_ns;
  c.deferred.reserve(deferred.size());
  for (const auto& d : deferred) {
    c.deferred.emplace(d.recipient, std::make_pair(d.attempts, d.next_attempt_unix_ns));
  }
}

// Serves the jobs in turn while the window has room: each turn dispatches one recipient
// of one job (or starts reading its next batch). Bounded: every pass either dispatches
// (at most the window's room), or passes over a job that cannot go on (at most all jobs
// in a row), or ends a job.
void Origin::pump_jobs() noexcept {
  if (pumping_ || stopped_ || stopping_) return;
  pumping_ = true;
  const std::size_t window = d_.job_window ? d_.job_window() : 1;
  std::size_t passed = 0;  // jobs in a row that could not dispatch
  while (in_flight_ < window && passed < jobs_.size()) {
    auto it = jobs_.upper_bound(turn_);
    if (it == jobs_.end()) it = jobs_.begin();
    turn_ = it->first;
    JobCursor& c = *it->second;
    if (step(c)) {
      passed = 0;
    } else if (c.done && c.in_flight == 0) {
      jobs_.erase(it);
    } else {
      ++passed;
    }
  }
  pumping_ = false;
}

// Dispatches the cursor's next recipient that is not final (true); or, at the end of its
// batch, starts reading the next one, or finds the job at its end (false).
bool Origin::step(JobCursor& c) noexcept {
  if (c.reading || c.done) return false;
  // A view into the index: nothing below changes the index (states are applied when their
  // commit completes, never inside a dispatch).
  const auto e = d_.index->find(spool::MessageId(c.id));
  if (!e) {  // every recipient is final: the index let the job go
    c.done = true;
    c.domains = {};
    return false;
  }
  while (c.next_in_batch < c.domains.size()) {
    const std::uint32_t k = c.next_in_batch++;
    const std::uint32_t r = c.first + k;
    c.next_recipient = r + 1;
    if (r >= e->state.size() ||
        spool::is_final(static_cast<spool::RecipientState>(e->state[r]))) {
      continue;  // done before a restart, or by an operator
    }
    std::uint32_t attempts = 0;
    std::int64_t next_attempt = 0;
    if (auto d = c.deferred.find(r); d != c.deferred.end()) {
      attempts = d->second.first;
      next_attempt = d->second.second;
      c.deferred.erase(d);
    }
    ++c.in_flight;
    ++in_flight_;
    const spool::SpoolIndex::RecipientRef ref{c.batch, k, e->loc};
    dispatch(c.id, r, ref, c.received_unix_ns, std::move(c.domains[k]), attempts,
             next_attempt, c.cancelled);
    return true;
  }
  c.domains = {};
  if (c.next_batch >= e->batches.size()) {
    c.done = true;
    c.deferred = {};
    return false;
  }
  c.batch = e->batches[c.next_batch].loc;
  c.first = e->batches[c.next_batch].first;
  ++c.next_batch;
  c.reading = true;
  ++reads_;
  d_.read(c.batch, &c);
  return false;
}

void Origin::on_batch(JobCursor& c, Result<spool::RawRecord> rec) noexcept {
  c.reading = false;
  --reads_;
  if (stopped_) return;
  auto b = rec ? spool::decode_job_recipients(rec->payload)
               : Result<spool::JobRecipientsRecord>(std::unexpected(rec.error()));
  if (b && b->first_index != c.first) b = fail(spool::errc::malformed_record);
  if (!b) {
    // Its recipients stay pending in the spool: the next start tries again.
    ++stats_.read_errors;
    log::error("outbound: job {}: recipients {}.. not read back: {}; they wait for the next "
               "start", spool::format_id(c.id), c.first, b.error().message());
  } else {
    c.domains.reserve(b->recipients.size());
    for (const auto& r : b->recipients) c.domains.push_back(smtp::domain_of(r.address));
  }
  c.next_in_batch = 0;
  c.next_recipient = c.first;
  pump_jobs();
}

bool Origin::settle_job(const Outcomes& o) noexcept {
  if (jobs_.empty()) return false;
  auto it = jobs_.find(o.message);
  if (it == jobs_.end()) return false;
  JobCursor& c = *it->second;
  bool freed = false;
  for (const auto& r : o.recipients) {
    if (!spool::is_final(r.state) || c.in_flight == 0) continue;
    --c.in_flight;
    --in_flight_;
    freed = true;
  }
  if (c.done && c.in_flight == 0) jobs_.erase(it);
  return freed;
}

std::size_t Origin::cancel_job(std::uint64_t id) noexcept {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return 0;
  JobCursor& c = *it->second;
  c.cancelled = true;
  const auto e = d_.index->find(spool::MessageId(id));
  if (!e || c.done) return 0;
  std::size_t n = 0;
  for (std::size_t r = c.next_recipient; r < e->state.size(); ++r) {
    n += spool::is_final(static_cast<spool::RecipientState>(e->state[r])) ? 0 : 1;
  }
  return n;
}

bool Origin::recover(const RecoveredRecipient& r) noexcept {
  // The live index says whether it is still owed: read back after the scan, the recipient
  // may be final by now (bounce --id), and new mail may hold the id (a clash).
  const auto e = d_.index->find(spool::MessageId(r.message));
  if (!e || e->is_job || spool::PackedLocation(e->loc) != r.record ||
      r.recipient >= e->state.size() ||
      spool::is_final(static_cast<spool::RecipientState>(e->state[r.recipient]))) {
    return false;
  }
  const spool::SpoolIndex::RecipientRef ref{r.record.unpack(), r.recipient, std::nullopt};
  dispatch(r.message, r.recipient, ref, r.received_unix_ns, r.domain, r.attempts,
           r.next_attempt_unix_ns);
  return true;
}

void Origin::recovery_unreadable(std::uint64_t records, const std::string& spool_dir) noexcept {
  if (records == 0) return;
  stats_.read_errors += records;
  log::error("outbound: {}: {} spool records could not be read back; their recipients "
             "wait for the next start", spool_dir, records);
}

}  // namespace salvo::outbound
