// SPDX-License-Identifier: Apache-2.0
// UringEngine operations: each maps one neutral request to one io_uring_prep_* call, and
// run_once() submits, waits and dispatches CQEs in batches (liburing examples/proxy.c).
#include "io/uring/uring_engine.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <salvo/base/assert.h>

#include "io/uring/uring_buffer_ring.h"

namespace salvo::io::uring {
namespace {

constexpr unsigned kCqeBatch = 256;
constexpr int kSubmitRetries = 10000;

std::uint32_t translate_flags(std::uint32_t f) noexcept {
  std::uint32_t out = 0;
  if ((f & IORING_CQE_F_MORE) != 0) out |= kMore;
  if ((f & IORING_CQE_F_BUFFER) != 0) out |= kBufferSelected | (f & 0xffff0000u);
  if ((f & IORING_CQE_F_SOCK_NONEMPTY) != 0) out |= kSocketNonEmpty;
  if ((f & IORING_CQE_F_NOTIF) != 0) out |= kNotification;
  return out;
}

__kernel_timespec to_timespec(Duration d) noexcept {
  if (d < Duration::zero()) d = Duration::zero();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
  __kernel_timespec ts{};
  ts.tv_sec = secs.count();
  ts.tv_nsec = (d - secs).count();
  return ts;
}

}  // namespace

UringEngine::~UringEngine() {
  for (auto& r : buffer_rings_) r->unregister();
  if (ring_ready_) io_uring_queue_exit(&ring_);
  buffer_rings_.clear();
  if (event_fd_ >= 0) ::close(event_fd_);
}

void UringEngine::enable_if_needed() noexcept {
  if (enabled_) return;
  enabled_ = true;
  // liburing 2.3 declares io_uring_enable_rings() but does not export it: raw syscall.
  long rc = ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                      nullptr, 0);
  SALVO_CHECK(rc == 0);
  // No io_uring_register_ring_fd(): the registration is per task, and engines are
  // destroyed on the main thread, where unregistering would hit that task's own table.
}

void UringEngine::bind_to_current_thread() noexcept { enable_if_needed(); }

int UringEngine::submit() noexcept {
  enable_if_needed();
  int rc = io_uring_submit(&ring_);
  if (io_uring_sq_ready(&ring_) == 0) {
    staged_ts_.clear();
    staged_addr_.clear();
  }
  return rc;
}

io_uring_sqe* UringEngine::get_sqe() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // SQ full: submit what is queued and retry. EBUSY/EAGAIN (CQ backlog) clear once the
  // kernel flushes its overflow list; running out for good is fatal.
  for (int i = 0; sqe == nullptr && i < kSubmitRetries; ++i) {
    int rc = submit();
    if (rc < 0 && rc != -EINTR) sched_yield();
    sqe = io_uring_get_sqe(&ring_);
  }
  SALVO_CHECK(sqe != nullptr);
  return sqe;
}

void UringEngine::set_completion(io_uring_sqe* sqe, Completion* c) noexcept {
  auto ud = reinterpret_cast<std::uintptr_t>(c);
  SALVO_ASSERT(c == nullptr || (ud & 7u) == 0);
  io_uring_sqe_set_data64(sqe, c == nullptr ? kTagIgnore : ud);
}

void UringEngine::accept_multishot(int listen_fd, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  set_completion(sqe, c);
}

void UringEngine::connect(int fd, const sockaddr* addr, socklen_t len, Completion* c) noexcept {
  SALVO_ASSERT(len <= sizeof(sockaddr_storage));
  sockaddr_storage& copy = staged_addr_.emplace_back();
  std::memcpy(&copy, addr, len);
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&copy), len);
  set_completion(sqe, c);
}

void UringEngine::recv(int fd, std::span<char> buf, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), 0);
  set_completion(sqe, c);
}

void UringEngine::recv_multishot(int fd, BufferRing& ring, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = ring.group();
  set_completion(sqe, c);
}

void UringEngine::send(int fd, std::span<const char> buf, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_send(sqe, fd, buf.data(), buf.size(), MSG_NOSIGNAL);
  set_completion(sqe, c);
}

void UringEngine::sendmsg(int fd, const msghdr* msg, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
  set_completion(sqe, c);
}

void UringEngine::send_zc(int fd, std::span<const char> buf, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_send_zc(sqe, fd, buf.data(), buf.size(), MSG_NOSIGNAL, 0);
  set_completion(sqe, c);
}

void UringEngine::shutdown(int fd, int how, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_shutdown(sqe, fd, how);
  set_completion(sqe, c);
}

void UringEngine::close(int fd, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_close(sqe, fd);
  set_completion(sqe, c);
}

void UringEngine::read(int fd, std::span<char> buf, std::uint64_t offset,
                       Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), offset);
  set_completion(sqe, c);
}

void UringEngine::write(int fd, std::span<const char> buf, std::uint64_t offset,
                        Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_write(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), offset);
  set_completion(sqe, c);
}

void UringEngine::writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
                         Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_writev(sqe, fd, iov.data(), static_cast<unsigned>(iov.size()), offset);
  set_completion(sqe, c);
}

void UringEngine::fdatasync(int fd, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
  set_completion(sqe, c);
}

void UringEngine::fsync(int fd, Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_fsync(sqe, fd, 0);
  set_completion(sqe, c);
}

void UringEngine::timeout(Duration after, Completion* c) noexcept {
  __kernel_timespec& ts = staged_ts_.emplace_back(to_timespec(after));
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_timeout(sqe, &ts, 0, 0);
  set_completion(sqe, c);
}

void UringEngine::cancel(Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(c), IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, kTagIgnore);
}

void UringEngine::nop(Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_nop(sqe);
  set_completion(sqe, c);
}

unsigned UringEngine::pending_sqes_for_test() const noexcept {
  return io_uring_sq_ready(&ring_);
}

Result<BufferRing*> UringEngine::create_buffer_ring(std::uint16_t count, std::uint32_t size) {
  if (!features_.buffer_rings) return fail(std::errc::not_supported);
  enable_if_needed();
  auto group = static_cast<std::uint16_t>(buffer_rings_.size());
  auto r = UringBufferRing::create(&ring_, group, count, size);
  if (!r) return std::unexpected(r.error());
  buffer_rings_.push_back(std::move(*r));
  return buffer_rings_.back().get();
}

WakeTarget UringEngine::wake_target() const noexcept {
  if (features_.msg_ring && options_.wake_mode == WakeMode::Auto) {
    return {ring_.ring_fd, WakeVia::MsgRing};
  }
  return any_thread_wake_target();
}

WakeTarget UringEngine::any_thread_wake_target() const noexcept {
  return {event_fd_, WakeVia::EventFd};
}

void UringEngine::wake(WakeTarget target) noexcept {
  if (target.via == WakeVia::EventFd) {
    wake_from_any_thread(target);
    return;
  }
  io_uring_sqe* sqe = get_sqe();
  // The target sees a CQE with user_data kTagWakeMsg; ours is skipped when possible.
  io_uring_prep_msg_ring(sqe, target.fd, 0, kTagWakeMsg, 0);
  io_uring_sqe_set_data64(sqe, kTagIgnore);
  if (cqe_skip_) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void UringEngine::arm_eventfd_read() noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, event_fd_, &event_value_, sizeof(event_value_), 0);
  io_uring_sqe_set_data64(sqe, kTagEventFd);
  eventfd_armed_ = true;
}

void UringEngine::dispatch(const io_uring_cqe& cqe) noexcept {
  switch (cqe.user_data) {
    case kTagIgnore:
      return;
    case kTagWakeMsg:
      if (options_.on_wake != nullptr) options_.on_wake->on_complete(0, 0);
      return;
    case kTagEventFd:
      eventfd_armed_ = false;
      if (cqe.res != -ECANCELED) arm_eventfd_read();
      if (options_.on_wake != nullptr) options_.on_wake->on_complete(0, 0);
      return;
    default:
      break;
  }
  auto* c = reinterpret_cast<Completion*>(static_cast<std::uintptr_t>(cqe.user_data));
  c->on_complete(cqe.res, translate_flags(cqe.flags));
}

int UringEngine::run_once(Duration max_wait) noexcept {
  enable_if_needed();
  if (max_wait <= Duration::zero()) {
    if (io_uring_sq_ready(&ring_) > 0) (void)submit();
    // DEFER_TASKRUN: completions are posted only when this task asks for them.
    if (features_.defer_taskrun && io_uring_cq_ready(&ring_) == 0) {
      (void)io_uring_get_events(&ring_);
    }
  } else {
    __kernel_timespec ts = to_timespec(max_wait);
    io_uring_cqe* first = nullptr;
    // Only the wait is timed (two clock reads per blocking call, none on the busy path).
    const auto t0 = std::chrono::steady_clock::now();
    // -ETIME (no completion in time) and -EINTR (a signal) both just mean "look again".
    (void)io_uring_submit_and_wait_timeout(&ring_, &first, 1,
                                           max_wait == kWaitForever ? nullptr : &ts, nullptr);
    blocked_ns_ += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    if (io_uring_sq_ready(&ring_) == 0) {
      staged_ts_.clear();
      staged_addr_.clear();
    }
  }
  int dispatched = 0;
  io_uring_cqe* cqes[kCqeBatch];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) dispatch(*cqes[i]);
    io_uring_cq_advance(&ring_, n);
    dispatched += static_cast<int>(n);
    if (n < kCqeBatch) break;
  }
  return dispatched;
}

}  // namespace salvo::io::uring
