// SPDX-License-Identifier: Apache-2.0
// InjectionSession: one accepted injection connection. Drives smtp::ServerSession over a
// net::Connection, answers the policy hooks, and hands each message to the SpoolWriter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <salvo/base/clock.h>
#include <salvo/config/cidr.h>
#include <salvo/inbound/injection_listener.h>
#include <salvo/net/stack.h>
#include <salvo/smtp/server_session.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::inbound {

// Owner: the accepting shard. Heap object that deletes itself once the connection has
// closed and no commit is in flight (the writer always calls on_committed, also from
// ~SpoolWriter). Timeouts (RFC 5321 §4.5.3.2) are Connection's idle timer: idle_timeout
// outside a transaction, the longer of command/data timeout inside; it closes without a
// 421 (inbound may not use io timers: STYLE.md §1 layers). Reading is paused from
// MessageReady until the commit answer, so at most one message per session is in flight.
//
//   MessageReady -> append(record, this) -> pause_reading
//   on_committed(ok)  -> "250 2.0.0 Ok: queued as ID" -> resume_reading
//   on_committed(err) -> 451 4.3.0 / 452 4.3.1      -> resume_reading
class InjectionSession final : public net::ConnectionHandler,
                               public smtp::ServerPolicy,
                               public spool::CommitWaiter {
 public:
  InjectionSession(InjectionListener& listener, net::Connection& conn,
                   const config::IpAddress& ip, bool counted_by_limiter);
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
  void run(ByteBuffer& in) noexcept;
  // Appends the message; false when it was answered at once (append failed).
  bool queue_message() noexcept;
  void log_received() noexcept;
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
  std::uint64_t pending_id_ = 0;
  std::int64_t pending_received_ns_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::uint32_t pending_rcpts_ = 0;
  std::uint32_t auth_failures_ = 0;
  bool relay_network_ = false;
  bool counted_ = false;
  bool commit_pending_ = false;
  bool in_transaction_ = false;
  bool output_paused_ = false;
  bool stopping_ = false;
  bool closing_ = false;
  Duration timeout_{};
};

}  // namespace salvo::inbound
