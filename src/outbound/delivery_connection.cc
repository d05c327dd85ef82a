// SPDX-License-Identifier: Apache-2.0
// DeliveryConnection: one pooled SMTP connection (see delivery_connection.h).
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include <salvo/base/log.h>
#include <salvo/base/units.h>
#include <salvo/net/tls.h>

#include "outbound/delivery_connection.h"
#include "outbound/destination.h"
#include "outbound/destination_side.h"

namespace salvo::outbound {
namespace {

// QUIT answered: how long the server may take to close its side.
constexpr Duration kFinWait = std::chrono::seconds(2);

// RFC 5321 §4.5.3.2: each reply has its own limit. The [delivery] key that sets it and
// what the reply is, for the timeout's report.
struct ReplyLimit {
  Duration limit{0};  // zero: no reply waited for
  std::string_view key;
  std::string_view what;
};

ReplyLimit reply_limit(smtp::Awaiting a, bool quitting, const config::Delivery& del) {
  switch (a) {
    case smtp::Awaiting::Greeting:
      return {del.greeting_timeout, "greeting_timeout", "the greeting"};
    case smtp::Awaiting::Helo:
      return {del.helo_timeout, "helo_timeout", "the reply to EHLO/HELO"};
    case smtp::Awaiting::StartTls:
      return {del.tls_timeout, "tls_timeout", "the reply to STARTTLS or the TLS handshake"};
    case smtp::Awaiting::Mail:
      return {del.mail_timeout, "mail_timeout", "the reply to MAIL FROM"};
    case smtp::Awaiting::Rcpt:
      return {del.rcpt_timeout, "rcpt_timeout", "the reply to RCPT TO"};
    case smtp::Awaiting::Data:
      return {del.data_init_timeout, "data_init_timeout", "the reply to DATA"};
    case smtp::Awaiting::DataEnd:
      return {del.data_done_timeout, "data_done_timeout",
              "the reply to the end of the message data"};
    case smtp::Awaiting::Other:
      return {del.helo_timeout, "helo_timeout", "the reply to RSET"};
    case smtp::Awaiting::Nothing:
      break;
  }
  // After QUIT the session tracks no reply; the connection waits for one all the same.
  if (quitting) return {del.helo_timeout, "helo_timeout", "the reply to QUIT"};
  return {};
}

smtp::DsnRet client_ret(spool::Ret r) {
  switch (r) {
    case spool::Ret::Full: return smtp::DsnRet::Full;
    case spool::Ret::Headers: return smtp::DsnRet::Hdrs;
    case spool::Ret::Unspecified: break;
  }
  return smtp::DsnRet::Unspecified;
}

}  // namespace

DeliveryConnection::DeliveryConnection(Destination& d, const Host& host, const Origination& o,
                                       ClientTls tls)
    : d_(d), host_(host), helo_(o.helo), tls_(tls) {
  if (o.has_source) source_ = o.source;
}

void DeliveryConnection::start(net::Stack& stack) noexcept {
  stack_ = &stack;
  if (!dane_wanted()) {
    connect();
    return;
  }
  // The cache answers now or calls back later; the connection waits for it in Connecting
  // (quit() has no session to end yet). The lookup is bounded by the resolver's timeouts.
  // A cached answer is acted on after this call: the pool has not taken the connection in
  // yet, and a failure deletes it.
  DeliveryEnv& env = d_.side().env();
  dns::TlsaAnswer now = env.lookup_tlsa(host_.name, [this](dns::TlsaAnswer a) { on_tlsa(a); });
  if (now) env.defer([this, now] { on_tlsa(now); });
}

void DeliveryConnection::connect() noexcept {
  const auto& del = d_.side().config().delivery;
  stack_->connect(host_.address, source_ ? &*source_ : nullptr, del.connect_timeout, *this);
}

// RFC 7672 §2.2: DANE needs a validating resolver we trust, and an MX host name and
// addresses that validated (a forged MX could name a host with TLSA records of its own).
bool DeliveryConnection::dane_wanted() const noexcept {
  const config::Config& c = d_.side().config();
  return c.dns.validating && d_.shaping().dane && d_.shaping().tls != config::TlsPolicy::Off &&
         host_.authenticated;
}

void DeliveryConnection::on_tlsa(const dns::TlsaAnswer& a) noexcept {
  switch (a->status) {
    case dns::TlsaStatus::Secure:
      for (const net::Tlsa& r : a->records) {
        if (net::tlsa_usable(r)) dane_.push_back(r);
      }
      // RFC 7672 §2.2: only unusable records (PKIX usages, unknown fields): no DANE.
      if (!dane_.empty() && tls_.plain() == nullptr) {
        fail_before_connect(smtp::Reply(
            451, {4, 7, 5}, fmt::format("DANE for {}: no client TLS context", host_.name)));
        return;
      }
      break;
    case dns::TlsaStatus::Failed: {
      // RFC 7672 §2.2: the host's addresses validated, so its TLSA RRset may exist; an
      // attacker could be suppressing it. The host is not used this time.
      smtp::Reply r(451, {4, 7, 5},
                    fmt::format("TLSA lookup for {} failed (DANE): {}", host_.name, a->detail));
      tls_decided(TlsOutcome::Failed, "tlsa-lookup-failed: " + a->detail);
      fail_before_connect(r);
      return;
    }
    case dns::TlsaStatus::Insecure:
    case dns::TlsaStatus::Absent:
      break;
  }
  connect();
}

void DeliveryConnection::fail_before_connect(const smtp::Reply& r) noexcept {
  log::debug("outbound: {} [{}]: {}", host_.name, host_.address.to_string(), r.text);
  d_.session_failed(*this, r, true, true);
  state_ = State::Closed;
  d_.connection_gone(this);
  delete this;
}

bool DeliveryConnection::stopping() const noexcept { return d_.side().stopping(); }

smtp::ClientConfig DeliveryConnection::session_config() {
  smtp::ClientConfig cfg;
  cfg.helo_name = helo_;
  cfg.use_pipelining = true;
  cfg.pipeline_across_messages = true;
  cfg.use_chunking = true;
  demand_ = d_.tls_demand(host_);
  tls_epoch_ = d_.tls_epoch();
  cfg.tls = tls_.plain() != nullptr ? demand_.starttls : smtp::TlsPolicy::Off;
  tls_required_ = cfg.tls == smtp::TlsPolicy::Required;
  if (cfg.tls == smtp::TlsPolicy::Opportunistic &&
      host_.tls_failed_until > d_.side().env().clock().now()) {
    cfg.tls = smtp::TlsPolicy::Off;
    plaintext_fallback_ = true;
  }
  // Without a verifying context a demanded check cannot be made: the handshake is not
  // started (NeedTls fails the session) rather than made unverified.
  verified_ = tls_required_ && demand_.verify;
  if (!dane_.empty()) {
    // RFC 7672 §2.2: usable TLSA records make TLS mandatory, authenticated by them alone,
    // over whatever the destination's own policy or MTA-STS asked (RFC 8461 §2). The
    // handshake itself does not verify; check_dane() does once it is done.
    demand_.starttls = smtp::TlsPolicy::Required;
    demand_.verify = false;
    demand_.authority = TlsAuthority::Dane;
    demand_.testing_failure.clear();
    demand_.sts_testing = false;
    cfg.tls = smtp::TlsPolicy::Required;
    tls_required_ = true;
    plaintext_fallback_ = false;
    verified_ = false;
  }
  return cfg;
}

void DeliveryConnection::on_connect(net::Connection* c, std::error_code why) noexcept {
  if (c == nullptr) {
    ++d_.side().stats().connect_failures;
    log::debug("outbound: {} [{}]: connect failed: {}", host_.name, host_.address.to_string(),
               why.message());
    fail_before_connect(smtp::Reply(451, {4, 4, 1},
                                    fmt::format("connect to {} [{}] failed: {}", host_.name,
                                                host_.address.to_string(), why.message())));
    return;
  }
  conn_ = c;
  state_ = State::Greeting;
  session_ = std::make_unique<smtp::ClientSession>(session_config());
  c->set_handler(this);
  // RFC 5321 §4.5.3.2.5: each write of message data; commands are small enough never to
  // wait on a socket that reads.
  c->set_write_timeout(d_.side().config().delivery.data_block_timeout);
  update_timeout();
}

void DeliveryConnection::on_data(net::Connection&, ByteBuffer& in) noexcept { drive(in); }

void DeliveryConnection::on_drained(net::Connection& c) noexcept {
  // Everything we wrote has left: the reply waited for is timed from now on.
  if (wait_.reply_limit > Duration::zero() && wait_.deadline == TimePoint::max()) {
    wait_.deadline = d_.side().env().clock().now() + wait_.reply_limit;
    c.set_deadline(wait_.deadline);
  }
}

void DeliveryConnection::on_tls_ready(net::Connection& c) noexcept {
  ++d_.side().stats().tls_sessions;
  // MTA-STS testing: a certificate enforce would have refused is reported.
  const net::TlsSession* t = c.tls();
  if (demand_.sts_testing && demand_.testing_failure.empty() && t != nullptr &&
      !t->verify_error().empty()) {
    demand_.testing_failure = "verify-failed: " + t->verify_error();
  }
  if (!dane_.empty()) {
    if (!check_dane()) return;
    tls_decided(TlsOutcome::Dane);
  } else if (!verified_) {
    tls_decided(TlsOutcome::Opportunistic);
  } else if (demand_.authority == TlsAuthority::MtaSts) {
    tls_decided(TlsOutcome::MtaSts);
  } else {
    tls_decided(TlsOutcome::Verified);
  }
  session_->tls_established();
  ByteBuffer none(0);
  drive(none);
}

// RFC 7672 §3: the server's chain must match a usable TLSA record. A mismatch fails the
// session before it is ready: the host is skipped and, with no other, recipients deferred.
bool DeliveryConnection::check_dane() noexcept {
  const net::TlsSession* tls = conn_ != nullptr ? conn_->tls() : nullptr;
  const std::vector<std::string> chain =
      tls != nullptr ? tls->peer_chain() : std::vector<std::string>{};
  const net::DaneMatch m = net::dane_match(dane_, chain, host_.name);
  if (m.matched) return true;
  tls_decided(TlsOutcome::Failed, "dane-mismatch: " + m.detail);
  smtp::Reply r(451, {4, 7, 5},
                fmt::format("DANE: the certificate of {} [{}] does not match its TLSA records: {}",
                            host_.name, host_.address.to_string(), m.detail));
  log::info("outbound: {}", r.text);
  d_.session_failed(*this, r, true, true);
  state_ = State::Quitting;
  if (conn_ != nullptr) conn_->close();
  return false;
}

void DeliveryConnection::drive(ByteBuffer& in) noexcept {
  while (session_) {
    smtp::ClientEvent ev = session_->feed(in);
    switch (ev.kind) {
      case smtp::ClientEventKind::None:
        flush();
        update_timeout();
        return;
      case smtp::ClientEventKind::Ready:
        if (!outcome_) tls_decided(TlsOutcome::None);
        state_ = State::Ready;
        d_.on_ready(*this);
        break;
      case smtp::ClientEventKind::NeedTls: {
        flush();
        tls_started_ = true;
        const net::TlsContext* ctx = verified_            ? tls_.verified()
                                     : demand_.sts_testing ? tls_.report()
                                                           : tls_.plain();
        if (conn_ != nullptr && ctx != nullptr) conn_->start_tls(*ctx, host_.name);
        if (conn_ != nullptr && ctx == nullptr) conn_->abort();
        update_timeout();
        return;
      }
      case smtp::ClientEventKind::TransactionDone:
        on_transaction(ev.result);
        if (state_ == State::Ready) fill();
        break;
      case smtp::ClientEventKind::Failed:
        // Required TLS that never started: STARTTLS not offered, or refused.
        if (state_ != State::Ready && tls_required_ && !outcome_ &&
            (ev.local || wait_.awaiting == smtp::Awaiting::StartTls)) {
          tls_decided(TlsOutcome::Failed, "starttls-failed: " + ev.reply.text);
        }
        d_.session_failed(*this, ev.reply, state_ != State::Ready, ev.local);
        flush();
        state_ = State::Quitting;
        if (conn_ != nullptr) conn_->close();
        return;
      case smtp::ClientEventKind::Closed:
        // QUIT answered: the server closes (RFC 5321 §4.1.1.10). Waiting for its FIN keeps
        // the pool slot taken until the server has let the connection go, so a new one
        // never overlaps it there (shaping as the receiver sees it); bounded by a timer.
        state_ = State::Closing;
        update_timeout();
        return;
    }
  }
}

void DeliveryConnection::on_transaction(const smtp::TransactionResult& r) noexcept {
  auto it = std::find_if(slots_.begin(), slots_.end(),
                         [&](const Slot* s) { return s->cookie == r.cookie; });
  if (it == slots_.end()) {
    SALVO_BUG("outbound: a transaction result for no slot");
    return;
  }
  Slot* s = *it;
  slots_.erase(it);
  d_.finish(s, &r);
}

// A reload since the connection opened (its TLS policy, CA bundle, shaping may differ), or
// a new MTA-STS policy: it finishes what it has and takes nothing new.
bool DeliveryConnection::outdated() const noexcept {
  return tls_.settings != d_.side().context().settings || tls_epoch_ != d_.tls_epoch();
}

bool DeliveryConnection::can_take() noexcept {
  if (state_ != State::Ready || stopping() || outdated()) return false;
  if (slots_.size() >= d_.side().context().window) return false;
  if (taken_ >= d_.shaping().max_messages_per_connection) return false;
  return d_.sending();
}

void DeliveryConnection::fill() noexcept {
  while (can_take()) {
    Slot* s = d_.take(this);
    if (s == nullptr) break;
    if (s->conn != this) continue;  // resolved locally (expired)
    s->cookie = d_.side().next_cookie();
    slots_.push_back(s);
    ++taken_;
  }
  if (slots_.empty() && state_ == State::Ready &&
      (stopping() || outdated() || taken_ >= d_.shaping().max_messages_per_connection ||
       !d_.sending())) {
    quit();
  }
  update_timeout();
}

void DeliveryConnection::slot_detached(Slot* s) noexcept {
  slots_.erase(std::remove(slots_.begin(), slots_.end(), s), slots_.end());
  s->conn = nullptr;
  if (slots_.empty() && state_ == State::Ready && stopping()) quit();
  update_timeout();
}

void DeliveryConnection::submit(Slot* s) noexcept {
  if (state_ != State::Ready || !session_) {
    slots_.erase(std::remove(slots_.begin(), slots_.end(), s), slots_.end());
    d_.requeue(s);
    return;
  }
  smtp::Transaction t;
  t.cookie = s->cookie;
  t.reverse_path = std::string(s->reverse_path);
  t.recipients.reserve(s->rcpt_data.size());
  for (const auto& r : s->rcpt_data) {
    smtp::OutgoingRecipient o;
    o.address = std::string(r.address);
    o.notify = smtp::NotifyFlags(r.notify);
    o.orcpt = std::string(r.orcpt);
    t.recipients.push_back(std::move(o));
  }
  t.envid = std::string(s->envid);
  t.ret = client_ret(s->ret);
  t.needs_smtputf8 = (s->flags & spool::kFlagSmtpUtf8) != 0;
  t.needs_8bitmime = (s->flags & spool::kFlag8BitMime) != 0;
  t.body = s->send;
  session_->submit(std::move(t));
  // A local decision (SIZE, SMTPUTF8, 8BITMIME) completes the transaction at once, and no
  // server reply will come to deliver that event: handle what the session has now.
  ByteBuffer none(0);
  drive(none);
}

void DeliveryConnection::quit() noexcept {
  if (!session_ || state_ == State::Quitting || state_ == State::Closing ||
      state_ == State::Closed) {
    return;
  }
  state_ = State::Quitting;
  session_->quit();
  flush();
  update_timeout();
}

void DeliveryConnection::flush() noexcept {
  if (conn_ == nullptr || !session_ || session_->output().empty()) return;
  if (conn_->output().empty()) {
    std::swap(conn_->output(), session_->output());  // a whole BDAT body: no copy
  } else {
    conn_->output().append(session_->output().view());
    session_->output().clear();
  }
  conn_->flush();
}

// Called after anything that may change what we wait for. Pumps call it often, so the
// same wait keeps its timer: a timer restarted on every call would never fire.
void DeliveryConnection::update_timeout() noexcept {
  if (conn_ == nullptr || !session_) return;
  Wait w;
  w.awaiting = session_->awaiting();
  w.replies = session_->replies();
  w.state = state_;
  w.busy = !slots_.empty();
  if (w.same(wait_)) return;
  const auto& del = d_.side().config().delivery;
  w.reply_limit = reply_limit(w.awaiting, state_ == State::Quitting, del).limit;
  if (w.reply_limit > Duration::zero()) {
    // A total for the reply; bytes arriving do not extend it, so no idle timer. Its time
    // starts once our output has left (on_drained, when it has not yet).
    if (idle_ != Duration::zero()) set_idle(Duration::zero());
    if (conn_->pending_output() == 0) {
      w.deadline = d_.side().env().clock().now() + w.reply_limit;
    }
  } else if (state_ == State::Closing) {
    set_idle(kFinWait);
  } else {
    // Between transactions: the pool's idle time; waiting for a body read: the longest.
    set_idle(state_ == State::Ready && slots_.empty() ? del.idle_timeout : del.data_done_timeout);
  }
  conn_->set_deadline(w.deadline);
  wait_ = w;
}

// Restarts the idle timer.
void DeliveryConnection::set_idle(Duration d) noexcept {
  idle_ = d;
  conn_->set_idle_timeout(d);
}

bool DeliveryConnection::on_idle_timeout(net::Connection&) noexcept {
  if (wait_.reply_limit == Duration::zero() && state_ == State::Ready && slots_.empty() &&
      session_) {
    quit();
    return true;  // QUIT goes out, then the connection closes
  }
  // A reply that did not come in time, or a server that stopped reading our data: the
  // connection closes at once (it cannot be trusted to be in step any more), reporting
  // which wait ran out.
  if (!timed_out_) timed_out_ = timeout_reply(d_.side().env().clock().now());
  if (timed_out_) log::debug("outbound: {}", timed_out_->text);
  return false;
}

// What a timeout reports: a reply whose deadline passed, or our data stalled; nothing for
// a wait of our own (the recipients then get the plain 451 4.4.2 of a lost connection).
std::optional<smtp::Reply> DeliveryConnection::timeout_reply(TimePoint now) const {
  const auto& del = d_.side().config().delivery;
  std::string why;
  if (now >= wait_.deadline) {
    const ReplyLimit l = reply_limit(wait_.awaiting, wait_.state == State::Quitting, del);
    why = fmt::format("waiting for {} ({} {})", l.what, l.key, format_duration(l.limit));
  } else if (conn_ != nullptr && conn_->pending_output() > 0) {
    why = fmt::format("sending message data (data_block_timeout {})",
                      format_duration(del.data_block_timeout));
  } else {
    return std::nullopt;
  }
  return smtp::Reply(451, {4, 4, 2},
                     fmt::format("conversation with {} [{}] timed out while {}", host_.name,
                                 host_.address.to_string(), why));
}

void DeliveryConnection::on_close(net::Connection& c, std::error_code why) noexcept {
  conn_ = nullptr;
  if (session_) {
    if (state_ == State::Greeting && tls_started_ && !tls_required_) {
      // RFC 7435 / RFC 3207 practice: a failed opportunistic handshake is retried in
      // plaintext (the next connection to this host skips STARTTLS for a while).
      d_.tls_failed(host_.address);
    } else if (auto tf = state_ == State::Greeting ? tls_failure_reply(c) : std::nullopt) {
      // Required TLS whose handshake (or certificate check) failed: next MX.
      d_.session_failed(*this, *tf, true, true);
    } else if (state_ == State::Greeting) {
      // Lost, or timed out, before the session was ready: count it against the host (next
      // MX).
      smtp::Reply r = timed_out_.value_or(smtp::Reply(
          451, {4, 4, 2},
          fmt::format("connection to {} [{}] lost before the session was ready{}{}", host_.name,
                      host_.address.to_string(), why ? ": " : "",
                      why ? why.message() : std::string())));
      d_.session_failed(*this, r, true, true);
    }
    session_->connection_lost(timed_out_);
    ByteBuffer none(0);
    // Every submitted transaction completes with a local 451 4.4.2.
    for (;;) {
      smtp::ClientEvent ev = session_->feed(none);
      if (ev.kind == smtp::ClientEventKind::None) break;
      if (ev.kind == smtp::ClientEventKind::TransactionDone) on_transaction(ev.result);
    }
  }
  // Slots still reading go back to the queue when their reads finish.
  for (Slot* s : slots_) s->conn = nullptr;
  slots_.clear();
  state_ = State::Closed;
  d_.connection_gone(this);
  delete this;
}

// A required handshake that failed (the connection closes before on_tls_ready): the
// reason wolfSSL gave, as the session's TLS outcome and the recipients' reply.
std::optional<smtp::Reply> DeliveryConnection::tls_failure_reply(const net::Connection& c) {
  if (!tls_started_ || !tls_required_ || outcome_ || timed_out_) return std::nullopt;
  const net::TlsSession* t = c.tls();
  std::string why = t != nullptr && !t->error().empty() ? t->error() : "the handshake failed";
  tls_decided(TlsOutcome::Failed, (verified_ ? "verify-failed: " : "starttls-failed: ") + why);
  return smtp::Reply(451, {4, 7, 5},
                     fmt::format("TLS with {} [{}] failed{}: {}", host_.name,
                                 host_.address.to_string(),
                                 verified_ ? " (certificate verified against the MX name)" : "",
                                 why));
}

void DeliveryConnection::tls_decided(TlsOutcome o, std::string failure) noexcept {
  if (o != TlsOutcome::Failed && !demand_.testing_failure.empty()) {
    o = TlsOutcome::TestingFailed;
    failure = demand_.testing_failure;
  } else if (o == TlsOutcome::None && demand_.sts_testing) {
    o = TlsOutcome::TestingFailed;
    failure = "starttls-failed: no TLS";
  }
  if (o == TlsOutcome::TestingFailed) {
    log::info("outbound: {} [{}]: MTA-STS policy (mode testing) not met, delivering all the "
              "same: {}", host_.name, host_.address.to_string(), failure);
  }
  outcome_ = o;
  tls_failure_ = std::move(failure);
  ++d_.side().stats().tls_outcomes[static_cast<std::size_t>(o)];
}

std::string DeliveryConnection::tls_policy() const {
  return outcome_ ? tls_policy_text(*outcome_, tls_failure_) : std::string();
}

std::string DeliveryConnection::tls_version() const {
  if (conn_ == nullptr || conn_->tls() == nullptr) return {};
  return conn_->tls()->version();
}

}  // namespace salvo::outbound
