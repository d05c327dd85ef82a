// SPDX-License-Identifier: Apache-2.0
// DeliveryConnection: one SMTP connection of a destination's pool — smtp::ClientSession over
// net::Connection to one MX host: connect (from an egress source), STARTTLS by policy,
// transactions pipelined up to the window, reuse up to max_messages_per_connection, QUIT
// when idle. Reports facts to its Destination; decides nothing about replies.
//
// Timeouts (RFC 5321 §4.5.3.2): each reply has its stage's [delivery] limit as a deadline
// (Connection::set_deadline) that received bytes do not move, so a server trickling a
// multi-line reply a byte at a time is given up on at the stage's limit. A reply's time
// starts when it becomes the one waited for (the connect, for the greeting; otherwise its
// command sent, or the reply before it complete), or later, once the socket has taken
// everything we wrote (on_drained): a large message's final reply is timed from its end
// of data. While our output waits for the socket, data_block_timeout bounds each write
// (Connection::set_write_timeout). Outside a reply the idle timer: the pool's
// idle_timeout, the wait for a body read, the wait for the server's FIN after QUIT.
//
// DANE (RFC 7672): when [dns] validating, the destination's `dane` switch and a host whose MX
// and address answers validated, the host's TLSA records are looked up (cached per shard)
// before connecting. A usable secure set makes STARTTLS mandatory, and the server's chain
// must match it once the handshake is done (net::dane_match) or the session fails 4.7.5
// before it is ready (next MX; the recipients are deferred). A failed TLSA lookup fails the
// host the same way; insecure, absent or unusable records leave the other policies in force.
//
// Owner: the destination's shard. Deletes itself once closed (after connection_gone).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <salvo/dns/tlsa_cache.h>
#include <salvo/net/dane.h>
#include <salvo/net/stack.h>
#include <salvo/outbound/settings.h>
#include <salvo/smtp/client_session.h>

#include "outbound/pool.h"
#include "outbound/tls_policy.h"

namespace salvo::net {
class TlsContext;
}

namespace salvo::outbound {

class Destination;

// The client TLS contexts of the settings the connection started with (held: a reload
// does not free them under an open session).
struct ClientTls {
  SettingsPtr settings;
  const net::TlsContext* plain() const noexcept { return settings ? settings->tls.get() : nullptr; }
  // Verifies the chain against [tls] ca_bundle and the name; null only without settings.
  const net::TlsContext* verified() const noexcept {
    return settings ? settings->tls_verified.get() : nullptr;
  }
  // Checks as verified() does but only reports a failure (MTA-STS testing mode).
  const net::TlsContext* report() const noexcept {
    return settings ? settings->tls_report.get() : nullptr;
  }
};

class DeliveryConnection final : public Channel,
                                 public net::ConnectHandler,
                                 public net::ConnectionHandler {
 public:
  DeliveryConnection(Destination& d, const Host& host, const Origination& o, ClientTls tls);
  void start(net::Stack& stack) noexcept;

  // net
  void on_connect(net::Connection* c, std::error_code why) noexcept override;
  void on_data(net::Connection& c, ByteBuffer& in) noexcept override;
  void on_drained(net::Connection& c) noexcept override;
  void on_tls_ready(net::Connection& c) noexcept override;
  void on_close(net::Connection& c, std::error_code why) noexcept override;
  bool on_idle_timeout(net::Connection& c) noexcept override;

  // Channel
  bool ready() const noexcept override { return state_ == State::Ready; }
  bool connecting() const noexcept override {
    return state_ == State::Connecting || state_ == State::Greeting;
  }
  std::size_t load() const noexcept override { return slots_.size(); }
  const Host& host() const noexcept override { return host_; }
  void fill() noexcept override;
  void submit(Slot* s) noexcept override;
  void quit() noexcept override;
  void slot_detached(Slot* s) noexcept override;
  std::string tls_version() const override;
  bool plaintext_fallback() const noexcept override { return plaintext_fallback_; }
  std::string tls_policy() const override;
  // The server offered DSN (RFC 3461): NOTIFY/ORCPT/ENVID went on with the message.
  bool remote_dsn() const noexcept override {
    return session_ && session_->capabilities().extensions.has(smtp::Extension::Dsn);
  }

 private:
  enum class State : std::uint8_t { Connecting, Greeting, Ready, Quitting, Closing, Closed };
  // What the connection waits for: a reply (the session's stage and how many replies came
  // before it) or a pause of its own (state, transactions taken); and the timer for it.
  struct Wait {
    smtp::Awaiting awaiting = smtp::Awaiting::Nothing;
    std::uint64_t replies = 0;
    State state = State::Connecting;
    bool busy = false;
    Duration reply_limit{0};  // zero: not a reply; the idle timer is in charge
    TimePoint deadline = TimePoint::max();  // max: the reply's time has not started
    bool same(const Wait& o) const noexcept {
      return awaiting == o.awaiting && replies == o.replies && state == o.state &&
             busy == o.busy;
    }
  };
  smtp::ClientConfig session_config();
  bool dane_wanted() const noexcept;
  void on_tlsa(const dns::TlsaAnswer& a) noexcept;
  void connect() noexcept;
  void fail_before_connect(const smtp::Reply& r) noexcept;
  bool check_dane() noexcept;
  void drive(ByteBuffer& in) noexcept;
  void on_transaction(const smtp::TransactionResult& r) noexcept;
  void flush() noexcept;
  void update_timeout() noexcept;
  void set_idle(Duration d) noexcept;
  std::optional<smtp::Reply> timeout_reply(TimePoint now) const;
  bool can_take() noexcept;
  bool outdated() const noexcept;
  void tls_decided(TlsOutcome o, std::string failure = {}) noexcept;
  std::optional<smtp::Reply> tls_failure_reply(const net::Connection& c);
  bool stopping() const noexcept;

  Destination& d_;
  Host host_;
  std::optional<net::SocketAddress> source_;
  std::string helo_;
  ClientTls tls_;
  net::Stack* stack_ = nullptr;
  std::vector<net::Tlsa> dane_;  // usable TLSA records in force; empty: no DANE
  net::Connection* conn_ = nullptr;
  std::unique_ptr<smtp::ClientSession> session_;
  State state_ = State::Connecting;
  Wait wait_;
  Duration idle_{0};                      // the idle timeout set on conn_
  std::optional<smtp::Reply> timed_out_;  // what a timeout that closes us reports
  std::vector<Slot*> slots_;  // taken: reading or submitted
  std::uint32_t taken_ = 0;   // transactions taken over the connection's life
  TlsDemand demand_;          // what TLS the destination asks of this host
  std::uint32_t tls_epoch_ = 0;  // the destination's tls_epoch() it was asked under
  std::optional<TlsOutcome> outcome_;  // set once the session's TLS is decided
  std::string tls_failure_;   // why the demand was not met (Failed / TestingFailed)
  bool verified_ = false;     // the verified TLS context is in use
  bool tls_started_ = false;  // STARTTLS accepted: a close now is a handshake failure
  bool plaintext_fallback_ = false;  // STARTTLS skipped after a failed handshake
  bool tls_required_ = false;
};

}  // namespace salvo::outbound
