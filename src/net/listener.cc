// SPDX-License-Identifier: Apache-2.0
// KernelListener and PendingConnect. Socket set-up (options, getpeername) uses plain
// syscalls; accepting and connecting go through the engine.
#include "net/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <salvo/base/log.h>

#include "net/connection.h"
#include "net/kernel_stack.h"

namespace salvo::net {
namespace {

constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

void close_now(KernelStack& stack, int fd) noexcept {
  if (stack.destroying()) {
    ::close(fd);
  } else {
    stack.engine().close(fd, nullptr);
  }
}

}  // namespace

// ---- KernelListener -------------------------------------------------------------------

KernelListener::KernelListener(KernelStack& stack, int fd, const SocketAddress& address,
                               AcceptHandler& handler) noexcept
    : stack_(stack),
      fd_(fd),
      address_(address),
      handler_(&handler),
      accept_op_(this, &KernelListener::on_accept),
      retry_op_(this, &KernelListener::on_retry) {}

void KernelListener::start() noexcept { arm_accept(); }

void KernelListener::arm_accept() noexcept {
  stack_.engine().accept_multishot(fd_, &accept_op_);
  accept_armed_ = true;
  ++ops_;
  stack_.op_started();
}

void KernelListener::on_accept(std::int32_t res, std::uint32_t flags) noexcept {
  const bool final = (flags & io::kMore) == 0;
  if (final) {
    accept_armed_ = false;
    --ops_;
    stack_.op_finished();
  }
  if (res >= 0) {
    int fd = res;
    if (closed_) {
      close_now(stack_, fd);
    } else {
      int one = 1;
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      SocketAddress peer;
      if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
      }
      KernelConnection* c = stack_.adopt(fd, peer);
      ++stack_.counters().accepted;
      handler_->on_accept(*this, *c);
      c->start();
    }
  }
  if (closed_) {
    close_fd_if_idle();
    return;
  }
  if (!final) return;
  if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
    // Out of descriptors or memory: wait before accepting again instead of spinning.
    log::warn("net: accept on {}: {}; retrying in {} ms", address_.to_string(),
              io::to_error_code(res).message(), kAcceptBackoff.count());
    stack_.engine().timeout(kAcceptBackoff, &retry_op_);
    retry_armed_ = true;
    ++ops_;
    stack_.op_started();
    return;
  }
  if (res == -EBADF || res == -EINVAL || res == -ENOTSOCK || res == -EOPNOTSUPP) {
    log::error("net: accept on {} stopped: {}", address_.to_string(),
               io::to_error_code(res).message());
    return;
  }
  arm_accept();  // kMore cleared: re-arm (ECONNABORTED and friends are per-connection)
}

void KernelListener::on_retry(std::int32_t, std::uint32_t) noexcept {
  retry_armed_ = false;
  --ops_;
  stack_.op_finished();
  if (closed_) {
    close_fd_if_idle();
    return;
  }
  arm_accept();
}

void KernelListener::close() noexcept {
  if (closed_) return;
  closed_ = true;
  if (accept_armed_) stack_.engine().cancel(&accept_op_);
  if (retry_armed_) stack_.engine().cancel(&retry_op_);
  close_fd_if_idle();
}

void KernelListener::close_fd_if_idle() noexcept {
  if (ops_ == 0 && fd_ >= 0) {
    close_now(stack_, fd_);
    fd_ = -1;
  }
}

void KernelListener::teardown_silently() noexcept { close(); }

void KernelListener::close_fd_now() noexcept {
  closed_ = true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// ---- PendingConnect -------------------------------------------------------------------

PendingConnect::PendingConnect(KernelStack& stack, int fd, const SocketAddress& to,
                               ConnectHandler& handler, std::error_code early_error) noexcept
    : stack_(stack),
      fd_(fd),
      to_(to),
      handler_(&handler),
      early_error_(early_error),
      connect_op_(this, &PendingConnect::on_connect),
      timer_op_(this, &PendingConnect::on_timer) {}

PendingConnect::~PendingConnect() {
  if (fd_ >= 0) ::close(fd_);
}

void PendingConnect::op_done(bool& armed) noexcept {
  armed = false;
  --ops_;
  stack_.op_finished();
}

void PendingConnect::start(Duration timeout) noexcept {
  if (early_error_) {
    stack_.schedule(this);  // report from the ready list, not inside connect()
    return;
  }
  stack_.engine().connect(fd_, to_.sa(), to_.len(), &connect_op_);
  connect_armed_ = true;
  ++ops_;
  stack_.op_started();
  if (timeout > Duration::zero()) {
    stack_.engine().timeout(timeout, &timer_op_);
    timer_armed_ = true;
    ++ops_;
    stack_.op_started();
  }
}

void PendingConnect::on_connect(std::int32_t res, std::uint32_t) noexcept {
  op_done(connect_armed_);
  if (timer_armed_) stack_.engine().cancel(&timer_op_);
  if (reported_) {
    maybe_done();
    return;
  }
  if (res == 0 && cancelled_) res = -ECANCELED;  // close_all() raced a successful connect
  if (res < 0) {
    std::error_code why = io::to_error_code(res);
    if (res == -ECANCELED) {
      why = std::make_error_code(timed_out_ ? std::errc::timed_out
                                            : std::errc::operation_canceled);
    }
    report_failure(why);
    maybe_done();
    return;
  }
  int one = 1;
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  reported_ = true;
  KernelConnection* c = stack_.adopt(fd_, to_);
  fd_ = -1;  // the connection owns it now
  handler_->on_connect(c, {});
  c->start();
  maybe_done();
}

void PendingConnect::on_timer(std::int32_t res, std::uint32_t) noexcept {
  op_done(timer_armed_);
  if (res == -ETIME && !reported_ && connect_armed_) {
    timed_out_ = true;
    stack_.engine().cancel(&connect_op_);  // on_connect reports ETIMEDOUT
  }
  maybe_done();
}

void PendingConnect::report_failure(std::error_code why) noexcept {
  if (reported_) return;
  reported_ = true;
  ++stack_.counters().connect_failures;
  if (fd_ >= 0) {
    close_now(stack_, fd_);
    fd_ = -1;
  }
  ConnectHandler* h = handler_;
  handler_ = nullptr;
  if (h != nullptr) h->on_connect(nullptr, why);
}

void PendingConnect::cancel() noexcept {
  if (reported_ || cancelled_) return;
  cancelled_ = true;
  if (connect_armed_) {
    stack_.engine().cancel(&connect_op_);  // on_connect reports ECANCELED
  } else if (early_error_) {
    early_error_ = std::make_error_code(std::errc::operation_canceled);
  }
}

void PendingConnect::teardown_silently() noexcept {
  handler_ = nullptr;
  reported_ = true;
  if (connect_armed_) stack_.engine().cancel(&connect_op_);
  if (timer_armed_) stack_.engine().cancel(&timer_op_);
  maybe_done();
}

void PendingConnect::maybe_done() noexcept {
  if (reported_ && ops_ == 0) stack_.schedule(this);
}

void PendingConnect::run_deferred() noexcept {
  if (!reported_ && early_error_) report_failure(early_error_);
  if (reported_ && ops_ == 0) stack_.release(this);  // deletes this
}

}  // namespace salvo::net
