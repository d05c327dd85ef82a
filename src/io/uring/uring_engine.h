// SPDX-License-Identifier: Apache-2.0
// UringEngine: io::Engine over one io_uring (liburing 2.3). Private to the io module; the
// rest of salvo sees it only through io::Engine and create_engine("uring", ...).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <salvo/io/engine.h>

#include "io/uring/liburing_include.h"

namespace salvo::io::uring {

// user_data values below 8 are engine-internal tags; anything else is a Completion*
// (8-aligned: it holds a vtable pointer). Kept inside src/io/uring/.
inline constexpr std::uint64_t kTagIgnore = 0;   // cancel, msg_ring source, fire-and-forget
inline constexpr std::uint64_t kTagWakeMsg = 1;  // MSG_RING wake arrived from another ring
inline constexpr std::uint64_t kTagEventFd = 2;  // the armed eventfd read completed

class UringBufferRing;

// Owner: one thread (the shard's). Lifecycle: create() on any thread (the ring starts
// disabled when SINGLE_ISSUER is on), enabled on the first submission or by
// bind_to_current_thread(), destroyed after its thread stopped using it.
class UringEngine final : public Engine {
 public:
  // Diagnostics: not_supported with a one-line *why when io_uring is missing, disabled,
  // or lacks a required op or feature.
  static Result<std::unique_ptr<UringEngine>> create(const EngineOptions& options,
                                                     std::string* why);
  ~UringEngine() override;
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  std::string_view name() const noexcept override { return "uring"; }
  const Features& features() const noexcept override { return features_; }

  void accept_multishot(int listen_fd, Completion* c) noexcept override;
  void connect(int fd, const sockaddr* addr, socklen_t len, Completion* c) noexcept override;
  void recv(int fd, std::span<char> buf, Completion* c) noexcept override;
  void recv_multishot(int fd, BufferRing& ring, Completion* c) noexcept override;
  void send(int fd, std::span<const char> buf, Completion* c) noexcept override;
  void sendmsg(int fd, const msghdr* msg, Completion* c) noexcept override;
  void send_zc(int fd, std::span<const char> buf, Completion* c) noexcept override;
  void shutdown(int fd, int how, Completion* c) noexcept override;
  void close(int fd, Completion* c) noexcept override;

  void read(int fd, std::span<char> buf, std::uint64_t offset, Completion* c) noexcept override;
  void write(int fd, std::span<const char> buf, std::uint64_t offset,
             Completion* c) noexcept override;
  void writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
              Completion* c) noexcept override;
  void fdatasync(int fd, Completion* c) noexcept override;
  void fsync(int fd, Completion* c) noexcept override;

  void timeout(Duration after, Completion* c) noexcept override;
  void cancel(Completion* c) noexcept override;

  Result<BufferRing*> create_buffer_ring(std::uint16_t count, std::uint32_t size) override;

  WakeTarget wake_target() const noexcept override;
  void wake(WakeTarget target) noexcept override;
  WakeTarget any_thread_wake_target() const noexcept override;
  void bind_to_current_thread() noexcept override;

  int run_once(Duration max_wait) noexcept override;
  std::uint64_t blocked_ns() const noexcept override { return blocked_ns_; }

  // A no-op through the ring: measures one SQE -> CQE -> on_complete round trip (bench).
  void nop(Completion* c) noexcept;
  // SQEs prepared and not yet submitted (tests).
  unsigned pending_sqes_for_test() const noexcept;

 private:
  UringEngine() = default;
  // Returns a zeroed SQE; submits to make room when the SQ is full.
  io_uring_sqe* get_sqe() noexcept;
  void enable_if_needed() noexcept;
  int submit() noexcept;
  void arm_eventfd_read() noexcept;
  void dispatch(const io_uring_cqe& cqe) noexcept;
  void set_completion(io_uring_sqe* sqe, Completion* c) noexcept;

  io_uring ring_{};
  bool ring_ready_ = false;       // io_uring_queue_init succeeded
  bool enabled_ = true;           // false while IORING_SETUP_R_DISABLED is pending
  unsigned setup_flags_ = 0;
  Features features_;
  std::uint64_t blocked_ns_ = 0;
  EngineOptions options_;
  int event_fd_ = -1;
  std::uint64_t event_value_ = 0;  // target of the armed eventfd read
  bool eventfd_armed_ = false;
  bool cqe_skip_ = false;          // IOSQE_CQE_SKIP_SUCCESS usable
  // Data the kernel reads at submission time (timespecs, addresses), kept stable until
  // the next submit (IORING_FEAT_SUBMIT_STABLE); std::deque keeps element addresses.
  std::deque<__kernel_timespec> staged_ts_;
  std::deque<sockaddr_storage> staged_addr_;
  std::vector<std::unique_ptr<UringBufferRing>> buffer_rings_;
};

}  // namespace salvo::io::uring
