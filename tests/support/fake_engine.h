// SPDX-License-Identifier: Apache-2.0
// FakeEngine: an io::Engine that completes operations from scripted results (after
// Seastar's loopback_socket.hh). Deterministic: no kernel, no threads, time from
// a TestClock. For unit tests of net, spool and outbound.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/io/engine.h>

#include "test_clock.h"

namespace salvo::test {

enum class OpKind : std::uint8_t {
  AcceptMultishot, Connect, Recv, RecvMultishot, Send, SendMsg, SendZc, Shutdown, Close,
  Read, Write, Writev, Fdatasync, Fsync, Timeout,
};

// One submitted operation, as the code under test asked for it.
struct FakeOp {
  std::uint64_t seq = 0;  // submission order
  OpKind kind{};
  int fd = -1;
  io::Completion* completion = nullptr;
  std::span<char> buffer;     // recv / read destination
  std::string data;           // bytes carried by send / sendmsg / send_zc / write / writev
  std::span<const char> source;  // send / send_zc: the caller's buffer (to check pinning)
  std::uint64_t offset = 0;   // read / write / writev
  TimePoint deadline{};       // timeout
  io::BufferRing* ring = nullptr;  // recv_multishot
  int how = 0;                // shutdown
  sockaddr_storage addr{};    // connect
  socklen_t addr_len = 0;
  bool zc_result_delivered = false;  // send_zc: only the notification is still due
};

// How the engine reacts to a new op by default. Auto: sends, writes, fdatasync, fsync, close,
// shutdown and connect succeed at once (full length, res 0); recv, accept and timers wait
// for the test. Manual: everything waits for complete_next()/deliver().
enum class FakeMode : std::uint8_t { Auto, Manual };

// Owner: the test thread. Completions are delivered only from run_once(), in the order
// they were queued, never from inside a submitting call (like the real ring).
class FakeEngine final : public io::Engine {
 public:
  explicit FakeEngine(TestClock& clock, FakeMode mode = FakeMode::Auto,
                      io::EngineOptions options = {});
  ~FakeEngine() override;

  // --- scripting -------------------------------------------------------------------
  // The next op of `kind` completes with res (and flags) instead of the default; use a
  // negative errno to inject an error (-ECONNRESET, -EIO, -ENOSPC ...). FIFO per kind.
  void script(OpKind kind, std::int32_t res, std::uint32_t flags = 0);
  // Completes the oldest pending op of `kind`. With kMore in flags a multishot op stays
  // pending. Returns false when no such op is pending. SendZc, like the kernel: a result
  // with kMore leaves the op pending for complete_next(SendZc, 0, kNotification), which
  // picks the oldest op awaiting its notification; cancel() no longer reaches it.
  bool complete_next(OpKind kind, std::int32_t res, std::uint32_t flags = 0);
  // Completes the newest pending op of `kind` (the kernel may finish them in any order).
  bool complete_newest(OpKind kind, std::int32_t res);
  // Queues a raw call for the next run_once().
  void complete(io::Completion* c, std::int32_t res, std::uint32_t flags = 0);
  // Feeds bytes to the pending recv/recv_multishot on fd. recv: copies what fits, res = n.
  // recv_multishot: one buffer from the ring per call (-ENOBUFS ends it when the ring is
  // empty, as the kernel does). Returns the bytes consumed (0: no pending receive).
  std::size_t deliver(int fd, std::string_view bytes);
  // Peer closed: the pending receive on fd completes with res 0 (multishot ends).
  bool deliver_eof(int fd);
  // A new connection on a multishot accept of listen_fd (stays armed).
  bool deliver_accept(int listen_fd, int new_fd);
  // Another shard woke this engine: on_wake runs at the next run_once().
  void simulate_wake();

  // --- inspection ------------------------------------------------------------------
  const std::deque<FakeOp>& pending() const noexcept { return pending_; }
  std::size_t pending_count(OpKind kind) const noexcept;
  const std::vector<FakeOp>& history() const noexcept { return history_; }
  // Everything written to fd by send/sendmsg/send_zc/write/writev, in order.
  const std::string& sent(int fd) const;
  std::size_t wakes_sent() const noexcept { return wakes_sent_; }
  std::size_t cancels() const noexcept { return cancels_; }

  // --- io::Engine ------------------------------------------------------------------
  std::string_view name() const noexcept override { return "fake"; }
  const io::Features& features() const noexcept override { return features_; }
  void accept_multishot(int listen_fd, io::Completion* c) noexcept override;
  void connect(int fd, const sockaddr* addr, socklen_t len, io::Completion* c) noexcept override;
  void recv(int fd, std::span<char> buf, io::Completion* c) noexcept override;
  void recv_multishot(int fd, io::BufferRing& ring, io::Completion* c) noexcept override;
  void send(int fd, std::span<const char> buf, io::Completion* c) noexcept override;
  void sendmsg(int fd, const msghdr* msg, io::Completion* c) noexcept override;
  void send_zc(int fd, std::span<const char> buf, io::Completion* c) noexcept override;
  void shutdown(int fd, int how, io::Completion* c) noexcept override;
  void close(int fd, io::Completion* c) noexcept override;
  void read(int fd, std::span<char> buf, std::uint64_t offset,
            io::Completion* c) noexcept override;
  void write(int fd, std::span<const char> buf, std::uint64_t offset,
             io::Completion* c) noexcept override;
  void writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
              io::Completion* c) noexcept override;
  void fdatasync(int fd, io::Completion* c) noexcept override;
  void fsync(int fd, io::Completion* c) noexcept override;
  void timeout(Duration after, io::Completion* c) noexcept override;
  void cancel(io::Completion* c) noexcept override;
  Result<io::BufferRing*> create_buffer_ring(std::uint16_t count, std::uint32_t size) override;
  io::WakeTarget wake_target() const noexcept override { return {-2, io::WakeVia::EventFd}; }
  void wake(io::WakeTarget) noexcept override { ++wakes_sent_; }
  io::WakeTarget any_thread_wake_target() const noexcept override { return wake_target(); }
  void bind_to_current_thread() noexcept override {}
  // Fires due timers (TestClock), then delivers every queued call. Never sleeps.
  int run_once(Duration max_wait) noexcept override;

 private:
  struct Queued {
    io::Completion* c;
    std::int32_t res;
    std::uint32_t flags;
  };
  struct Scripted {
    std::int32_t res;
    std::uint32_t flags;
  };
  class FakeBufferRing;

  void submit(FakeOp op) noexcept;
  // Default result for an op in Auto mode; nullopt: it waits for the test.
  std::optional<Scripted> auto_result(const FakeOp& op) const noexcept;
  void finish(const FakeOp& op, std::int32_t res, std::uint32_t flags) noexcept;

  TestClock& clock_;
  FakeMode mode_;
  io::EngineOptions options_;
  io::Features features_;
  std::uint64_t next_seq_ = 0;
  std::deque<FakeOp> pending_;
  std::vector<FakeOp> history_;
  std::deque<Queued> ready_;
  std::map<OpKind, std::deque<Scripted>> scripts_;
  std::map<int, std::string> sent_;
  std::vector<std::unique_ptr<FakeBufferRing>> rings_;
  std::size_t wakes_sent_ = 0;
  std::size_t cancels_ = 0;
  int pending_wakes_ = 0;
};

}  // namespace salvo::test
