// SPDX-License-Identifier: Apache-2.0
// ClientSession: the sans-IO ESMTP client state machine used by salvo-blast and by the
// outbound delivery connection. Owned by the shard that owns the connection.
//
// Driver contract:
//   connect; then loop: read reply bytes into `in`;
//     while ((ev = session.feed(in)).kind != ClientEventKind::None) handle(ev);
//     send session.output() (drain it);
//   Ready           -> greeting, EHLO (and STARTTLS/AUTH) done; submit() may be called
//                      (submit() is also allowed earlier: transactions queue until Ready);
//   NeedTls         -> the STARTTLS 220 arrived; the session has emptied `in` (response
//                      injection defence, CVE-2021-38371); the driver drops any other
//                      buffered plaintext, runs the handshake, then tls_established()
//                      (EHLO is re-sent); on handshake failure just close;
//   TransactionDone -> exactly one per submitted Transaction, with its cookie;
//   Failed          -> session unusable (reply says why: remote or local); close;
//   Closed          -> QUIT answered; close.
// connection_lost() when the peer drops, or the driver gave up waiting: every unfinished
// transaction completes with a local 451 4.4.2 (the driver's reply, if it gives one).
// Local decisions (SIZE, SMTPUTF8, 8BITMIME, bare CR/LF) complete the transaction with a
// local reply and never send it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/byte_buffer.h>
#include <salvo/smtp/command.h>
#include <salvo/smtp/extensions.h>
#include <salvo/smtp/reply.h>

namespace salvo::smtp {

enum class TlsPolicy : std::uint8_t { Off, Opportunistic, Required };

struct ClientCredentials {
  std::string authzid;  // usually empty
  std::string user;
  std::string password;
};

struct ClientConfig {
  std::string helo_name = "localhost";
  bool use_pipelining = true;  // if the server offers PIPELINING
  bool use_chunking = false;   // BDAT n LAST if the server offers CHUNKING
  TlsPolicy tls = TlsPolicy::Off;
  std::optional<ClientCredentials> auth;
  bool auth_requires_tls = true;  // never send credentials in plaintext
  // Send the next transaction's MAIL/RCPT/DATA right after the previous end of data,
  // without waiting for its final reply (needs PIPELINING).
  bool pipeline_across_messages = false;
  ReplyLimits reply_limits;
};

struct OutgoingRecipient {
  std::string address;  // mailbox without angle brackets
  NotifyFlags notify;
  std::string orcpt;    // "rfc822;xtext" or ""
};

struct Transaction {
  std::uint64_t cookie = 0;  // returned in TransactionResult
  std::string reverse_path;  // "" = null sender
  std::vector<OutgoingRecipient> recipients;
  std::string envid;  // xtext or ""
  DsnRet ret = DsnRet::Unspecified;
  bool needs_smtputf8 = false;
  bool needs_8bitmime = false;
  // Raw RFC 5322 text with CRLF line ends; the session dot-stuffs it (or sends it with
  // BDAT). Not copied: it must stay valid until this transaction's TransactionDone.
  std::string_view body;
};

struct TransactionResult {
  std::uint64_t cookie = 0;
  Reply mail_reply;                 // code 0 if never sent
  std::vector<Reply> rcpt_replies;  // one per recipient, in order (code 0 if never sent)
  Reply final_reply;                // end-of-data reply, or the reply that ended it early
  bool local = false;               // final_reply was decided locally
  std::size_t accepted_recipients() const noexcept;
  bool delivered() const noexcept { return !local && final_reply.code / 100 == 2; }
};

enum class ClientEventKind : std::uint8_t { None, Ready, NeedTls, TransactionDone, Failed, Closed };

// The reply the session waits for now, so a driver can apply RFC 5321 §4.5.3.2's timeout
// for that stage.
enum class Awaiting : std::uint8_t {
  Nothing, Greeting, Helo, StartTls, Mail, Rcpt, Data, DataEnd, Other
};

struct ClientEvent {
  ClientEventKind kind = ClientEventKind::None;
  TransactionResult result;  // TransactionDone
  Reply reply;               // Failed / Closed: the server's reply or a local one
  bool local = false;        // Failed: decided locally (protocol error, TLS policy...)
};

struct ClientStats {
  std::uint64_t transactions = 0;
  std::uint64_t delivered = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t injected_octets = 0;  // plaintext discarded after the STARTTLS 220
  ClientStats& operator+=(const ClientStats& o) noexcept;
};

class ClientSession {
 public:
  explicit ClientSession(ClientConfig config);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  ClientEvent feed(ByteBuffer& in);
  ByteBuffer& output() noexcept { return out_; }

  void submit(Transaction txn);
  // QUIT once every submitted transaction is done.
  void quit();
  void tls_established();
  // `why`: what every unfinished transaction completes with (a local reply); default
  // 451 4.4.2 "Connection lost".
  void connection_lost(std::optional<Reply> why = std::nullopt);

  bool ready() const noexcept { return phase_ == Phase::Ready; }
  bool idle() const noexcept;  // Ready and nothing queued or in flight
  // Submitted transactions without their TransactionDone yet.
  std::size_t in_flight() const noexcept { return unfinished_; }
  bool tls_active() const noexcept { return tls_; }
  Awaiting awaiting() const noexcept;
  // Complete replies received so far. With awaiting() it names the reply waited for:
  // pipelined replies of one stage differ only in this count (a per-reply deadline).
  std::uint64_t replies() const noexcept { return replies_; }
  const ServerCapabilities& capabilities() const noexcept { return caps_; }
  const ClientStats& stats() const noexcept { return stats_; }

 private:
  enum class Phase : std::uint8_t {
    Greeting, Ehlo, Helo, StartTls, TlsHandshake, Auth, Ready, Quit, Done
  };
  enum class Expect : std::uint8_t { Mail, Rcpt, Data, DataEnd, Bdat, Rset, AuthStep };
  struct Active {
    Transaction txn;
    TransactionResult result;
    std::size_t accepted = 0;
    bool started = false;
    bool chunked = false;     // sent with BDAT
    bool data_sent = false;   // body written (after 354, or with BDAT)
    bool finished = false;
  };
  struct Pending {
    Expect what;
    std::uint32_t index;  // recipient index for Rcpt
    Active* txn;          // deque references stay valid across push_back/pop_front
  };

  void on_reply(const Reply& r);
  void on_greeting(const Reply& r);
  void on_ehlo(const Reply& r);
  void on_helo(const Reply& r);
  void on_starttls(const Reply& r);
  void on_auth(const Reply& r);
  void on_transaction_reply(const Reply& r);
  void after_handshake();
  void send_ehlo();
  void start_auth();
  void pump();
  void start_transaction(Active& a);
  void next_step(Active& a);
  void write_mail(const Transaction& t);
  void write_rcpt(const OutgoingRecipient& r);
  void write_body(Active& a);
  void finish(Active& a, const Reply& r, bool local);
  void fail(const Reply& r, bool local, bool send_quit);
  bool pipelining() const noexcept;
  bool chunking() const noexcept;
  std::optional<Reply> local_check(const Transaction& t) const;
  void push_event(ClientEvent ev);
  void cmd(std::string_view s);

  ClientConfig cfg_;
  ByteBuffer out_;
  ReplyParser parser_;
  Reply reply_;
  Phase phase_ = Phase::Greeting;
  ServerCapabilities caps_;
  bool tls_ = false;
  bool esmtp_ = true;
  bool authenticated_ = false;
  bool quit_requested_ = false;
  bool quit_sent_ = false;
  bool need_rset_ = false;
  bool tls_declined_ = false;   // opportunistic STARTTLS refused by the server
  bool ready_sent_ = false;
  bool discard_input_ = false;
  std::uint8_t auth_stage_ = 0;
  std::deque<Active> txns_;     // in submission order; finished ones popped from the front
  std::size_t unfinished_ = 0;
  std::deque<Pending> expect_;  // replies owed by the server, in order
  std::deque<ClientEvent> events_;
  std::uint64_t replies_ = 0;
  std::string line_;
  ClientStats stats_;
};

}  // namespace salvo::smtp
