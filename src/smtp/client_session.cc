// SPDX-License-Identifier: Apache-2.0
// ClientSession: greeting, EHLO (HELO fallback), STARTTLS, AUTH, then transactions either
// lock-step or pipelined (RFC 2920: MAIL, all RCPTs and DATA in one write; the body only
// after 354), optionally pipelined across messages. Replies are matched to what was sent
// through the expect_ queue; a reply nobody asked for is a protocol error
// (docs/reliability.md H10).
#include <salvo/smtp/client_session.h>

#include <charconv>

#include <salvo/smtp/data_codec.h>

#include "smtp/base64.h"

namespace salvo::smtp {
namespace {

Reply local_reply(std::uint16_t code, EnhancedStatus st, std::string_view text) {
  return Reply(code, st, text);
}

void append_u64(std::string& s, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
}

}  // namespace

ClientStats& ClientStats::operator+=(const ClientStats& o) noexcept {
  transactions += o.transactions;
  delivered += o.delivered;
  protocol_errors += o.protocol_errors;
  injected_octets += o.injected_octets;
  return *this;
}

std::size_t TransactionResult::accepted_recipients() const noexcept {
  std::size_t n = 0;
  for (const auto& r : rcpt_replies) n += r.code / 100 == 2 ? 1 : 0;
  return n;
}

ClientSession::ClientSession(ClientConfig config)
    : cfg_(std::move(config)), out_(4096), parser_(cfg_.reply_limits) {}

bool ClientSession::pipelining() const noexcept {
  return esmtp_ && cfg_.use_pipelining && caps_.extensions.has(Extension::Pipelining);
}

bool ClientSession::chunking() const noexcept {
  return esmtp_ && cfg_.use_chunking && caps_.extensions.has(Extension::Chunking);
}

bool ClientSession::idle() const noexcept {
  return phase_ == Phase::Ready && unfinished_ == 0 && expect_.empty();
}

void ClientSession::cmd(std::string_view s) {
  out_.append(s);
  out_.append("\r\n");
}

void ClientSession::push_event(ClientEvent ev) { events_.push_back(std::move(ev)); }

ClientEvent ClientSession::feed(ByteBuffer& in) {
  while (events_.empty() && phase_ != Phase::Done && phase_ != Phase::TlsHandshake) {
    auto status = parser_.parse(in, &reply_);
    if (status == ReplyParser::Status::NeedMore) break;
    if (status == ReplyParser::Status::Error) {
      ++stats_.protocol_errors;
      in.clear();
      fail(local_reply(451, {4, 5, 0}, "Protocol error: malformed reply from server"), true,
           false);
      break;
    }
    ++replies_;
    on_reply(reply_);
    if (discard_input_) {  // STARTTLS 220: anything else already received is injected
      discard_input_ = false;
      stats_.injected_octets += in.size();
      in.clear();
      parser_.reset();
    }
  }
  if (phase_ == Phase::Done || phase_ == Phase::TlsHandshake) in.clear();
  if (events_.empty()) return {};
  ClientEvent ev = std::move(events_.front());
  events_.pop_front();
  return ev;
}

void ClientSession::on_reply(const Reply& r) {
  if (r.code == 421 && phase_ != Phase::Quit) {  // service closing, at any point
    fail(r, false, false);
    return;
  }
  switch (phase_) {
    case Phase::Greeting: return on_greeting(r);
    case Phase::Ehlo: return on_ehlo(r);
    case Phase::Helo: return on_helo(r);
    case Phase::StartTls: return on_starttls(r);
    case Phase::Auth: return on_auth(r);
    case Phase::Ready: return on_transaction_reply(r);
    case Phase::Quit: {
      ClientEvent ev;
      ev.kind = ClientEventKind::Closed;
      ev.reply = r;
      push_event(std::move(ev));
      phase_ = Phase::Done;
      return;
    }
    case Phase::TlsHandshake:
    case Phase::Done:
      return;
  }
}

void ClientSession::on_greeting(const Reply& r) {
  if (r.code != 220) {
    fail(r, false, true);
    return;
  }
  send_ehlo();
}

void ClientSession::send_ehlo() {
  line_.assign("EHLO ");
  line_.append(cfg_.helo_name);
  cmd(line_);
  phase_ = Phase::Ehlo;
}

void ClientSession::on_ehlo(const Reply& r) {
  if (r.code == 250) {
    caps_ = parse_ehlo_reply(r);
    esmtp_ = true;
    after_handshake();
    return;
  }
  if (r.permanent() && !tls_) {  // RFC 5321 §3.2: fall back to HELO
    line_.assign("HELO ");
    line_.append(cfg_.helo_name);
    cmd(line_);
    phase_ = Phase::Helo;
    return;
  }
  fail(r, false, true);
}

void ClientSession::on_helo(const Reply& r) {
  if (r.code != 250) {
    fail(r, false, true);
    return;
  }
  caps_ = ServerCapabilities();
  esmtp_ = false;
  after_handshake();
}

void ClientSession::after_handshake() {
  if (!tls_ && cfg_.tls != TlsPolicy::Off && !tls_declined_) {
    if (caps_.extensions.has(Extension::StartTls)) {
      cmd("STARTTLS");
      phase_ = Phase::StartTls;
      return;
    }
    if (cfg_.tls == TlsPolicy::Required) {
      fail(local_reply(451, {4, 7, 0}, "TLS required but STARTTLS not offered"), true, true);
      return;
    }
  }
  if (cfg_.auth && !authenticated_) {
    start_auth();
    return;
  }
  phase_ = Phase::Ready;
  if (!ready_sent_) {
    ready_sent_ = true;
    ClientEvent ev;
    ev.kind = ClientEventKind::Ready;
    push_event(std::move(ev));
  }
  pump();
}

void ClientSession::on_starttls(const Reply& r) {
  if (r.code == 220) {
    phase_ = Phase::TlsHandshake;
    discard_input_ = true;
    ClientEvent ev;
    ev.kind = ClientEventKind::NeedTls;
    ev.reply = r;
    push_event(std::move(ev));
    return;
  }
  if (cfg_.tls == TlsPolicy::Required) {
    fail(r, false, true);
    return;
  }
  tls_declined_ = true;  // opportunistic: carry on in plaintext
  after_handshake();
}

void ClientSession::tls_established() {
  if (phase_ != Phase::TlsHandshake) return;
  tls_ = true;
  caps_ = ServerCapabilities();  // RFC 3207 §4.2: forget what the server said
  parser_.reset();
  send_ehlo();
}

void ClientSession::start_auth() {
  if (cfg_.auth_requires_tls && !tls_) {
    fail(local_reply(451, {4, 7, 0}, "Refusing to send credentials without TLS"), true, true);
    return;
  }
  const ClientCredentials& c = *cfg_.auth;
  std::string b64;
  if (caps_.auth.has(AuthMechanism::Plain)) {
    std::string msg = c.authzid;
    msg.push_back('\0');
    msg.append(c.user);
    msg.push_back('\0');
    msg.append(c.password);
    base64_encode(msg, &b64);
    line_.assign("AUTH PLAIN ");
    line_.append(b64);
    cmd(line_);
    auth_stage_ = 0;
  } else if (caps_.auth.has(AuthMechanism::Login)) {
    cmd("AUTH LOGIN");
    auth_stage_ = 1;
  } else {
    fail(local_reply(451, {4, 7, 0}, "Server offers no usable AUTH mechanism"), true, true);
    return;
  }
  phase_ = Phase::Auth;
}

void ClientSession::on_auth(const Reply& r) {
  if (r.code == 235) {
    authenticated_ = true;
    after_handshake();
    return;
  }
  if (r.code == 334 && (auth_stage_ == 1 || auth_stage_ == 2)) {
    std::string b64;
    base64_encode(auth_stage_ == 1 ? cfg_.auth->user : cfg_.auth->password, &b64);
    cmd(b64);
    ++auth_stage_;
    return;
  }
  if (r.code == 334) cmd("*");  // a challenge we did not expect: cancel
  fail(r, r.code == 334, true);
}

void ClientSession::submit(Transaction txn) {
  Active& a = txns_.emplace_back();
  ++unfinished_;
  a.result.cookie = txn.cookie;
  a.txn = std::move(txn);
  if (phase_ == Phase::Ready) pump();
}

void ClientSession::quit() {
  quit_requested_ = true;
  if (phase_ == Phase::Ready) pump();
}

std::optional<Reply> ClientSession::local_check(const Transaction& t) const {
  if (t.recipients.empty()) return local_reply(554, {5, 5, 1}, "No recipients");
  if (find_bare_line_ending(t.body) != std::string_view::npos)
    return local_reply(554, {5, 6, 0}, "Message contains a bare CR or LF");
  if (t.needs_smtputf8 && !caps_.extensions.has(Extension::SmtpUtf8))
    return local_reply(553, {5, 6, 7}, "Remote server does not support SMTPUTF8");
  if (t.needs_8bitmime && !caps_.extensions.has(Extension::EightBitMime))
    return local_reply(554, {5, 6, 3}, "Remote server does not support 8BITMIME");
  std::uint64_t size = t.body.size() + (t.body.empty() || t.body.ends_with("\r\n") ? 0 : 2);
  if (caps_.extensions.has(Extension::Size) && caps_.max_size != 0 && size > caps_.max_size)
    return local_reply(552, {5, 3, 4}, "Message size exceeds remote server limit");
  return std::nullopt;
}

void ClientSession::pump() {
  if (phase_ != Phase::Ready) return;
  while (true) {
    while (!txns_.empty() && txns_.front().finished) txns_.pop_front();
    Active* next = nullptr;
    bool busy = false;         // a started transaction is unfinished
    bool all_sent = true;      // every started unfinished one has its body out
    bool chunked_busy = false;
    for (Active& a : txns_) {
      if (a.finished) continue;
      if (!a.started) {
        next = &a;
        break;
      }
      busy = true;
      all_sent &= a.data_sent;
      chunked_busy |= a.chunked;
    }
    if (next == nullptr) break;
    if (!pipelining()) {
      if (busy || !expect_.empty()) break;
    } else if (busy && !(cfg_.pipeline_across_messages && all_sent)) {
      break;
    }
    if (auto r = local_check(next->txn)) {
      next->started = true;
      finish(*next, *r, true);
      continue;
    }
    if (need_rset_ || chunked_busy) {
      cmd("RSET");
      expect_.push_back({Expect::Rset, 0, nullptr});
      need_rset_ = false;
      if (!pipelining()) break;  // lock-step: wait for the RSET reply
    }
    start_transaction(*next);
  }
  if (quit_requested_ && !quit_sent_ && unfinished_ == 0 && expect_.empty()) {
    cmd("QUIT");
    quit_sent_ = true;
    phase_ = Phase::Quit;
  }
}

void ClientSession::write_mail(const Transaction& t) {
  line_.assign("MAIL FROM:<");
  line_.append(t.reverse_path);
  line_.push_back('>');
  if (caps_.extensions.has(Extension::Size)) {
    line_.append(" SIZE=");
    append_u64(line_, t.body.size());
  }
  if (t.needs_8bitmime) line_.append(" BODY=8BITMIME");
  if (t.needs_smtputf8) line_.append(" SMTPUTF8");
  if (caps_.extensions.has(Extension::Dsn)) {
    if (t.ret == DsnRet::Full) line_.append(" RET=FULL");
    if (t.ret == DsnRet::Hdrs) line_.append(" RET=HDRS");
    if (!t.envid.empty()) {
      line_.append(" ENVID=");
      line_.append(t.envid);
    }
  }
  cmd(line_);
}

void ClientSession::write_rcpt(const OutgoingRecipient& r) {
  line_.assign("RCPT TO:<");
  line_.append(r.address);
  line_.push_back('>');
  if (caps_.extensions.has(Extension::Dsn)) {
    if (!r.notify.empty()) {
      line_.append(" NOTIFY=");
      line_.append(r.notify.to_string());
    }
    if (!r.orcpt.empty()) {
      line_.append(" ORCPT=");
      line_.append(r.orcpt);
    }
  }
  cmd(line_);
}

void ClientSession::write_body(Active& a) {
  std::string_view body = a.txn.body;
  const bool add_crlf = !body.empty() && !body.ends_with("\r\n");
  if (a.chunked) {
    line_.assign("BDAT ");
    append_u64(line_, body.size() + (add_crlf ? 2 : 0));
    line_.append(" LAST");
    cmd(line_);
    out_.append(body);
    if (add_crlf) out_.append("\r\n");
    expect_.push_back({Expect::Bdat, 0, &a});
  } else {
    dot_stuff(body, out_);
    expect_.push_back({Expect::DataEnd, 0, &a});
  }
  a.data_sent = true;
}

void ClientSession::start_transaction(Active& a) {
  a.started = true;
  a.chunked = chunking();
  a.result.rcpt_replies.assign(a.txn.recipients.size(), Reply());
  ++stats_.transactions;
  write_mail(a.txn);
  expect_.push_back({Expect::Mail, 0, &a});
  if (!pipelining()) return;
  for (std::uint32_t i = 0; i < a.txn.recipients.size(); ++i) {
    write_rcpt(a.txn.recipients[i]);
    expect_.push_back({Expect::Rcpt, i, &a});
  }
  if (a.chunked) {
    write_body(a);  // BDAT may be pipelined with the envelope (RFC 3030 §4.2)
  } else {
    cmd("DATA");
    expect_.push_back({Expect::Data, 0, &a});
  }
}

// Lock-step: the next command after a positive MAIL or RCPT reply.
void ClientSession::next_step(Active& a) {
  std::size_t done = 0;
  for (const auto& r : a.result.rcpt_replies) done += r.code != 0 ? 1 : 0;
  if (done < a.txn.recipients.size()) {
    write_rcpt(a.txn.recipients[done]);
    expect_.push_back({Expect::Rcpt, static_cast<std::uint32_t>(done), &a});
    return;
  }
  if (a.accepted == 0) {
    need_rset_ = true;
    finish(a, a.result.rcpt_replies.back(), false);
    return;
  }
  if (a.chunked) {
    write_body(a);
  } else {
    cmd("DATA");
    expect_.push_back({Expect::Data, 0, &a});
  }
}

void ClientSession::on_transaction_reply(const Reply& r) {
  if (expect_.empty()) {
    ++stats_.protocol_errors;
    fail(local_reply(451, {4, 5, 0}, "Protocol error: unexpected reply from server"), true, false);
    return;
  }
  Pending p = expect_.front();
  expect_.pop_front();
  const bool lockstep = !pipelining();
  switch (p.what) {
    case Expect::Rset:
    case Expect::AuthStep:
      break;
    case Expect::Mail: {
      Active& a = *p.txn;
      a.result.mail_reply = r;
      if (lockstep) {
        if (r.code / 100 != 2) {
          finish(a, r, false);
        } else {
          next_step(a);
        }
      }
      break;
    }
    case Expect::Rcpt: {
      Active& a = *p.txn;
      a.result.rcpt_replies[p.index] = r;
      if (r.code / 100 == 2) ++a.accepted;
      if (lockstep) next_step(a);
      break;
    }
    case Expect::Data: {
      Active& a = *p.txn;
      const bool mail_ok = a.result.mail_reply.code / 100 == 2;
      if (r.code == 354) {
        if (mail_ok && a.accepted > 0) {
          write_body(a);
        } else {  // a 354 with nothing accepted: end the empty message at once
          out_.append(".\r\n");
          expect_.push_back({Expect::DataEnd, 0, &a});
          a.data_sent = true;
          a.result.final_reply = local_reply(554, {5, 5, 1}, "No valid recipients");
        }
        break;
      }
      if (r.code / 100 == 2) {  // DATA "accepted" without 354 (reliability H20)
        ++stats_.protocol_errors;
        fail(local_reply(451, {4, 5, 0}, "Protocol error: DATA not answered with 354"), true,
             false);
        return;
      }
      if (mail_ok) need_rset_ = true;
      finish(a, mail_ok ? r : a.result.mail_reply, false);
      break;
    }
    case Expect::DataEnd: {
      Active& a = *p.txn;
      if (a.result.final_reply.code != 0) {  // local decision made at 354 time
        Reply local = a.result.final_reply;
        finish(a, local, true);
      } else {
        finish(a, r, false);
      }
      break;
    }
    case Expect::Bdat: {
      Active& a = *p.txn;
      const bool mail_ok = a.result.mail_reply.code / 100 == 2;
      if (!r.positive() && mail_ok) need_rset_ = true;
      finish(a, mail_ok ? r : a.result.mail_reply, false);
      break;
    }
  }
  pump();
}

void ClientSession::finish(Active& a, const Reply& r, bool local) {
  a.result.final_reply = r;
  a.result.local = local;
  a.finished = true;
  --unfinished_;
  if (a.result.delivered()) ++stats_.delivered;
  ClientEvent ev;
  ev.kind = ClientEventKind::TransactionDone;
  ev.result = std::move(a.result);
  push_event(std::move(ev));
}

void ClientSession::fail(const Reply& r, bool local, bool send_quit) {
  for (Active& a : txns_)
    if (!a.finished) finish(a, r, local);
  txns_.clear();
  expect_.clear();
  if (send_quit && !quit_sent_) {
    cmd("QUIT");
    quit_sent_ = true;
  }
  ClientEvent ev;
  ev.kind = ClientEventKind::Failed;
  ev.reply = r;
  ev.local = local;
  push_event(std::move(ev));
  phase_ = Phase::Done;
}

void ClientSession::connection_lost(std::optional<Reply> why) {
  if (phase_ == Phase::Done) return;
  if (phase_ == Phase::Quit && unfinished_ == 0) {
    ClientEvent ev;
    ev.kind = ClientEventKind::Closed;
    ev.reply = local_reply(451, {4, 4, 2}, "Connection closed by server");
    push_event(std::move(ev));
    phase_ = Phase::Done;
    return;
  }
  fail(why ? *why : local_reply(451, {4, 4, 2}, "Connection lost"), true, false);
}

Awaiting ClientSession::awaiting() const noexcept {
  switch (phase_) {
    case Phase::Greeting: return Awaiting::Greeting;
    case Phase::Ehlo:
    case Phase::Helo: return Awaiting::Helo;
    case Phase::StartTls:
    case Phase::TlsHandshake: return Awaiting::StartTls;
    default: break;
  }
  if (expect_.empty()) return Awaiting::Nothing;
  switch (expect_.front().what) {
    case Expect::Mail: return Awaiting::Mail;
    case Expect::Rcpt: return Awaiting::Rcpt;
    case Expect::Data: return Awaiting::Data;
    case Expect::DataEnd:
    case Expect::Bdat: return Awaiting::DataEnd;
    default: return Awaiting::Other;
  }
}

}  // namespace salvo::smtp
