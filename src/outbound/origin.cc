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
                      std::int64_t next_attempt_unix_ns) noexcept {
  Enqueue e;
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

namespace {

// The spool's record of a deferred recipient, by message and index.
using DeferredMap =
    std::unordered_map<std::uint64_t,
                       std::unordered_map<std::uint32_t, const spool::PendingRecipient*>>;

}  // namespace

void Origin::recover(std::span<const RecoveredRecipient> recipients) noexcept {
  for (const RecoveredRecipient& r : recipients) {
    dispatch(r.message, r.recipient, r.ref, r.received_unix_ns, r.domain, r.attempts,
             r.next_attempt_unix_ns);
  }
}

void Origin::recovery_unreadable(std::uint64_t records, const std::string& spool_dir) noexcept {
  if (records == 0) return;
  stats_.read_errors += records;
  log::error("outbound: {}: {} spool records could not be read back; their recipients "
             "wait for the next start", spool_dir, records);
}

RecoveryPlan plan_recovery(const spool::RecoveryResult& recovered, const std::string& spool_dir,
                           const std::atomic<bool>* cancel) {
  DeferredMap deferred;
  for (const auto& p : recovered.deferred) deferred[p.message.value()][p.recipient.value()] = &p;
  RecoveryPlan plan;
  plan.recipients.reserve(recovered.index.live_recipients());
  auto make = [&](std::uint64_t id, std::uint32_t r, spool::Location rec, std::uint32_t in_rec,
                  std::optional<spool::Location> tpl, std::int64_t received,
                  std::string_view address) {
    RecoveredRecipient& out = plan.recipients.emplace_back();
    out.message = id;
    out.recipient = r;
    out.ref = spool::SpoolIndex::RecipientRef{rec, in_rec, tpl};
    out.received_unix_ns = received;
    out.domain = smtp::domain_of(address);
    if (auto m = deferred.find(id); m != deferred.end()) {
      if (auto p = m->second.find(r); p != m->second.end()) {
        out.attempts = p->second->attempts;
        out.next_attempt_unix_ns = p->second->next_attempt_unix_ns;
      }
    }
  };
  auto pending = [](const spool::SpoolIndex::Entry& entry, std::uint32_t r) {
    return r < entry.state.size() &&
           !spool::is_final(static_cast<spool::RecipientState>(entry.state[r]));
  };
  std::uint64_t& unreadable = plan.unreadable;
  recovered.index.for_each([&](spool::MessageId id, const spool::SpoolIndex::Entry& entry) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return;
    if (entry.is_job && !entry.committed) return;
    if (!entry.is_job) {
      auto rec = spool::read_record(spool_dir, entry.loc);
      auto m = rec ? spool::decode_message(rec->raw.payload)
                   : Result<spool::MessageRecord>(std::unexpected(rec.error()));
      if (!m) {
        ++unreadable;
        return;
      }
      for (std::uint32_t r = 0; r < m->recipients.size(); ++r) {
        if (pending(entry, r)) {
          make(id.value(), r, entry.loc, r, std::nullopt, m->received_unix_ns,
               m->recipients[r].address);
        }
      }
      return;
    }
    auto trec = spool::read_record(spool_dir, entry.loc);
    auto t = trec ? spool::decode_job_template(trec->raw.payload)
                  : Result<spool::JobTemplateRecord>(std::unexpected(trec.error()));
    if (!t) {
      ++unreadable;
      return;
    }
    for (const auto& b : entry.batches) {
      auto brec = spool::read_record(spool_dir, b.loc);
      auto batch = brec ? spool::decode_job_recipients(brec->raw.payload)
                        : Result<spool::JobRecipientsRecord>(std::unexpected(brec.error()));
      if (!batch) {
        ++unreadable;
        continue;
      }
      for (std::uint32_t k = 0; k < batch->recipients.size(); ++k) {
        const std::uint32_t r = batch->first_index + k;
        if (r >= entry.state.size()) break;
        if (pending(entry, r)) {
          make(id.value(), r, b.loc, k, entry.loc, t->received_unix_ns,
               batch->recipients[k].address);
        }
      }
    }
  });
  return plan;
}


}  // namespace salvo::outbound
