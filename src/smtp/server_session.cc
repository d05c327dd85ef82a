// SPDX-License-Identifier: Apache-2.0
// ServerSession: framing of command lines, the command state machine and DATA/BDAT.
// AUTH and STARTTLS are in server_auth.cc. Invariants:
//  - a line is only ever ended by CRLF; longer than the limit -> discard to CRLF, one 500;
//  - nothing is processed while a message awaits complete_message() or TLS is pending;
//  - every error reply counts towards the hard error limit (421 4.7.0 and close).
#include <salvo/smtp/server_session.h>

#include <charconv>
#include <cstring>

#include <salvo/base/assert.h>

#include "smtp/ascii.h"

namespace salvo::smtp {
namespace {

constexpr EnhancedStatus kNoStatus{};
constexpr EnhancedStatus st(std::uint8_t k, std::uint16_t s, std::uint16_t d) {
  return EnhancedStatus{k, s, d};
}
constexpr std::size_t kAuthCommandOverhead = 32;  // "AUTH " + mechanism + " "
constexpr std::size_t kKeepBodyCapacity = 256 * 1024;

// Position of the LF of the first CRLF in v[from, limit), or npos.
std::size_t find_crlf(std::string_view v, std::size_t from, std::size_t limit) noexcept {
  if (limit > v.size()) limit = v.size();
  std::size_t pos = from;
  while (pos < limit) {
    const void* p = std::memchr(v.data() + pos, '\n', limit - pos);
    if (p == nullptr) return std::string_view::npos;
    std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(p) - v.data());
    if (nl > 0 && v[nl - 1] == '\r') return nl;
    pos = nl + 1;
  }
  return std::string_view::npos;
}

}  // namespace

ServerStats& ServerStats::operator+=(const ServerStats& o) noexcept {
  commands += o.commands;
  errors += o.errors;
  messages += o.messages;
  messages_refused += o.messages_refused;
  body_octets += o.body_octets;
  sync_violations += o.sync_violations;
  injected_octets += o.injected_octets;
  return *this;
}

ServerSession::ServerSession(const ServerConfig& config, ServerPolicy& policy)
    : cfg_(config), policy_(policy), out_(1024), body_(config.keep_body ? 4096 : 0) {
  ContentLimits limits{cfg_.max_message_size, kMaxTextLine};
  data_.set_limits(limits);
  bdat_.set_limits(limits);
}

void ServerSession::reply(std::uint16_t code, EnhancedStatus status, std::string_view text) {
  reply_to(sink(), code, status, text);
}

void ServerSession::reply_to(ByteBuffer& out, std::uint16_t code, EnhancedStatus status,
                             std::string_view text) {
  char head[24];
  std::size_t n = 0;
  head[n++] = static_cast<char>('0' + code / 100 % 10);
  head[n++] = static_cast<char>('0' + code / 10 % 10);
  head[n++] = static_cast<char>('0' + code % 10);
  head[n++] = ' ';
  if (status.present()) {
    head[n++] = static_cast<char>('0' + status.klass);
    head[n++] = '.';
    n = static_cast<std::size_t>(std::to_chars(head + n, head + sizeof head, status.subject).ptr - head);
    head[n++] = '.';
    n = static_cast<std::size_t>(std::to_chars(head + n, head + sizeof head, status.detail).ptr - head);
    head[n++] = ' ';
  }
  auto w = out.prepare(n + text.size() + 2);
  std::memcpy(w.data(), head, n);
  if (!text.empty()) std::memcpy(w.data() + n, text.data(), text.size());
  std::memcpy(w.data() + n + text.size(), "\r\n", 2);
  out.commit(n + text.size() + 2);
}

void ServerSession::greet() {
  if (phase_ != Phase::Fresh) return;
  scratch_.assign(cfg_.hostname);
  scratch_.push_back(' ');
  scratch_.append(cfg_.greeting);
  reply(220, kNoStatus, scratch_);
  phase_ = Phase::Command;
}

ServerEvent ServerSession::error(std::uint16_t code, EnhancedStatus status,
                                 std::string_view text) {
  reply(code, status, text);
  return count_error();
}

ServerEvent ServerSession::count_error() {
  ++stats_.errors;
  if (++errors_ >= cfg_.hard_error_limit) {
    scratch_.assign(cfg_.hostname);
    scratch_.append(" Error: too many errors");
    return close_with(421, st(4, 7, 0), scratch_);
  }
  return ServerEvent::None;
}

ServerEvent ServerSession::policy_reject(const Reply& r) {
  r.append_to(sink());
  return count_error();
}

ServerEvent ServerSession::close_with(std::uint16_t code, EnhancedStatus status,
                                      std::string_view text) {
  reply(code, status, text);
  phase_ = Phase::Closed;
  return ServerEvent::Close;
}

void ServerSession::shutdown(std::string_view why) {
  if (phase_ == Phase::Closed) return;
  scratch_.assign(cfg_.hostname);
  scratch_.push_back(' ');
  scratch_.append(why);
  reply(421, st(4, 4, 2), scratch_);
  phase_ = Phase::Closed;
}

void ServerSession::reset_transaction() noexcept {
  in_mail_ = false;
  bdat_used_ = false;
  bdat_last_ = false;
  bdat_failed_ = false;
  env_.reverse_path.clear();
  for (auto& r : env_.recipients) {
    if (spare_addresses_.size() >= cfg_.max_recipients) break;
    spare_addresses_.push_back(std::move(r.address));
  }
  env_.recipients.clear();
  env_.envid.clear();
  env_.auth.clear();
  env_.ret = DsnRet::Unspecified;
  env_.body_type = BodyType::Unspecified;
  env_.smtputf8 = false;
  env_.declared_size_given = false;
  env_.declared_size = 0;
  env_.via_bdat = false;
  rcpt_attempts_ = 0;
  body_.clear();
  body_.shrink_if_empty(kKeepBodyCapacity);
  body_size_ = 0;
}

ServerEvent ServerSession::feed(ByteBuffer& in) {
  while (true) {
    ServerEvent ev = ServerEvent::None;
    switch (phase_) {
      case Phase::Fresh:
      case Phase::AwaitCompletion:
      case Phase::TlsPending:
        return ServerEvent::None;
      case Phase::Closed:
        in.clear();
        return ServerEvent::Close;
      case Phase::Data:
        if (in.empty()) return ServerEvent::None;
        ev = feed_data(in);
        break;
      case Phase::Bdat:
        ev = feed_bdat(in);
        if (ev == ServerEvent::None && phase_ == Phase::Bdat) return ev;
        break;
      case Phase::BdatSkip:
        ev = feed_bdat_skip(in);
        if (ev == ServerEvent::None && phase_ == Phase::BdatSkip) return ev;
        break;
      case Phase::Command:
      case Phase::AuthResponse: {
        if (in.empty()) return ServerEvent::None;
        blocked_ = phase_ == Phase::Command && !held_.empty() && !discarding_ &&
                   must_wait(in.view());
        if (blocked_) return ServerEvent::None;
        const std::size_t before = in.size();
        const Phase phase = phase_;
        ev = feed_line(in);
        if (ev == ServerEvent::None && in.size() == before && phase_ == phase) return ev;
        break;
      }
    }
    if (ev == ServerEvent::Close) in.clear();  // nothing after QUIT/421/554 is read
    if (ev != ServerEvent::None) return ev;
  }
}

std::size_t ServerSession::line_limit(std::string_view pending) const noexcept {
  if (phase_ == Phase::AuthResponse) return kMaxAuthLine + 2;
  if (istarts_with(pending, "AUTH ")) return kMaxAuthLine + 2 + kAuthCommandOverhead;
  // RFC 3461 §4 / RFC 4954 §5: ENVID (100), AUTH= and ORCPT (500) lengthen MAIL and RCPT.
  if (istarts_with(pending, "MAIL ")) return kMaxCommandLine + kMaxEnvid + kMaxOrcpt;
  if (istarts_with(pending, "RCPT ")) return kMaxCommandLine + kMaxOrcpt;
  return kMaxCommandLine;
}

ServerEvent ServerSession::feed_line(ByteBuffer& in) {
  std::string_view v = in.view();
  if (discarding_) {
    std::size_t end = std::string_view::npos;
    if (discard_cr_ && v[0] == '\n') {
      end = 0;
    } else {
      end = find_crlf(v, 0, v.size());
    }
    if (end == std::string_view::npos) {
      discard_cr_ = v.back() == '\r';
      in.clear();
      return ServerEvent::None;
    }
    in.consume(end + 1);
    discarding_ = false;
    discard_cr_ = false;
    if (discard_auth_) {
      discard_auth_ = false;
      phase_ = Phase::Command;
      auth_step_ = AuthStep::None;
      return error(500, st(5, 5, 6), "Error: authentication exchange line is too long");
    }
    return error(500, st(5, 5, 2), "Error: line too long");
  }
  const std::size_t limit = line_limit(v);
  std::size_t nl = find_crlf(v, 0, limit);
  if (nl == std::string_view::npos) {
    if (v.size() < limit) return ServerEvent::None;  // wait for the rest of the line
    discarding_ = true;
    discard_cr_ = false;
    discard_auth_ = phase_ == Phase::AuthResponse || istarts_with(v, "AUTH ");
    // The CRLF may already be buffered past the limit: the discard branch finds it.
    in.consume(limit - 1);  // keep the last byte: it may be the CR of the CRLF
    return ServerEvent::None;
  }
  std::string_view line = v.substr(0, nl - 1);
  in.consume(nl + 1);  // the view stays valid: consume never moves or frees bytes
  if (phase_ == Phase::AuthResponse) return on_auth_response(line);
  return process_line(line, in);
}

ServerEvent ServerSession::process_line(std::string_view line, ByteBuffer& in) {
  ++stats_.commands;
  CommandOptions opts;
  opts.extensions = esmtp_ ? cfg_.extensions : ExtensionSet();
  if (esmtp_ && auth_offered()) opts.extensions.add(Extension::Auth);
  opts.max_message_size = cfg_.max_message_size;
  opts.transaction_smtputf8 = in_mail_ && env_.smtputf8;
  CommandError err;
  if (!parse_command(line, opts, &cmd_, &err)) {
    if (err.fatal) {
      in.clear();
      return close_with(err.code, err.status, err.text);
    }
    return error(err.code, err.status, err.text);
  }
  return on_command(cmd_, in);
}

ServerEvent ServerSession::on_command(const Command& c, ByteBuffer& in) {
  switch (c.verb) {
    case Verb::Helo: return on_ehlo(c, false);
    case Verb::Ehlo: return on_ehlo(c, true);
    case Verb::Mail: return on_mail(c);
    case Verb::Rcpt: return on_rcpt(c);
    case Verb::Data: return on_data(in);
    case Verb::Bdat: return on_bdat(c);
    case Verb::Rset:
      reset_transaction();
      reply(250, st(2, 0, 0), "Ok");
      return ServerEvent::None;
    case Verb::Noop:
      reply(250, st(2, 0, 0), "Ok");
      return ServerEvent::None;
    case Verb::Quit:
      return close_with(221, st(2, 0, 0), "Bye");
    case Verb::Vrfy:
      reply(252, st(2, 0, 0), "Cannot VRFY user, but will accept message and attempt delivery");
      return ServerEvent::None;
    case Verb::Help:
      reply(214, st(2, 0, 0), "See https://www.rfc-editor.org/rfc/rfc5321");
      return ServerEvent::None;
    case Verb::StartTls: return on_starttls(c, in);
    case Verb::Auth: return on_auth(c);
    case Verb::Expn:
    case Verb::Etrn:
    case Verb::Turn:
    case Verb::Unknown:
      break;
  }
  return error(502, st(5, 5, 1), "Error: command not implemented");
}

void ServerSession::write_ehlo_reply() {
  auto line = [this](std::string_view text, bool last) {
    ByteBuffer& out = sink();
    out.append(last ? "250 " : "250-");
    out.append(text);
    out.append("\r\n");
  };
  const ExtensionSet ext = cfg_.extensions;
  const bool starttls = cfg_.starttls_available && !tls_;
  const bool auth = auth_offered();
  struct Item {
    bool on;
    std::string_view text;
  };
  char size_buf[32] = "SIZE";
  std::size_t size_len = 4;
  if (cfg_.max_message_size != 0) {
    size_buf[size_len++] = ' ';
    size_len = static_cast<std::size_t>(
        std::to_chars(size_buf + size_len, size_buf + sizeof size_buf, cfg_.max_message_size).ptr -
        size_buf);
  }
  std::string_view auth_line;
  if (cfg_.auth_mechanisms.has(AuthMechanism::Plain) && cfg_.auth_mechanisms.has(AuthMechanism::Login)) {
    auth_line = "AUTH PLAIN LOGIN";
  } else if (cfg_.auth_mechanisms.has(AuthMechanism::Plain)) {
    auth_line = "AUTH PLAIN";
  } else {
    auth_line = "AUTH LOGIN";
  }
  const Item items[] = {
      {ext.has(Extension::Pipelining), "PIPELINING"},
      {ext.has(Extension::Size), std::string_view(size_buf, size_len)},
      {ext.has(Extension::EightBitMime), "8BITMIME"},
      {ext.has(Extension::SmtpUtf8), "SMTPUTF8"},
      {ext.has(Extension::EnhancedStatusCodes), "ENHANCEDSTATUSCODES"},
      {ext.has(Extension::Dsn), "DSN"},
      {ext.has(Extension::Chunking), "CHUNKING"},
      {starttls, "STARTTLS"},
      {auth, auth_line},
  };
  std::size_t last = 0;
  for (std::size_t i = 0; i < std::size(items); ++i)
    if (items[i].on) last = i + 1;
  line(cfg_.hostname, last == 0);
  for (std::size_t i = 0; i < std::size(items); ++i)
    if (items[i].on) line(items[i].text, i + 1 == last);
}

ServerEvent ServerSession::on_ehlo(const Command& c, bool extended) {
  if (auto r = policy_.on_helo(*this, c.argument)) return policy_reject(*r);
  reset_transaction();
  helo_.assign(c.argument);
  helo_done_ = true;
  esmtp_ = extended;
  if (extended) {
    write_ehlo_reply();
  } else {
    reply(250, kNoStatus, cfg_.hostname);
  }
  return ServerEvent::None;
}

ServerEvent ServerSession::on_mail(const Command& c) {
  if (!helo_done_) return error(503, st(5, 5, 1), "Error: send HELO/EHLO first");
  if (in_mail_) return error(503, st(5, 5, 1), "Error: nested MAIL command");
  if (auto r = policy_.on_mail(*this, c.path, c.mail)) return policy_reject(*r);
  reset_transaction();
  in_mail_ = true;
  c.path.append_mailbox(env_.reverse_path);
  env_.envid.assign(c.mail.envid);
  env_.auth.assign(c.mail.auth);
  env_.ret = c.mail.ret;
  env_.body_type = c.mail.body;
  env_.smtputf8 = c.mail.smtputf8;
  env_.declared_size_given = c.mail.has_size;
  env_.declared_size = c.mail.size;
  reply(250, st(2, 1, 0), "Ok");
  return ServerEvent::None;
}

ServerEvent ServerSession::on_rcpt(const Command& c) {
  if (!in_mail_) return error(503, st(5, 5, 1), "Error: need MAIL command");
  ++rcpt_attempts_;
  if (env_.recipients.size() >= cfg_.max_recipients)
    return error(452, st(4, 5, 3), "Error: too many recipients");
  if (auto r = policy_.on_rcpt(*this, c.path, c.rcpt)) return policy_reject(*r);
  EnvelopeRecipient& rcpt = env_.recipients.emplace_back();
  if (!spare_addresses_.empty()) {
    rcpt.address = std::move(spare_addresses_.back());
    spare_addresses_.pop_back();
    rcpt.address.clear();
  }
  c.path.append_mailbox(rcpt.address);
  rcpt.notify = c.rcpt.notify;
  rcpt.orcpt.assign(c.rcpt.orcpt);
  reply(250, st(2, 1, 5), "Ok");
  return ServerEvent::None;
}

ServerEvent ServerSession::on_data(ByteBuffer& in) {
  if (!in_mail_) return error(503, st(5, 5, 1), "Error: need MAIL command");
  if (bdat_used_) return error(503, st(5, 5, 1), "Error: DATA after BDAT");
  if (env_.recipients.empty()) {
    if (rcpt_attempts_ > 0) return error(554, st(5, 5, 1), "Error: no valid recipients");
    return error(503, st(5, 5, 1), "Error: need RCPT command");
  }
  if (!in.empty()) {  // content before the 354 (RFC 2920 §3.1; smuggling defence)
    ++stats_.sync_violations;
    in.clear();
    return close_with(554, st(5, 5, 0), "Error: SMTP protocol synchronization");
  }
  reply(354, kNoStatus, "End data with <CR><LF>.<CR><LF>");
  data_.reset();
  body_.clear();
  phase_ = Phase::Data;
  return ServerEvent::None;
}

ServerEvent ServerSession::feed_data(ByteBuffer& in) {
  std::size_t used = 0;
  auto status = data_.decode(in.view(), &used, cfg_.keep_body ? &body_ : nullptr);
  in.consume(used);
  if (status == DataDecoder::Status::NeedMore) return ServerEvent::None;
  body_size_ = data_.size();
  return end_of_message(data_.error());
}

ServerEvent ServerSession::end_of_message(ContentError err) {
  stats_.body_octets += body_size_;
  phase_ = Phase::Command;
  if (err != ContentError::None) {
    ++stats_.messages_refused;
    reset_transaction();
    switch (err) {
      case ContentError::BareCr: return error(550, st(5, 5, 2), "Error: bare <CR> received");
      case ContentError::BareLf: return error(550, st(5, 5, 2), "Error: bare <LF> received");
      case ContentError::Nul: return error(554, st(5, 6, 0), "Error: NUL character in message");
      case ContentError::LineTooLong: return error(500, st(5, 5, 2), "Error: message line too long");
      case ContentError::TooBig:
      case ContentError::None: break;
    }
    return error(552, st(5, 3, 4), "Error: message file too big");
  }
  ++stats_.messages;
  phase_ = Phase::AwaitCompletion;
  return ServerEvent::MessageReady;
}

void ServerSession::complete_message(const Reply& r) {
  if (phase_ != Phase::AwaitCompletion) {
    SALVO_BUG("ServerSession::complete_message without a pending message");
    return;
  }
  r.append_to(sink());
  if (r.positive()) errors_ = 0;
  reset_transaction();
  phase_ = Phase::Command;
}

void ServerSession::defer_completion() {
  if (phase_ != Phase::AwaitCompletion || cfg_.max_deferred_completions == 0) {
    SALVO_BUG("ServerSession::defer_completion without a pending message");
    return;
  }
  held_.emplace_back(256);
  reset_transaction();
  phase_ = Phase::Command;
}

void ServerSession::complete_deferred(std::uint16_t code, EnhancedStatus status,
                                      std::string_view text) {
  if (held_.empty()) {
    SALVO_BUG("ServerSession::complete_deferred without a deferred message");
    return;
  }
  // The oldest deferred answer goes out now, then what was held behind it.
  reply_to(out_, code, status, text);
  out_.append(held_.front().view());
  held_.pop_front();
  blocked_ = false;  // the next feed() decides again
  if (code / 100 == 2) errors_ = 0;
}

std::size_t ServerSession::held_bytes() const noexcept {
  std::size_t n = 0;
  for (const auto& h : held_) n += h.size();  // at most max_deferred_completions
  return n;
}

bool ServerSession::must_wait(std::string_view buffered) const noexcept {
  if (held_.size() >= cfg_.max_deferred_completions) return true;
  // A command whose effect needs every earlier reply out first; and AUTH when the driver
  // may hold its refusal (nothing may be owed behind a held reply).
  return istarts_with(buffered, "STARTTLS") || istarts_with(buffered, "QUIT") ||
         (cfg_.pause_after_auth_failure && istarts_with(buffered, "AUTH"));
}

void ServerSession::complete_message(std::uint16_t code, EnhancedStatus status,
                                     std::string_view text) {
  if (phase_ != Phase::AwaitCompletion) {
    SALVO_BUG("ServerSession::complete_message without a pending message");
    return;
  }
  reply(code, status, text);
  // The hard error limit counts errors "without delivering mail" (Postfix
  // smtpd_hard_error_limit): a client whose mail is accepted starts afresh, so policy
  // rejections of some recipients do not end a busy bulk session.
  if (code / 100 == 2) errors_ = 0;
  reset_transaction();
  phase_ = Phase::Command;
}

ServerEvent ServerSession::skip_bdat(const Command& c, std::uint16_t code, EnhancedStatus status,
                                     std::string_view text) {
  skip_reply_.code = code;
  skip_reply_.status = status;
  skip_reply_.text = text;
  bdat_remaining_ = c.bdat_size;
  phase_ = Phase::BdatSkip;
  return ServerEvent::None;
}

ServerEvent ServerSession::on_bdat(const Command& c) {
  if (cfg_.max_message_size != 0 && c.bdat_size > cfg_.max_message_size) {
    // Too big to read and drop: the peer cannot be resynchronised cheaply.
    return close_with(552, st(5, 3, 4), "Error: message file too big");
  }
  if (cfg_.max_message_size != 0 && bdat_used_ &&
      c.bdat_size > cfg_.max_message_size - bdat_.size()) {
    ++stats_.messages_refused;
    reset_transaction();
    return skip_bdat(c, 552, st(5, 3, 4), "Error: message file too big");
  }
  if (!esmtp_ || !cfg_.extensions.has(Extension::Chunking))
    return skip_bdat(c, 502, st(5, 5, 1), "Error: command not implemented");
  if (!in_mail_) return skip_bdat(c, 503, st(5, 5, 1), "Error: need MAIL command");
  if (env_.recipients.empty()) {
    if (rcpt_attempts_ > 0) return skip_bdat(c, 554, st(5, 5, 1), "Error: no valid recipients");
    return skip_bdat(c, 503, st(5, 5, 1), "Error: need RCPT command");
  }
  if (!bdat_used_) {
    bdat_used_ = true;
    env_.via_bdat = true;
    bdat_.reset();
    body_.clear();
  }
  bdat_remaining_ = c.bdat_size;
  bdat_last_ = c.bdat_last;
  phase_ = Phase::Bdat;
  return ServerEvent::None;
}

ServerEvent ServerSession::feed_bdat(ByteBuffer& in) {
  if (bdat_remaining_ > 0) {
    if (in.empty()) return ServerEvent::None;
    std::size_t n = bdat_.take(in.view(), bdat_remaining_, cfg_.keep_body ? &body_ : nullptr);
    in.consume(n);
    bdat_remaining_ -= n;
    if (bdat_remaining_ > 0) return ServerEvent::None;
  }
  phase_ = Phase::Command;
  if (bdat_.error() == ContentError::TooBig) {
    ++stats_.messages_refused;
    reset_transaction();
    return error(552, st(5, 3, 4), "Error: message file too big");
  }
  if (!bdat_last_) {
    char buf[64];
    auto r = std::to_chars(buf, buf + 24, bdat_.size());
    std::size_t n = static_cast<std::size_t>(r.ptr - buf);
    std::memcpy(buf + n, " octets received", 16);
    reply(250, st(2, 0, 0), std::string_view(buf, n + 16));
    return ServerEvent::None;
  }
  bdat_.finish();
  body_size_ = bdat_.size();
  return end_of_message(bdat_.error());
}

ServerEvent ServerSession::feed_bdat_skip(ByteBuffer& in) {
  if (bdat_remaining_ > 0) {
    std::size_t n = in.size();
    if (bdat_remaining_ < n) n = static_cast<std::size_t>(bdat_remaining_);
    in.consume(n);
    bdat_remaining_ -= n;
    if (bdat_remaining_ > 0) return ServerEvent::None;
  }
  phase_ = Phase::Command;
  return error(skip_reply_.code, skip_reply_.status, skip_reply_.text);
}

}  // namespace salvo::smtp
