// SPDX-License-Identifier: Apache-2.0
// InjectionListener: accept (with the per-IP cap), the session list, graceful stop.
#include <salvo/inbound/injection_listener.h>

#include <salvo/base/log.h>
#include <salvo/inbound/auth_users.h>
#include <salvo/inbound/client_limiter.h>
#include <salvo/inbound/metrics.h>
#include <salvo/net/metrics.h>
#include <salvo/spool/spool_writer.h>

#include "inbound/injection_session.h"

namespace salvo::inbound {

InboundStats& InboundStats::operator+=(const InboundStats& o) noexcept {
  connections += o.connections;
  refused_per_ip += o.refused_per_ip;
  refused_node_cap += o.refused_node_cap;
  messages_queued += o.messages_queued;
  recipients_queued += o.recipients_queued;
  bytes_queued += o.bytes_queued;
  commit_failures += o.commit_failures;
  orphaned_commits += o.orphaned_commits;
  relay_denied += o.relay_denied;
  hops_exceeded += o.hops_exceeded;
  auth_ok += o.auth_ok;
  auth_failed += o.auth_failed;
  for (std::size_t i = 0; i < auth_refused.size(); ++i) auth_refused[i] += o.auth_refused[i];
  low_space += o.low_space;
  tls_sessions += o.tls_sessions;
  budget_pauses += o.budget_pauses;
  for (std::size_t i = 0; i < timeouts.size(); ++i) timeouts[i] += o.timeouts[i];
  end_of_data_reply_ns.merge(o.end_of_data_reply_ns);
  session += o.session;
  return *this;
}

InjectionListener::InjectionListener(shard::Shard& shard, net::Stack& stack,
                                     spool::SpoolWriter& writer, const ListenerShared& shared,
                                     accounting::Writer* accounting, IntakeBudget* budget)
    : shard_(shard),
      stack_(stack),
      writer_(writer),
      shared_(shared),
      budget_(budget),
      accounting_(accounting) {
  const config::Listener& cfg = *shared.config;
  smtp::ServerConfig& sc = session_config_;
  sc.hostname = shared.hostname;
  sc.greeting = "ESMTP salvo";
  sc.max_message_size = cfg.max_message_size;
  sc.max_recipients = cfg.max_recipients;
  sc.hard_error_limit = cfg.hard_error_limit;
  // Pipelining and BDAT clients keep this many messages in flight while commits run.
  sc.max_deferred_completions = 32;
  sc.starttls_available = cfg.starttls && shared.tls != nullptr;
  // Commands pipelined behind STARTTLS: 554 and close (Momentum's "reject"), the stricter
  // choice against CVE-2011-0411 command injection.
  sc.starttls_injection = smtp::StarttlsInjection::Reject;
  if (sc.starttls_available && shared.users != nullptr && !shared.users->empty()) {
    for (config::AuthMechanism m : cfg.auth) {
      sc.auth_mechanisms.add(m == config::AuthMechanism::Plain ? smtp::AuthMechanism::Plain
                                                               : smtp::AuthMechanism::Login);
    }
  }
  sc.auth_requires_tls = true;  // RFC 4954 §4: no plaintext passwords before STARTTLS
  sc.max_auth_failures = 3;     // then 421 and close, pipelined guesses included
  // The session holds each 535 for a growing delay (InjectionSession's delay path).
  sc.pause_after_auth_failure = cfg.auth_failure_delay > Duration::zero();
  sc.keep_body = true;
}

InjectionListener::~InjectionListener() {
  // Sessions are deleted by their connections' on_close / on_committed; the daemon destroys
  // the listener only once drained(). Anything left here is a lifecycle bug.
  if (sessions_ != nullptr) {
    log::error("inbound: listener destroyed with {} live sessions", session_count_);
  }
}

Status InjectionListener::start(const net::SocketAddress& addr) {
  auto bound = stack_.listen(addr, net::ReusePort::Yes, *this);
  if (!bound) return std::unexpected(bound.error());
  listener_ = *bound;
  address_ = listener_->address();
  return {};
}

void InjectionListener::begin_stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  if (listener_ != nullptr) {
    listener_->close();
    listener_ = nullptr;
  }
  // stop() may close (and so later delete) a session; on_close never runs inside it, but
  // collect first anyway.
  std::vector<InjectionSession*> live;
  live.reserve(session_count_);
  for (InjectionSession* s = sessions_; s != nullptr; s = s->next_) live.push_back(s);
  for (InjectionSession* s : live) s->stop();
}

void InjectionListener::on_accept(net::Listener&, net::Connection& c) noexcept {
  if (stopping_) {
    c.set_handler(&refused_);
    c.abort();
    return;
  }
  auto ip = config::IpAddress::from_sockaddr(c.peer().sa());
  if (!ip) {
    c.set_handler(&refused_);
    c.abort();
    return;
  }
  // The node's cap first: beyond it nobody gets in, whatever their address.
  if (shared_.node_budget != nullptr && !shared_.node_budget->try_acquire()) {
    ++stats_.refused_node_cap;
    c.set_handler(&refused_);
    c.send("421 4.7.0 " + shared_.hostname + " Error: too many connections, try again later\r\n");
    c.close();
    return;
  }
  const bool budgeted = shared_.node_budget != nullptr;
  bool counted = false;
  if (shared_.limiter != nullptr && shared_.limiter->limit() != 0) {
    if (!shared_.limiter->try_acquire(*ip)) {
      ++stats_.refused_per_ip;
      if (budgeted) shared_.node_budget->release();
      c.set_handler(&refused_);
      c.send("421 4.7.0 " + shared_.hostname + " Error: too many connections from " +
             ip->to_string() + "\r\n");
      c.close();
      return;
    }
    counted = true;
  }
  new InjectionSession(*this, c, *ip, counted, budgeted);
}

void InjectionListener::link(InjectionSession* s) noexcept {
  s->prev_ = nullptr;
  s->next_ = sessions_;
  if (sessions_ != nullptr) sessions_->prev_ = s;
  sessions_ = s;
  ++session_count_;
}

void InjectionListener::unlink(InjectionSession* s) noexcept {
  if (s->prev_ != nullptr) {
    s->prev_->next_ = s->next_;
  } else if (sessions_ == s) {
    sessions_ = s->next_;
  }
  if (s->next_ != nullptr) s->next_->prev_ = s->prev_;
  s->prev_ = s->next_ = nullptr;
  --session_count_;
}

namespace {

constexpr metrics::Family kCommitFailures{
    "salvo_smtp_commit_failures_total", metrics::Type::Counter,
    "Messages answered 4xx at end of data because the spool commit failed."};
constexpr metrics::Family kRelayDenied{"salvo_smtp_relay_denied_total", metrics::Type::Counter,
                                       "Recipients refused 554 5.7.1 (relaying denied)."};
constexpr metrics::Family kHopsExceeded{
    "salvo_smtp_hops_exceeded_total", metrics::Type::Counter,
    "Messages refused 554 5.4.6 at end of data: [delivery] max_hops Received: lines (a loop)."};
constexpr metrics::Family kAuthFailures{"salvo_smtp_auth_failures_total", metrics::Type::Counter,
                                        "Failed SMTP AUTH attempts."};
constexpr metrics::Family kAuthRefused{
    "salvo_smtp_auth_refused_total", metrics::Type::Counter,
    "SMTP AUTH answered 454 4.7.0 without a password check: reason=ip_budget (the client's "
    "auth_failures_per_ip spent) or user_budget (the user's auth_failures_per_user)."};
constexpr std::string_view kAuthRefusedReasons[] = {"ip_budget", "user_budget"};
constexpr metrics::Family kRefusedPerIp{
    "salvo_smtp_refused_connections_total", metrics::Type::Counter,
    "SMTP connections refused at connect because the client's address had too many."};
constexpr metrics::Family kRefusedNodeCap{
    "salvo_smtp_refused_node_cap_total", metrics::Type::Counter,
    "SMTP connections refused at connect because the node had [node] max_connections open."};
constexpr metrics::Family kTimeouts{
    "salvo_smtp_timeouts_total", metrics::Type::Counter,
    "SMTP sessions ended 421 4.4.2 by a timeout: kind=command (a command line not complete "
    "in time), data (a pause in message text), data_rate (below min_data_rate), session."};
constexpr metrics::Family kBudgetPauses{
    "salvo_smtp_budget_pauses_total", metrics::Type::Counter,
    "SMTP sessions that stopped reading because [node] max_pending_bytes of message text "
    "was held (being received or waiting for the spool commit)."};
constexpr std::string_view kTimeoutKinds[] = {"command", "data", "data_rate", "session"};
constexpr metrics::Family kEndOfData{
    "salvo_smtp_end_of_data_reply_seconds", metrics::Type::Histogram,
    "SMTP injection: end of DATA to the reply (250 after the group commit)."};

}  // namespace

void InjectionListener::report(metrics::Snapshot& s) const {
  const std::string smtp = metrics::label("source", "smtp");
  s.add(kReceivedMessages, smtp, stats_.messages_queued);
  s.add(kReceivedRecipients, smtp, stats_.recipients_queued);
  s.add(kCommitFailures, {}, stats_.commit_failures);
  s.add(kRelayDenied, {}, stats_.relay_denied);
  s.add(kHopsExceeded, {}, stats_.hops_exceeded);
  s.add(kAuthFailures, {}, stats_.auth_failed);
  for (std::size_t i = 0; i < stats_.auth_refused.size(); ++i) {
    s.add(kAuthRefused, metrics::label("reason", kAuthRefusedReasons[i]), stats_.auth_refused[i]);
  }
  s.add(kRefusedPerIp, {}, stats_.refused_per_ip);
  s.add(kRefusedNodeCap, {}, stats_.refused_node_cap);
  s.add(net::kConnectionsOpen, "direction=\"in\",protocol=\"smtp\"",
        static_cast<std::uint64_t>(session_count_));
  s.add(kBudgetPauses, {}, stats_.budget_pauses);
  for (std::size_t i = 0; i < stats_.timeouts.size(); ++i) {
    s.add(kTimeouts, metrics::label("kind", kTimeoutKinds[i]), stats_.timeouts[i]);
  }
  s.add(kEndOfData, {}, stats_.end_of_data_reply_ns);
}

}  // namespace salvo::inbound
