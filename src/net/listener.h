// SPDX-License-Identifier: Apache-2.0
// KernelListener: a listening socket with a multishot accept; re-arms when the multishot
// ends and backs off on EMFILE/ENFILE/ENOMEM. PendingConnect: one outgoing connect with
// its timeout, reporting exactly once to its ConnectHandler.
#pragma once

#include <cstdint>

#include <salvo/net/stack.h>

#include "net/op.h"

namespace salvo::net {

class KernelStack;

// Owner: the stack's shard. close() cancels the accept; the fd is closed once the engine
// delivered the final accept completion. The object lives until the stack is destroyed,
// so a Listener* stays valid (and address() readable) after close().
class KernelListener final : public Listener {
 public:
  KernelListener(KernelStack& stack, int fd, const SocketAddress& address,
                 AcceptHandler& handler) noexcept;
  const SocketAddress& address() const noexcept override { return address_; }
  void close() noexcept override;
  void start() noexcept;
  void teardown_silently() noexcept;
  // Stack destruction with nothing in flight: close(2) the socket directly.
  void close_fd_now() noexcept;
  bool closed() const noexcept { return closed_; }

 private:
  void on_accept(std::int32_t res, std::uint32_t flags) noexcept;
  void on_retry(std::int32_t res, std::uint32_t flags) noexcept;
  void arm_accept() noexcept;
  void close_fd_if_idle() noexcept;

  KernelStack& stack_;
  int fd_;
  SocketAddress address_;
  AcceptHandler* handler_;
  Op<KernelListener> accept_op_;
  Op<KernelListener> retry_op_;
  bool accept_armed_ = false;
  bool retry_armed_ = false;
  bool closed_ = false;
  int ops_ = 0;
};

// Owner: the stack's shard. Freed by the stack (deferred) once it reported and the engine
// delivered every completion (connect, timer).
class PendingConnect final : public Deferred {
 public:
  PendingConnect(KernelStack& stack, int fd, const SocketAddress& to, ConnectHandler& handler,
                 std::error_code early_error) noexcept;
  ~PendingConnect();
  void start(Duration timeout) noexcept;
  // close_all(): report ECANCELED unless already reported.
  void cancel() noexcept;
  void teardown_silently() noexcept;
  void run_deferred() noexcept override;

 private:
  friend class KernelStack;
  void on_connect(std::int32_t res, std::uint32_t flags) noexcept;
  void on_timer(std::int32_t res, std::uint32_t flags) noexcept;
  void report_failure(std::error_code why) noexcept;
  void maybe_done() noexcept;
  void op_done(bool& armed) noexcept;

  KernelStack& stack_;
  int fd_;
  SocketAddress to_;
  ConnectHandler* handler_;
  std::error_code early_error_;
  Op<PendingConnect> connect_op_;
  Op<PendingConnect> timer_op_;
  bool connect_armed_ = false;
  bool timer_armed_ = false;
  bool reported_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  int ops_ = 0;
  std::size_t slot_ = 0;  // index in KernelStack::connects_
};

}  // namespace salvo::net
