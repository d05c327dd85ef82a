// SPDX-License-Identifier: Apache-2.0
// io::Engine: the completion-based IO seam. One Engine per shard, used only
// from that shard's thread. Backends: io_uring (src/io/uring/), and the FakeEngine of the
// unit tests. Nothing here names liburing.
//
// Contract:
//  - every operation names a Completion; when it finishes, the engine calls
//    on_complete(res, flags) from inside run_once() on the owning thread;
//  - res >= 0 is the operation's result (bytes, fd, ...); res < 0 is -errno
//    (to_error_code() converts it, in one place);
//  - a multishot op (accept_multishot, recv_multishot) calls the same Completion until a
//    call arrives without kMore; then the owner re-arms if it still wants more;
//  - recv_multishot picks buffers from a BufferRing: kBufferSelected is set and
//    buffer_id(flags) names the buffer, which the owner returns with BufferRing::recycle();
//    res == -ENOBUFS (without kMore: the op has ended) means "the ring ran dry: return
//    buffers with recycle(), then re-arm"; no data was lost, it stays in the socket;
//  - send_zc delivers its result with kMore set, then a second call with kNotification
//    when the kernel has released the buffer; only then may the buffer be reused. If the
//    first call lacks kMore (an early failure), no notification follows. Measured on
//    loopback (bench/micro/io_bench.cc): it pays from about 16 KiB, not for small sends;
//  - a Completion must stay alive until its last call (for cancel: until the -ECANCELED
//    or final call arrives).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>

namespace salvo::io {

// Backend-neutral completion flags (low 16 bits); the buffer id sits in the high 16 bits.
inline constexpr std::uint32_t kMore = 1u << 0;            // more calls will follow
inline constexpr std::uint32_t kBufferSelected = 1u << 1;  // buffer_id(flags) is valid
inline constexpr std::uint32_t kNotification = 1u << 2;    // send_zc buffer released
inline constexpr std::uint32_t kSocketNonEmpty = 1u << 3;  // more data already queued

constexpr std::uint16_t buffer_id(std::uint32_t flags) noexcept {
  return static_cast<std::uint16_t>(flags >> 16);
}

class Completion {
 public:
  virtual void on_complete(std::int32_t res, std::uint32_t flags) noexcept = 0;

 protected:
  ~Completion() = default;
};

// -errno from a completion to an error_code: the one conversion point.
inline std::error_code to_error_code(std::int32_t res) noexcept {
  return {res < 0 ? -res : res, std::system_category()};
}

// What the backend found at start-up. Required features missing: the
// engine is not created and create_engine() says which in one line.
struct Features {
  bool msg_ring = false;          // IORING_OP_MSG_RING wakeups (else eventfd)
  bool multishot_accept = false;
  bool multishot_recv = false;
  bool buffer_rings = false;      // provided-buffer rings
  bool send_zc = false;
  bool defer_taskrun = false;
  bool single_issuer = false;
  bool coop_taskrun = false;
  std::string describe() const;   // "msg_ring multishot_recv ..." for the start-up log
};

// A ring of `count` provided buffers of `size` bytes each, owned by one Engine.
class BufferRing {
 public:
  virtual ~BufferRing() = default;
  virtual std::uint16_t group() const noexcept = 0;
  virtual std::span<char> buffer(std::uint16_t id) noexcept = 0;
  // Hands the buffer back to the kernel for a later receive.
  virtual void recycle(std::uint16_t id) noexcept = 0;
};

// How a WakeTarget is reached: an IORING_OP_MSG_RING into the target's ring, or a write(2)
// to an eventfd the target engine keeps a read armed on.
enum class WakeVia : std::uint8_t { MsgRing, EventFd };

// An opaque address another shard's engine can be woken through (ring fd or eventfd).
struct WakeTarget {
  int fd = -1;
  WakeVia via = WakeVia::MsgRing;
};

// Which wake-up transport wake_target() hands out. Auto: MSG_RING when the probe found
// it, else eventfd. ForceEventFd exists so tests cover the fallback on new kernels.
enum class WakeMode : std::uint8_t { Auto, ForceEventFd };

struct EngineOptions {
  unsigned queue_depth = 4096;
  // Completion called when another shard wakes this engine (may be null). Its res is 0
  // and flags 0; several wakes may be folded into one call.
  Completion* on_wake = nullptr;
  WakeMode wake_mode = WakeMode::Auto;
  // Try IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN (falls back when refused).
  bool try_taskrun_flags = true;
};

inline constexpr Duration kWaitForever = Duration::max();

class Engine {
 public:
  virtual ~Engine() = default;

  virtual std::string_view name() const noexcept = 0;
  virtual const Features& features() const noexcept = 0;

  // Sockets.
  virtual void accept_multishot(int listen_fd, Completion* c) noexcept = 0;
  virtual void connect(int fd, const sockaddr* addr, socklen_t len, Completion* c) noexcept = 0;
  virtual void recv(int fd, std::span<char> buf, Completion* c) noexcept = 0;
  virtual void recv_multishot(int fd, BufferRing& ring, Completion* c) noexcept = 0;
  virtual void send(int fd, std::span<const char> buf, Completion* c) noexcept = 0;
  virtual void sendmsg(int fd, const msghdr* msg, Completion* c) noexcept = 0;
  virtual void send_zc(int fd, std::span<const char> buf, Completion* c) noexcept = 0;
  virtual void shutdown(int fd, int how, Completion* c) noexcept = 0;
  // Closes fd; c may be null (fire and forget).
  virtual void close(int fd, Completion* c) noexcept = 0;

  // Files (the spool).
  virtual void read(int fd, std::span<char> buf, std::uint64_t offset, Completion* c) noexcept = 0;
  virtual void write(int fd, std::span<const char> buf, std::uint64_t offset,
                     Completion* c) noexcept = 0;
  virtual void writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
                      Completion* c) noexcept = 0;
  virtual void fdatasync(int fd, Completion* c) noexcept = 0;
  // Metadata too: a directory's fsync makes the names created or renamed in it durable.
  virtual void fsync(int fd, Completion* c) noexcept = 0;

  // Timers: res == -ETIME when it fires, -ECANCELED when cancelled.
  virtual void timeout(Duration after, Completion* c) noexcept = 0;
  // Cancels every pending operation whose Completion is c; each still gets its final call.
  virtual void cancel(Completion* c) noexcept = 0;

  // Provided-buffer ring for recv_multishot; lives as long as the engine.
  [[nodiscard]] virtual Result<BufferRing*> create_buffer_ring(std::uint16_t count,
                                                               std::uint32_t size) = 0;

  // Cross-shard wakeups: wake() may only be called on the engine of the calling thread;
  // it makes the engine owning `target` return from run_once() and call its on_wake.
  // The wake is queued on this engine and leaves with its next submission (run_once).
  virtual WakeTarget wake_target() const noexcept = 0;
  virtual void wake(WakeTarget target) noexcept = 0;
  // An eventfd target that any thread (or a signal handler) may wake through
  // wake_from_any_thread(), without an engine of its own. Always available.
  virtual WakeTarget any_thread_wake_target() const noexcept = 0;

  // Makes the calling thread the engine's owner. Rings set up with SINGLE_ISSUER belong to
  // one task, so create_engine() leaves the ring disabled and the first submission enables
  // it on the calling thread; ShardSet calls this on the shard thread before anything runs.
  virtual void bind_to_current_thread() noexcept = 0;

  // Submits queued operations, waits up to max_wait for at least one completion (0 = do
  // not wait, kWaitForever = until a completion or wake), dispatches every available
  // completion. Returns how many were dispatched. -EINTR in the wait is not an error.
  virtual int run_once(Duration max_wait) noexcept = 0;

  // Nanoseconds spent blocked in run_once's wait for completions since creation (read on
  // the engine's thread): the idle part of a shard's time, for loop utilisation. Engines
  // that never block report 0.
  virtual std::uint64_t blocked_ns() const noexcept { return 0; }
};

// Wakes an EventFd target (any_thread_wake_target()) from any thread: one write(2), so it
// is async-signal-safe. A MsgRing target needs an engine: use Engine::wake().
void wake_from_any_thread(WakeTarget target) noexcept;

// The backend registry: "uring" is the only kernel backend today.
// Diagnostics: errc::not_supported with a one-line message in *why when io_uring is
// missing or disabled (kernel.io_uring_disabled, seccomp, old kernel).
[[nodiscard]] Result<std::unique_ptr<Engine>> create_engine(std::string_view backend,
                                                            const EngineOptions& options,
                                                            std::string* why);

}  // namespace salvo::io
