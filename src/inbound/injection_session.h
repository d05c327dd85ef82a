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
// ~SpoolWriter). Timeouts (RFC 5321 §4.5.3.2) are Connection's idle timer (inbound may not
// use io timers itself): idle_timeout outside a transaction, the longer of command/data
// timeout inside; on_idle_timeout says 421 4.4.2 before the close, unless a commit is
// pending. Commits are deferred completions (smtp::ServerSession::defer_completion): a
// pipelining or BDAT client keeps up to ServerConfig::max_deferred_completions (32) messages
// in flight; replies stay in order behind the oldest pending commit, and the writer answers
// this session's appends in append order (one shard, one writer).
//
//   MessageReady -> append(record, this) -> defer_completion, read on
//   on_committed(ok)  -> "250 2.0.0 Ok: queued as ID" (+ replies held behind it)
//   on_committed(err) -> 451 4.3.0 / 452 4.3.1
//   session blocked (STARTTLS/QUIT, or the deferral cap reached) -> pause_reading until answered
class InjectionSession final : public net::ConnectionHandler,
                               public smtp::ServerPolicy,
                               public spool::CommitWaiter {
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
  void update_timeout() noexcept;
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
  bool in_transaction_ = false;
  bool blocked_ = false;         // reading paused until deferred answers are out
  bool close_when_answered_ = false;  // the session ended with answers still owed
  bool output_paused_ = false;
  bool stopping_ = false;
  bool closing_ = false;
  Duration timeout_{};
};

}  // namespace salvo::inbound
