// SPDX-License-Identifier: Apache-2.0
// InjectionSession: one accepted injection connection. Drives smtp::ServerSession over a
// net::Connection, answers the policy hooks, and hands each message to the SpoolWriter.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/config/cidr.h>
#include <salvo/inbound/injection_listener.h>
#include <salvo/net/stack.h>
#include <salvo/smtp/server_session.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::inbound {

// Owner: the accepting shard. Heap object that deletes itself once the connection has
// closed and no commit is in flight (the writer always calls on_committed, also from
// ~SpoolWriter). Timeouts are Connection's idle timer and deadline (inbound may not use io
// timers itself): a command line must be complete within idle_timeout (outside a
// transaction) or command_timeout (inside) of the previous one, whatever trickles in
// meanwhile; message text may pause at most data_timeout and must average min_data_rate
// after a data_timeout of grace; session_timeout ends the session between transactions.
// on_idle_timeout says 421 4.4.2 before the close; with answers owed it gives the commit
// one more command_timeout, then says 421. Commits are deferred completions
// (smtp::ServerSession::defer_completion): a pipelining or BDAT client keeps up to
// ServerConfig::max_deferred_completions (32) messages in flight; replies stay in order
// behind the oldest pending commit, and the writer answers this session's appends in
// append order (one shard, one writer).
//
//   MessageReady -> append(record, this) -> defer_completion, read on
//   on_committed(ok)  -> "250 2.0.0 Ok: queued as ID" (+ replies held behind it)
//   on_committed(err) -> 451 4.3.0 / 452 4.3.1
//   session blocked (STARTTLS/QUIT, or the deferral cap reached) -> pause_reading until answered
//
// A refused AUTH (535) is held auth_failure_delay, doubled for each earlier failure on the
// connection, before it goes out (the delay path): reading paused, the idle timer off, the
// deadline at the release time; on_idle_timeout then sends it (and closes, after the last
// failure allowed) and restores the timers. AUTH waits until no commit is owed, so none
// answers meanwhile.
class InjectionSession final : public net::ConnectionHandler,
                               public smtp::ServerPolicy,
                               public spool::CommitWaiter,
                               public IntakeBudget::Waiter {
 public:
  InjectionSession(InjectionListener& listener, net::Connection& conn,
                   const config::IpAddress& ip, bool counted_by_limiter,
                   bool counted_by_node);
  ~InjectionSession() override;
  InjectionSession(const InjectionSession&) = delete;
  InjectionSession& operator=(const InjectionSession&) = delete;

  // net::ConnectionHandler
  void on_data(net::Connection& c, ByteBuffer& in) noexcept override;
  void on_drained(net::Connection& c) noexcept override;
  void on_tls_ready(net::Connection& c) noexcept override;
  void on_close(net::Connection& c, std::error_code why) noexcept override;
  bool on_idle_timeout(net::Connection& c) noexcept override;

  // smtp::ServerPolicy
  std::optional<smtp::Reply> on_mail(const smtp::ServerSession&, const smtp::Path&,
                                     const smtp::MailParams&) override;
  std::optional<smtp::Reply> on_rcpt(const smtp::ServerSession&, const smtp::Path&,
                                     const smtp::RcptParams&) override;
  std::optional<smtp::Reply> on_auth(const smtp::ServerSession&, smtp::AuthMechanism,
                                     std::string_view authzid, std::string_view authcid,
                                     std::string_view password) override;

  // spool::CommitWaiter
  void on_committed(Status status) noexcept override;

  // IntakeBudget::Waiter
  void on_budget() noexcept override;

  // The listener is stopping: 421 now, or after the pending commit's answer.
  void stop() noexcept;
  bool connected() const noexcept { return conn_ != nullptr; }

  // Intrusive list links (InjectionListener).
  InjectionSession* prev_ = nullptr;
  InjectionSession* next_ = nullptr;

 private:
  struct PendingCommit;
  void run(ByteBuffer& in) noexcept;
  // Appends the message; false when it was answered at once (append failed).
  bool queue_message() noexcept;
  void log_received(const PendingCommit& p) noexcept;
  bool commit_pending() const noexcept { return !pending_.empty(); }
  void flush_output() noexcept;
  bool output_over() const noexcept;
  void maybe_resume_output() noexcept;
  // Reading resumes once nothing else holds it: commits owed (blocked_), unsent output,
  // the intake budget, a held AUTH reply, the end of the session.
  void maybe_resume_reading() noexcept;
  // Reports the body bytes held to the intake budget; pauses reading when it is spent.
  void account_body() noexcept;
  void release_body() noexcept;
  void update_timeout() noexcept;
  // The delay path: hold the refused AUTH's reply (ev AuthFailed; or Close, after the last
  // failure allowed) until auth_release_; release it from on_idle_timeout.
  void hold_auth_reply(smtp::ServerEvent ev) noexcept;
  bool release_auth_reply() noexcept;
  void close_now() noexcept;
  // Deletes this when nothing refers to it any more.
  void maybe_delete() noexcept;

  InjectionListener& listener_;
  net::Connection* conn_;
  smtp::ServerSession session_;
  config::IpAddress ip_;
  std::string ip_text_;
  // One message appended and not yet answered. The envelope is copied: the session has
  // moved on to the next transaction by the time the commit answers.
  struct PendingCommit {
    std::uint64_t id = 0;
    std::int64_t received_ns = 0;
    TimePoint end_of_data{};  // for the end-of-data -> reply latency histogram
    std::uint64_t bytes = 0;
    std::string from;
    std::vector<std::string> rcpts;
  };
  std::deque<PendingCommit> pending_;
  bool relay_network_ = false;
  bool counted_ = false;
  bool node_counted_ = false;  // holds one of [node] max_connections
  bool blocked_ = false;         // reading paused until deferred answers are out
  bool close_when_answered_ = false;  // the session ended with answers still owed
  bool output_paused_ = false;
  bool stopping_ = false;
  bool closing_ = false;
  // Timeouts (RFC 5321 §4.5.3.2; docs/message-path.md "Deadlines"): the idle timer, and a
  // fixed deadline received bytes cannot move (whole command, data rate, session).
  enum class Expiry : std::uint8_t { Command, Data, DataRate, Session };
  Expiry expiry_kind(TimePoint now) const noexcept;
  Duration timeout_{};
  TimePoint deadline_ = TimePoint::max();
  Expiry deadline_kind_ = Expiry::Command;
  TimePoint session_deadline_ = TimePoint::max();  // accept + session_timeout
  TimePoint command_since_{};  // the last complete command, reply or end of message text
  std::uint64_t commands_seen_ = 0;
  bool was_text_ = false;
  bool rate_window_ = false;   // the transaction's message text has begun
  TimePoint text_since_{};     // ... at this time,
  std::uint64_t text_rx0_ = 0;  // ... with rx_total_ at this count
  std::uint64_t rx_total_ = 0;  // bytes received (plaintext), for min_data_rate
  std::size_t in_left_ = 0;     // input left unconsumed after the last on_data
  const char* timed_out_ = nullptr;  // expired with answers owed: 421 this once answered
  // [node] max_pending_bytes: the body bytes reported to the budget; waiting for room
  // since budget_paused_at_ (the timers stop meanwhile: the wait is salvod's, not the
  // client's).
  std::uint64_t budget_held_ = 0;
  bool budget_paused_ = false;
  TimePoint budget_paused_at_{};
  // AUTH failures (535) on this connection, and the wait on_auth chose for the latest one.
  std::uint32_t auth_failures_ = 0;
  Duration auth_delay_{};
  TimePoint auth_release_ = TimePoint::max();  // a held reply goes out then
  bool auth_close_ = false;                     // ... and the connection closes
};

}  // namespace salvo::inbound
