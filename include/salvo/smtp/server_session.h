// SPDX-License-Identifier: Apache-2.0
// ServerSession: the sans-IO ESMTP server state machine (RFC 5321 with PIPELINING,
// SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN, CHUNKING, STARTTLS, AUTH PLAIN/LOGIN).
// Owned by the shard that owns the connection; no IO, no clock, no threads.
//
// Driver contract:
//   session.greet();                       // queues the 220
//   loop: read bytes into `in`;
//         ev = session.feed(in);           // consumes what it processed
//         send session.output() (drain it: output().consume(n) or clear());
//         MessageReady -> envelope(), body(); later complete_message(reply)
//                         (nothing more is processed until then, so stop reading from
//                          the socket meanwhile; call feed(in) again afterwards:
//                          pipelined commands may already be buffered);
//         StartTls     -> the 220 is queued; send it, discard ALL buffered plaintext
//                         input (the session has already emptied `in`), handshake, then
//                         tls_established();
//         Close        -> send the queued output, then close the connection;
//         AuthFailed   -> (only with ServerConfig::pause_after_auth_failure) the refusal is
//                         queued: send it when the driver chooses, then feed(in) again.
// Replies to a pipelined group are appended to output() together (RFC 2920 §3.2).
// Every protocol error becomes a reply; after ServerConfig::hard_error_limit errors the
// session sends 421 4.7.0 and closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/byte_buffer.h>
#include <salvo/smtp/address.h>
#include <salvo/smtp/command.h>
#include <salvo/smtp/data_codec.h>
#include <salvo/smtp/extensions.h>
#include <salvo/smtp/reply.h>

namespace salvo::smtp {

class ServerSession;

// What to do when bytes follow STARTTLS in the same read (CVE-2011-0411).
enum class StarttlsInjection : std::uint8_t {
  Discard,  // Postfix: drop them (the driver discards all buffered plaintext)
  Reject,   // Momentum "reject": 554 5.5.0 and close, no TLS
};

struct ServerConfig {
  std::string hostname = "localhost";
  std::string greeting = "ESMTP salvo";      // 220 <hostname> <greeting>
  std::uint64_t max_message_size = 36700160;  // 35 MiB; SIZE advertises it; 0 = unlimited
  std::uint32_t max_recipients = 1000;
  std::uint32_t hard_error_limit = 20;
  ExtensionSet extensions = ExtensionSet::server_default();
  bool starttls_available = false;
  StarttlsInjection starttls_injection = StarttlsInjection::Discard;
  AuthMechanisms auth_mechanisms;  // empty = AUTH not offered
  bool auth_requires_tls = true;   // AUTH neither advertised nor accepted before TLS
  // Refused AUTH attempts on one connection before 421 4.7.0 and close; the limit holds
  // within one read too (pipelined guesses after it are never looked at). 0 = no limit.
  std::uint32_t max_auth_failures = 3;
  // true: a refused AUTH ends feed() with ServerEvent::AuthFailed (or Close, when it was the
  // last one allowed), its reply queued and every later byte unread, so the driver can hold
  // that reply a while against password guessing before feeding on. AUTH then also waits
  // until every deferred completion is answered: nothing else is owed while a reply is held.
  bool pause_after_auth_failure = false;
  bool keep_body = false;          // false: count body octets only (null sink)
  // Completions the driver may defer (defer_completion()): with N > 0 a client that
  // pipelines (RFC 2920) or uses BDAT keeps up to N messages in flight while their commits
  // run; replies stay in order, held behind the oldest pending one. 0 = the driver waits.
  std::uint32_t max_deferred_completions = 0;
};

// A recipient as accepted at RCPT time.
struct EnvelopeRecipient {
  std::string address;  // mailbox as received ("local@domain")
  NotifyFlags notify;
  std::string orcpt;  // "addr-type;xtext" as received, or ""
};

struct Envelope {
  std::string reverse_path;  // "" for the null reverse-path <>
  std::vector<EnvelopeRecipient> recipients;
  std::string envid;  // xtext as received, or ""
  DsnRet ret = DsnRet::Unspecified;
  BodyType body_type = BodyType::Unspecified;
  bool smtputf8 = false;
  bool declared_size_given = false;
  std::uint64_t declared_size = 0;
  std::string auth;  // MAIL AUTH= value, or ""
  bool via_bdat = false;
};

// Synchronous hooks the driver implements. nullopt = accept (with the standard reply);
// a Reply = reject with exactly that reply. Defaults accept everything.
class ServerPolicy {
 public:
  virtual ~ServerPolicy() = default;
  virtual std::optional<Reply> on_helo(const ServerSession&, std::string_view /*name*/) {
    return std::nullopt;
  }
  virtual std::optional<Reply> on_mail(const ServerSession&, const Path& /*reverse_path*/,
                                       const MailParams&) {
    return std::nullopt;
  }
  // The relay decision lives here: reject with 554 5.7.1.
  virtual std::optional<Reply> on_rcpt(const ServerSession&, const Path& /*forward_path*/,
                                       const RcptParams&) {
    return std::nullopt;
  }
  // Credentials from AUTH PLAIN/LOGIN. nullopt = authenticated (235 2.7.0); otherwise
  // e.g. 535 5.7.8 (bad credentials) or 454 4.7.0 (temporary).
  virtual std::optional<Reply> on_auth(const ServerSession&, AuthMechanism,
                                       std::string_view /*authzid*/,
                                       std::string_view /*authcid*/,
                                       std::string_view /*password*/) {
    return Reply(535, {5, 7, 8}, "Error: authentication failed");
  }
};

enum class ServerEvent : std::uint8_t {
  None,          // everything buffered was processed; read more
  MessageReady,  // envelope() and body() hold a complete message; call complete_message()
  StartTls,      // run the TLS handshake, then tls_established()
  Close,         // flush output(), then close
  AuthFailed,    // ServerConfig::pause_after_auth_failure: an AUTH was refused, its reply is
                 // queued; send it when ready, then feed() again
};

struct ServerStats {
  std::uint64_t commands = 0;
  std::uint64_t errors = 0;
  std::uint64_t messages = 0;           // MessageReady events
  std::uint64_t messages_refused = 0;   // content refused at end of data
  std::uint64_t body_octets = 0;
  std::uint64_t sync_violations = 0;
  std::uint64_t injected_octets = 0;    // plaintext discarded at STARTTLS
  ServerStats& operator+=(const ServerStats& o) noexcept;
};

class ServerSession {
 public:
  // `config` and `policy` must outlive the session (they are per listener).
  ServerSession(const ServerConfig& config, ServerPolicy& policy);
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  void greet();
  ServerEvent feed(ByteBuffer& in);
  void complete_message(const Reply& reply);
  // Fast path for the common "250 2.0.0 Ok: queued as <id>" and friends.
  void complete_message(std::uint16_t code, EnhancedStatus status, std::string_view text);
  // Instead of complete_message(): after MessageReady the driver has taken the message
  // (envelope() and body() are reset now: copy what you need first) and will answer later
  // with complete_deferred(), oldest first. The session reads on; every later reply is held
  // behind the deferred one. STARTTLS and QUIT, and any command once
  // max_deferred_completions are outstanding, wait unread until the answers are out
  // (feed() returns None with them buffered: blocked() is true).
  void defer_completion();
  void complete_deferred(std::uint16_t code, EnhancedStatus status, std::string_view text);
  std::size_t deferred() const noexcept { return held_.size(); }
  // Replies written behind deferred answers and not yet in output(): they count toward
  // the driver's output budget (a NOOP flood behind a slow commit grows them).
  std::size_t held_bytes() const noexcept;
  bool blocked() const noexcept { return blocked_; }
  void tls_established();
  // Driver-initiated shutdown (idle timeout, server stopping): queues 421 4.4.2 and the
  // session is closed.
  void shutdown(std::string_view why = "Error: timeout exceeded");

  ByteBuffer& output() noexcept { return out_; }

  // State for the policy and the driver. envelope() and body() describe the message of
  // the last MessageReady and stay valid until complete_message().
  const Envelope& envelope() const noexcept { return env_; }
  ByteBuffer& body() noexcept { return body_; }
  std::uint64_t body_size() const noexcept { return body_size_; }
  std::string_view helo_name() const noexcept { return helo_; }
  bool esmtp() const noexcept { return esmtp_; }
  bool tls_active() const noexcept { return tls_; }
  bool authenticated() const noexcept { return !auth_user_.empty(); }
  std::string_view authenticated_user() const noexcept { return auth_user_; }
  bool closed() const noexcept { return phase_ == Phase::Closed; }
  bool awaiting_completion() const noexcept { return phase_ == Phase::AwaitCompletion; }
  // Between MAIL and the end of the transaction (its message, RSET, or a failure).
  bool in_transaction() const noexcept { return in_mail_; }
  // Reading message text (after DATA's 354, or a BDAT chunk) rather than a command line:
  // the driver's data deadlines apply.
  bool reading_text() const noexcept {
    return phase_ == Phase::Data || phase_ == Phase::Bdat || phase_ == Phase::BdatSkip;
  }
  const ServerStats& stats() const noexcept { return stats_; }
  const ServerConfig& config() const noexcept { return cfg_; }

 private:
  enum class Phase : std::uint8_t {
    Fresh, Command, AuthResponse, Data, Bdat, BdatSkip, AwaitCompletion, TlsPending, Closed
  };
  enum class AuthStep : std::uint8_t { None, PlainResponse, LoginUser, LoginPassword };

  ServerEvent process_line(std::string_view line, ByteBuffer& in);
  ServerEvent on_command(const Command& c, ByteBuffer& in);
  ServerEvent on_ehlo(const Command& c, bool extended);
  ServerEvent on_mail(const Command& c);
  ServerEvent on_rcpt(const Command& c);
  ServerEvent on_data(ByteBuffer& in);
  ServerEvent on_bdat(const Command& c);
  ServerEvent on_auth(const Command& c);
  ServerEvent on_auth_response(std::string_view line);
  ServerEvent on_starttls(const Command& c, ByteBuffer& in);
  ServerEvent feed_data(ByteBuffer& in);
  ServerEvent feed_bdat(ByteBuffer& in);
  ServerEvent feed_bdat_skip(ByteBuffer& in);
  ServerEvent feed_line(ByteBuffer& in);
  ServerEvent skip_bdat(const Command& c, std::uint16_t code, EnhancedStatus st,
                        std::string_view text);
  ServerEvent finish_auth(AuthMechanism mech, std::string_view authzid,
                          std::string_view authcid, std::string_view password);
  ServerEvent end_of_message(ContentError err);
  ServerEvent error(std::uint16_t code, EnhancedStatus st, std::string_view text);
  ServerEvent policy_reject(const Reply& r);
  // Counts one error toward the hard error limit; 421 and Close when it is reached.
  ServerEvent count_error();
  ServerEvent close_with(std::uint16_t code, EnhancedStatus st, std::string_view text);
  void reply(std::uint16_t code, EnhancedStatus st, std::string_view text);
  void reply_to(ByteBuffer& out, std::uint16_t code, EnhancedStatus st, std::string_view text);
  void write_ehlo_reply();
  void reset_transaction() noexcept;
  bool auth_offered() const noexcept;
  // Where replies go: the output, or behind the newest deferred completion.
  ByteBuffer& sink() noexcept { return held_.empty() ? out_ : held_.back(); }
  bool must_wait(std::string_view buffered) const noexcept;
  std::size_t line_limit(std::string_view pending) const noexcept;

  const ServerConfig& cfg_;
  ServerPolicy& policy_;
  ByteBuffer out_;
  std::deque<ByteBuffer> held_;  // held_[i]: replies that follow deferred completion i
  bool blocked_ = false;
  ByteBuffer body_;
  Phase phase_ = Phase::Fresh;
  AuthStep auth_step_ = AuthStep::None;
  bool esmtp_ = false;
  bool helo_done_ = false;
  bool tls_ = false;
  bool in_mail_ = false;
  bool bdat_used_ = false;
  bool bdat_last_ = false;
  bool bdat_failed_ = false;
  bool discarding_ = false;   // over-long line: dropping bytes until CRLF
  bool discard_cr_ = false;
  bool discard_auth_ = false;
  std::uint32_t errors_ = 0;
  std::uint32_t auth_failures_ = 0;
  std::uint32_t rcpt_attempts_ = 0;
  std::uint64_t bdat_remaining_ = 0;
  std::uint64_t body_size_ = 0;
  std::string helo_;
  std::string auth_user_;
  std::string auth_login_user_;
  std::string scratch_;
  Command cmd_;
  Envelope env_;
  CommandError skip_reply_;  // sent once a rejected BDAT chunk has been read and dropped
  std::vector<std::string> spare_addresses_;  // recycled recipient strings (no malloc per RCPT)
  DataDecoder data_;
  BdatDecoder bdat_;
  ServerStats stats_;
};

}  // namespace salvo::smtp
