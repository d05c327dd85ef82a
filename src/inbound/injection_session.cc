// SPDX-License-Identifier: Apache-2.0
// InjectionSession: ServerSession driver, relay/AUTH/space policy, and the 250-after-commit
// hand-off to the shard's SpoolWriter (250 only after the batch's fdatasync).
#include "inbound/injection_session.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include <salvo/accounting/accounting.h>
#include <salvo/inbound/auth_budget.h>
#include <salvo/inbound/auth_users.h>
#include <salvo/inbound/client_limiter.h>
#include <salvo/spool/dispatch.h>

#include "inbound/message_builder.h"

namespace salvo::inbound {
namespace {

// Output not yet written beyond this: stop reading until it drains (docs/reliability.md D7).
constexpr std::size_t kOutputHighWater = 256 * 1024;
// The per-listener record scratch keeps at most this much capacity between messages.
constexpr std::size_t kKeepScratch = 1 << 20;

}  // namespace

InjectionSession::InjectionSession(InjectionListener& listener, net::Connection& conn,
                                   const config::IpAddress& ip, bool counted_by_limiter,
                                   bool counted_by_node)
    : listener_(listener),
      conn_(&conn),
      session_(listener.session_config_, *this),
      ip_(ip),
      ip_text_(ip.to_string()),
      counted_(counted_by_limiter),
      node_counted_(counted_by_node) {
  for (const auto& net : listener_.shared_.config->relay_networks) {
    if (net.contains(ip_)) {
      relay_network_ = true;
      break;
    }
  }
  listener_.link(this);
  ++listener_.stats_.connections;
  conn.set_handler(this);
  const TimePoint now = listener_.shard_.clock().now();
  command_since_ = now;
  const Duration session_limit = listener_.shared_.config->session_timeout;
  if (session_limit > Duration::zero()) session_deadline_ = now + session_limit;
  update_timeout();
  session_.greet();
  flush_output();
}

InjectionSession::~InjectionSession() { listener_.unlink(this); }

void InjectionSession::on_data(net::Connection&, ByteBuffer& in) noexcept {
  // What arrived since the last call (for min_data_rate): the buffer holds what was left
  // unconsumed then, plus the new bytes (start_tls empties it: then all of it is new).
  rx_total_ += in.size() >= in_left_ ? in.size() - in_left_ : in.size();
  ++listener_.shard_.stats().intake_reads;
  run(in);
  in_left_ = in.size();
}

void InjectionSession::run(ByteBuffer& in) noexcept {
  if (closing_ || close_when_answered_ || conn_ == nullptr) return;
  if (auth_release_ != TimePoint::max()) return;  // a held AUTH reply: nothing is read
  for (;;) {
    smtp::ServerEvent ev = session_.feed(in);
    if (ev == smtp::ServerEvent::MessageReady) {
      // Deferred: answered from on_committed, in order; or at once when the append failed.
      if (queue_message()) session_.defer_completion();
      continue;  // pipelined commands may follow
    }
    if (auth_delay_ > Duration::zero() &&
        (ev == smtp::ServerEvent::AuthFailed || ev == smtp::ServerEvent::Close)) {
      hold_auth_reply(ev);
      return;
    }
    if (ev == smtp::ServerEvent::AuthFailed) continue;  // refused without a delay: read on
    flush_output();
    if (session_.blocked()) {
      // STARTTLS, QUIT or too many answers owed: wait for the commits (resume re-delivers).
      blocked_ = true;
      conn_->pause_reading();
      return;
    }
    if (ev == smtp::ServerEvent::StartTls) {
      // The session emits StartTls only when ServerConfig::starttls_available, which the
      // listener sets only with a TLS context. start_tls discards buffered plaintext.
      conn_->start_tls(*listener_.shared_.tls, "");
      return;
    }
    if (ev == smtp::ServerEvent::Close) {
      if (commit_pending()) {
        // A fatal protocol error with answers still owed: give them first, then close.
        close_when_answered_ = true;
        conn_->pause_reading();
        return;
      }
      close_now();
      return;
    }
    break;
  }
  update_timeout();
  if (output_over()) {
    output_paused_ = true;
    conn_->pause_reading();
  }
  account_body();
}

void InjectionSession::account_body() noexcept {
  IntakeBudget* budget = listener_.budget_;
  if (budget == nullptr || conn_ == nullptr) return;
  const std::uint64_t now_held = session_.reading_text() ? session_.body().size() : 0;
  budget->add(static_cast<std::int64_t>(now_held) - static_cast<std::int64_t>(budget_held_));
  budget_held_ = now_held;
  if (now_held == 0) budget->cancel(this);  // a message let through past the cap is done
  if (budget_paused_ || closing_ || budget->may_read(this)) return;
  budget_paused_ = true;
  budget_paused_at_ = listener_.shard_.clock().now();
  ++listener_.stats_.budget_pauses;
  conn_->pause_reading();
  // The client is waiting for salvod: no timeout runs against it meanwhile.
  timeout_ = Duration::zero();
  conn_->set_idle_timeout(timeout_);
  deadline_ = TimePoint::max();
  conn_->set_deadline(deadline_);
  budget->wait(this);
}

void InjectionSession::on_budget() noexcept {
  if (!budget_paused_ || conn_ == nullptr) return;
  budget_paused_ = false;
  const Duration waited = listener_.shard_.clock().now() - budget_paused_at_;
  command_since_ += waited;
  text_since_ += waited;
  update_timeout();
  maybe_resume_reading();
}

void InjectionSession::release_body() noexcept {
  IntakeBudget* budget = listener_.budget_;
  if (budget == nullptr) return;
  budget->add(-static_cast<std::int64_t>(budget_held_));
  budget_held_ = 0;
  budget->cancel(this);
  budget_paused_ = false;
}

void InjectionSession::maybe_resume_reading() noexcept {
  if (conn_ == nullptr || blocked_ || output_paused_ || budget_paused_ || closing_ ||
      close_when_answered_ || auth_release_ != TimePoint::max()) {
    return;
  }
  conn_->resume_reading();
}

bool InjectionSession::output_over() const noexcept {
  // Replies held behind a pending commit count too: a client pipelining NOOPs behind a
  // slow fsync must not grow them without bound.
  return conn_->pending_output() + session_.held_bytes() > kOutputHighWater;
}

void InjectionSession::on_drained(net::Connection&) noexcept { maybe_resume_output(); }

void InjectionSession::maybe_resume_output() noexcept {
  if (!output_paused_ || conn_ == nullptr || output_over()) return;
  output_paused_ = false;
  maybe_resume_reading();
}

void InjectionSession::on_tls_ready(net::Connection&) noexcept {
  ++listener_.stats_.tls_sessions;
  session_.tls_established();
  flush_output();
}

// RFC 5321 §4.5.3.2 / §3.8: a server that times a client out says 421 before closing.
bool InjectionSession::on_idle_timeout(net::Connection&) noexcept {
  if (closing_ || conn_ == nullptr) return false;
  if (auth_release_ != TimePoint::max()) return release_auth_reply();
  const TimePoint now = listener_.shard_.clock().now();
  const Expiry kind = expiry_kind(now);
  const char* why = kind == Expiry::DataRate  ? "Error: data rate too low"
                    : kind == Expiry::Session ? "Error: session time limit exceeded"
                                              : "Error: timeout exceeded";
  if (commit_pending()) {
    // A 250 is owed first. Give the commit one more command_timeout (the client reads no
    // further meanwhile), then 421; if even that runs out, close without last words.
    if (timed_out_ != nullptr) return false;
    ++listener_.stats_.timeouts[static_cast<std::size_t>(kind)];
    timed_out_ = why;
    close_when_answered_ = true;
    conn_->pause_reading();
    const Duration grace = listener_.shared_.config->command_timeout;
    timeout_ = grace;
    conn_->set_idle_timeout(grace);
    deadline_ = now + grace;
    conn_->set_deadline(deadline_);
    return false;
  }
  ++listener_.stats_.timeouts[static_cast<std::size_t>(kind)];
  closing_ = true;
  session_.shutdown(why);  // 421 4.4.2
  flush_output();
  return true;
}

InjectionSession::Expiry InjectionSession::expiry_kind(TimePoint now) const noexcept {
  // The fixed deadline is never later than the idle one outside message text, so an
  // expiry that is not the fixed deadline's is a pause inside the text.
  return now >= deadline_ ? deadline_kind_ : Expiry::Data;
}

void InjectionSession::on_close(net::Connection&, std::error_code) noexcept {
  listener_.stats_.session += session_.stats();
  release_body();
  if (counted_ && listener_.shared_.limiter != nullptr) {
    listener_.shared_.limiter->release(ip_);
  }
  counted_ = false;
  if (node_counted_) listener_.shared_.node_budget->release();
  node_counted_ = false;
  conn_ = nullptr;
  if (commit_pending()) {
    // The writer still holds this waiter: live on until on_committed (the message is
    // queued anyway; the client will retry: RFC 1047 duplicate window).
    ++listener_.stats_.orphaned_commits;
  }
  maybe_delete();
}

std::optional<smtp::Reply> InjectionSession::on_mail(const smtp::ServerSession&,
                                                     const smtp::Path&,
                                                     const smtp::MailParams&) {
  // Spool below its reserve: refuse before the client sends data, not at end of data.
  if (!listener_.writer_.free_space_ok()) {
    ++listener_.stats_.low_space;
    return smtp::Reply(452, {4, 3, 1}, "Insufficient system storage");
  }
  return std::nullopt;
}

std::optional<smtp::Reply> InjectionSession::on_rcpt(const smtp::ServerSession& s,
                                                     const smtp::Path&,
                                                     const smtp::RcptParams&) {
  // salvo has no local domains, so every recipient is a relay; allowed
  // only for relay_networks or authenticated clients (Postfix permit_mynetworks,
  // permit_sasl_authenticated). Checked per recipient on the parsed path.
  if (relay_network_ || s.authenticated()) return std::nullopt;
  ++listener_.stats_.relay_denied;
  return smtp::Reply(554, {5, 7, 1}, "Relay access denied");
}

std::optional<smtp::Reply> InjectionSession::on_auth(const smtp::ServerSession&,
                                                     smtp::AuthMechanism,
                                                     std::string_view authzid,
                                                     std::string_view authcid,
                                                     std::string_view password) {
  const AuthUsers* users = listener_.shared_.users;
  AuthBudget* budget = listener_.shared_.auth_budget;
  const TimePoint now = listener_.shard_.clock().now();
  // A spent budget refuses before the password is looked at, so a right guess cannot get
  // through meanwhile and no hashing time goes into it. 454 4.7.0 is RFC 4954 §6's
  // temporary failure (Postfix's AUTH rate limit says 450 4.7.1 and keeps the session too):
  // a legitimate client behind the same address retries later; an attacker's connection
  // still ends at its third refusal (max_auth_failures).
  if (budget != nullptr) {
    const AuthBudget::Refusal r = budget->refusal(ip_, authcid, now);
    if (r != AuthBudget::Refusal::None) {
      ++listener_.stats_.auth_refused[r == AuthBudget::Refusal::Ip ? 0 : 1];
      return smtp::Reply(454, {4, 7, 0}, "Temporary authentication failure, try again later");
    }
  }
  // Same reply, same work, for an unknown user and a wrong password (no user enumeration).
  bool ok = users != nullptr && users->check(authcid, password);
  if (ok && (authzid.empty() || authzid == authcid)) {
    ++listener_.stats_.auth_ok;
    return std::nullopt;
  }
  ++listener_.stats_.auth_failed;
  if (budget != nullptr) budget->failed(ip_, authcid, now);
  // The 535 waits: 1x, 2x, 4x auth_failure_delay for this connection's 1st, 2nd, 3rd failure
  // (the 3rd closes; capped at 16x should max_auth_failures grow).
  auth_delay_ = listener_.shared_.config->auth_failure_delay *
                (std::int64_t{1} << std::min(auth_failures_, 4u));
  ++auth_failures_;
  return smtp::Reply(535, {5, 7, 8}, "Error: authentication failed");
}

// The delay path. The session stopped at the refusal (pause_after_auth_failure) with its
// reply in output() and the rest of the input unread; no commit is owed (AUTH waits for
// them). Only the release timer runs meanwhile; update_timeout() restores both timers.
void InjectionSession::hold_auth_reply(smtp::ServerEvent ev) noexcept {
  auth_release_ = listener_.shard_.clock().now() + auth_delay_;
  auth_delay_ = Duration::zero();
  auth_close_ = ev == smtp::ServerEvent::Close;
  conn_->pause_reading();
  timeout_ = Duration::zero();
  conn_->set_idle_timeout(timeout_);
  deadline_ = auth_release_;
  conn_->set_deadline(deadline_);
}

bool InjectionSession::release_auth_reply() noexcept {
  auth_release_ = TimePoint::max();
  flush_output();
  if (auth_close_) {
    closing_ = true;
    return true;  // the 535 and the 421 are the last words: close once they are out
  }
  // The client's time for its next command starts with the reply.
  command_since_ = listener_.shard_.clock().now();
  update_timeout();
  maybe_resume_reading();  // re-delivers what was left unread
  return false;
}

// Accounting: one "received" event per recipient, once the message is durable.
void InjectionSession::log_received(const PendingCommit& p) noexcept {
  accounting::Writer* log = listener_.accounting_;
  if (log == nullptr) return;
  std::string id = format_id(p.id);
  accounting::Event ev;
  ev.ts_unix_ns = p.received_ns;
  ev.id = id;
  ev.from = p.from;
  ev.ip = ip_text_;
  ev.size = p.bytes;
  ev.source = "smtp";
  for (const auto& r : p.rcpts) account_received(*log, ev, r);
}

bool InjectionSession::queue_message() noexcept {
  spool::SpoolWriter& writer = listener_.writer_;
  const smtp::Envelope& env = session_.envelope();
  const std::uint32_t max_hops = listener_.shared_.max_hops;
  if (smtp::count_received(session_.body().view(), max_hops) >= max_hops) {
    ++listener_.stats_.hops_exceeded;
    session_.complete_message(554, {5, 4, 6},
                              fmt::format("Too many hops: {} Received: lines, a mail loop",
                                          max_hops));
    return false;
  }
  spool::MessageRecord m;
  m.id = writer.allocate_id();
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  m.received_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch).count();
  TraceInfo t;
  t.helo = session_.helo_name();
  t.client_ip = ip_text_;
  t.hostname = listener_.shared_.hostname;
  t.tls = session_.tls_active();
  t.authenticated = session_.authenticated();
  t.esmtp = session_.esmtp();
  t.id = m.id.value();
  t.unix_seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  std::string info = client_info(t, session_.authenticated_user());
  std::string& received = listener_.record_scratch();
  received.clear();
  append_received(t, received);
  fill_record(env, m);
  m.client_info = info;
  m.body_head = received;
  m.body = session_.body().view();
  // The writer encodes the record into its batch now (the body's one copy on its way to
  // the disk); the scratch is free afterwards.
  Result<spool::MessageId> r = writer.append_message(m, this);
  const std::uint64_t stored_bytes = m.body_head.size() + m.body.size();
  if (received.capacity() > kKeepScratch) {
    std::string().swap(received);
  } else {
    received.clear();
  }
  if (!r) {
    ++listener_.stats_.commit_failures;
    if (r.error() == std::errc::no_space_on_device) {
      session_.complete_message(452, {4, 3, 1}, "Insufficient system storage");
    } else {
      session_.complete_message(451, {4, 3, 0}, "Error: queue file write error");
    }
    return false;
  }
  PendingCommit p;
  p.id = r->value();
  p.received_ns = m.received_unix_ns;
  p.end_of_data = listener_.shard_.clock().now();
  p.bytes = stored_bytes;
  p.from = env.reverse_path;
  p.rcpts.reserve(env.recipients.size());
  for (const auto& rc : env.recipients) p.rcpts.push_back(rc.address);
  pending_.push_back(std::move(p));
  return true;
}

void InjectionSession::on_committed(Status status) noexcept {
  if (pending_.empty()) {
    SALVO_BUG("InjectionSession: a commit answer with no pending message");
    return;
  }
  PendingCommit p = std::move(pending_.front());
  pending_.pop_front();
  listener_.stats_.end_of_data_reply_ns.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(listener_.shard_.clock().now() -
                                                           p.end_of_data)
          .count()));
  if (status) {
    ++listener_.stats_.messages_queued;
    listener_.stats_.recipients_queued += p.rcpts.size();
    listener_.stats_.bytes_queued += p.bytes;
    log_received(p);
    if (listener_.dispatch_ != nullptr) {
      std::vector<std::string_view> rcpts(p.rcpts.begin(), p.rcpts.end());
      listener_.dispatch_->queued(spool::MessageId(p.id), p.received_ns, 0, rcpts);
    }
  } else {
    ++listener_.stats_.commit_failures;
  }
  if (conn_ == nullptr) {
    maybe_delete();
    return;
  }
  if (status) {
    std::string text = "Ok: queued as " + format_id(p.id);
    session_.complete_deferred(250, {2, 0, 0}, text);
  } else if (status.error() == std::errc::no_space_on_device) {
    session_.complete_deferred(452, {4, 3, 1}, "Insufficient system storage");
  } else {
    // fsyncgate (docs/spool-format.md §5): never 250 after a failed write or fdatasync.
    session_.complete_deferred(451, {4, 3, 0}, "Error: queue file write error");
  }
  flush_output();
  if (commit_pending()) {
    maybe_resume_output();  // held replies went out with the answer
    // More answers owed; a blocked session may have room again.
    if (blocked_ && !session_.blocked() && !stopping_ && !close_when_answered_) {
      blocked_ = false;
      maybe_resume_reading();
    }
    return;
  }
  if (timed_out_ != nullptr) {
    session_.shutdown(timed_out_);
    flush_output();
    close_now();
    return;
  }
  if (close_when_answered_) {
    close_now();
    return;
  }
  if (stopping_) {
    session_.shutdown("Service shutting down");
    flush_output();
    close_now();
    return;
  }
  // The client waited for this answer: its time for the next command starts now.
  command_since_ = listener_.shard_.clock().now();
  update_timeout();
  // Pipelined commands may be buffered behind a blocked one: resume re-delivers them.
  blocked_ = false;
  maybe_resume_reading();
}

void InjectionSession::stop() noexcept {
  stopping_ = true;
  if (conn_ == nullptr || closing_) return;
  if (commit_pending()) {
    conn_->pause_reading();  // no new commands; 421 once the owed answers are out
    return;
  }
  session_.shutdown("Service shutting down");
  flush_output();
  close_now();
}

void InjectionSession::flush_output() noexcept {
  ByteBuffer& out = session_.output();
  if (out.empty() || conn_ == nullptr) return;
  conn_->output().append(out.view());
  out.clear();
  conn_->flush();
}

void InjectionSession::update_timeout() noexcept {
  if (conn_ == nullptr || closing_ || timed_out_ != nullptr) return;
  const config::Listener& cfg = *listener_.shared_.config;
  const TimePoint now = listener_.shard_.clock().now();
  // Progress: a complete command, or the end of message text, starts the next command's
  // time. Bytes of an incomplete line do not: a trickle cannot stretch a command.
  const bool text = session_.reading_text();
  const bool in_transaction = session_.in_transaction();
  const std::uint64_t commands = session_.stats().commands;
  if (commands != commands_seen_ || (was_text_ && !text)) {
    commands_seen_ = commands;
    command_since_ = now;
  }
  was_text_ = text;
  if (!in_transaction) {
    rate_window_ = false;
  } else if (text && !rate_window_) {
    rate_window_ = true;  // the rate counts over all of the transaction's text (BDAT chunks)
    text_since_ = now;
    text_rx0_ = rx_total_;
  }

  Duration idle;
  TimePoint fixed = TimePoint::max();
  Expiry kind = Expiry::Command;
  if (text) {
    // RFC 5321 §4.5.3.2.5/6: data_timeout between blocks of text; and the text as a whole
    // at min_data_rate after a data_timeout of grace (Postfix smtpd_min_data_rate).
    idle = cfg.data_timeout;
    if (cfg.min_data_rate > 0) {
      const std::uint64_t bytes = rx_total_ - text_rx0_;
      const auto earned = std::chrono::duration_cast<Duration>(
          std::chrono::duration<double>(static_cast<double>(bytes) / cfg.min_data_rate));
      fixed = text_since_ + cfg.data_timeout + earned;
      kind = Expiry::DataRate;
    }
  } else {
    // §4.5.3.2.7: 5 minutes for a command; outside a transaction the idle_timeout.
    idle = in_transaction ? cfg.command_timeout : cfg.idle_timeout;
    fixed = command_since_ + idle;
  }
  // session_timeout ends the session between transactions; one under way gets at most
  // command_timeout beyond it.
  if (session_deadline_ != TimePoint::max()) {
    const TimePoint end = in_transaction ? session_deadline_ + cfg.command_timeout
                                          : session_deadline_;
    if (end < fixed) {
      fixed = end;
      kind = Expiry::Session;
    }
  }
  deadline_kind_ = kind;
  if (idle != timeout_) {
    timeout_ = idle;
    conn_->set_idle_timeout(idle);
  }
  if (fixed != deadline_) {
    deadline_ = fixed;
    conn_->set_deadline(fixed);
  }
}

void InjectionSession::maybe_delete() noexcept {
  if (conn_ != nullptr || commit_pending()) return;
  delete this;
}

void InjectionSession::close_now() noexcept {
  if (conn_ == nullptr || closing_) return;
  closing_ = true;
  conn_->close();
}

}  // namespace salvo::inbound
