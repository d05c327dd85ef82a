// SPDX-License-Identifier: Apache-2.0
// KernelConnection: one TCP socket driven through io::Engine: multishot receive into the
// input buffer (or the TlsSession), one send in flight over double-buffered output (plain
// send, or send_zc from buffers pinned until their notification), one timer for the idle,
// deadline, write and linger limits, STARTTLS, and a teardown that waits for every
// completion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <salvo/base/byte_buffer.h>
#include <salvo/net/stack.h>
#include <salvo/net/tls.h>

#include "net/op.h"

namespace salvo::net {

class KernelStack;

// Owner: the KernelStack's shard. Phases:
//
//   Open --close()--> Draining --output empty--> ShuttingDown --shutdown(WR) done--+
//     |                  |                            |                           v
//     +--abort()/error/idle timeout/linger timeout----+-----------------------> Closing
//   Closing: cancels recv/send/timer; when the last completion arrived (ops_ == 0) the
//   stack runs us deferred: close(fd), on_close(why) once, then the object is freed.
//   send_zc notifications still owed do not hold up close(fd) and on_close (an abortive
//   close sets SO_LINGER 0 so the kernel drops the queued data and releases the pages):
//   the object lingers in Done, out of connection_count(), until the last one arrived.
//
// Zero-copy (KernelStackOptions::zerocopy_threshold): a write of at least the threshold
// moves the in-flight buffer into a ZcBuffer and sends it with send_zc. The kernel reads
// that buffer until its notification, so it is neither written, reused
// nor freed before; the next write can go out meanwhile from the other buffers. A refusal
// (-EOPNOTSUPP and the like) switches the connection to plain send for good.
class KernelConnection final : public Connection, public Deferred {
 public:
  KernelConnection(KernelStack& stack, int fd, std::uint64_t id, const SocketAddress& peer,
                   const SocketAddress& local);
  ~KernelConnection() override;

  void set_handler(ConnectionHandler* h) noexcept override { handler_ = h; }
  ByteBuffer& output() noexcept override { return out_; }
  void flush() noexcept override;
  std::size_t pending_output() const noexcept override;
  void pause_reading() noexcept override { paused_ = true; }
  void resume_reading() noexcept override;
  void start_tls(const TlsContext& ctx, std::string_view server_name) noexcept override;
  const TlsSession* tls() const noexcept override { return tls_.get(); }
  void close() noexcept override { begin_close({}); }
  void abort() noexcept override;
  void set_idle_timeout(Duration idle) noexcept override;
  void set_deadline(TimePoint when) noexcept override;
  void set_write_timeout(Duration stalled) noexcept override;
  const SocketAddress& peer() const noexcept override { return peer_; }
  const SocketAddress& local() const noexcept override { return local_; }
  std::uint64_t id() const noexcept override { return id_; }

  // Starts receiving once the accept/connect handler returned; aborts without a handler.
  void start() noexcept;
  // Stack destruction: forget the handler and cancel everything.
  void teardown_silently() noexcept;
  void run_deferred() noexcept override;

 private:
  friend class KernelStack;
  enum class Phase { Open, Draining, ShuttingDown, Closing, Done };

  // One buffer sent with send_zc, and the Completion of every send_zc reading from it
  // (a partial send continues from `sent` with another submission on the same buffer).
  struct ZcBuffer final : io::Completion {
    explicit ZcBuffer(KernelConnection* c) : owner(c), bytes(0) {}
    void on_complete(std::int32_t res, std::uint32_t flags) noexcept override {
      owner->on_send_zc(*this, res, flags);
    }
    KernelConnection* owner;
    ByteBuffer bytes;      // pinned while owed > 0
    std::size_t sent = 0;  // bytes of `bytes` already accepted by the socket
    int owed = 0;          // final calls (a result without kMore, or a notification) owed
  };

  void on_recv(std::int32_t res, std::uint32_t flags) noexcept;
  void on_send(std::int32_t res, std::uint32_t flags) noexcept;
  void on_send_zc(ZcBuffer& z, std::int32_t res, std::uint32_t flags) noexcept;
  void on_sent(std::int32_t res) noexcept;
  void on_timer(std::int32_t res, std::uint32_t flags) noexcept;
  void on_shutdown(std::int32_t res, std::uint32_t flags) noexcept;

  void arm_recv() noexcept;
  void arm_send() noexcept;
  void arm_timer() noexcept;
  void wake_by(TimePoint when) noexcept;
  void op_done(bool& armed) noexcept;
  bool want_recv() const noexcept;
  void ingest(std::string_view bytes) noexcept;
  void drive_tls() noexcept;
  void deliver() noexcept;
  void after_input() noexcept;
  void pump_output() noexcept;
  void fill_inflight() noexcept;
  bool has_unsent() const noexcept { return zc_active_ != nullptr || !inflight_.empty(); }
  ZcBuffer* take_zc_buffer() noexcept;
  void recycle_if_released(ZcBuffer& z) noexcept;
  void begin_close(std::error_code why) noexcept;
  void begin_shutdown() noexcept;
  void teardown(std::error_code why) noexcept;
  void maybe_finish() noexcept;
  void finalize() noexcept;
  TimePoint deadline() const noexcept;

  KernelStack& stack_;
  int fd_;
  std::uint64_t id_;
  SocketAddress peer_;
  SocketAddress local_;
  ConnectionHandler* handler_ = nullptr;

  ByteBuffer in_;        // plaintext input for on_data
  ByteBuffer out_;       // the handler writes here
  ByteBuffer inflight_;  // what the send in flight is writing (plain or TLS records)
  // send_zc buffers (at most kMaxZcBuffers); zc_active_ is the one being written, if any:
  // then inflight_ is empty and the send in flight reads zc_active_->bytes from `sent`.
  std::vector<std::unique_ptr<ZcBuffer>> zc_;
  ZcBuffer* zc_active_ = nullptr;
  bool zc_enabled_ = false;  // option, engine feature, and no refusal seen
  std::unique_ptr<TlsSession> tls_;
  std::unique_ptr<char[]> rx_;  // single-shot recv buffer when the stack has no ring

  Op<KernelConnection> recv_op_;
  Op<KernelConnection> send_op_;
  Op<KernelConnection> timer_op_;
  Op<KernelConnection> shutdown_op_;
  bool recv_armed_ = false;
  bool send_armed_ = false;
  bool timer_armed_ = false;
  bool shutdown_armed_ = false;
  bool send_is_zc_ = false;   // the send in flight was a send_zc (on zc_active_)
  int ops_ = 0;               // final calls owed by the engine, notifications included
  int zc_notifications_ = 0;  // send_zc notifications owed (a part of ops_)
  bool lingering_ = false;    // Done, waiting for notifications only

  Phase phase_ = Phase::Open;
  std::error_code why_;
  bool paused_ = false;
  bool recv_stopped_ = false;  // paused with too much input: receive cancelled
  bool peer_eof_ = false;
  bool deliver_pending_ = false;
  bool started_ = false;
  Duration idle_{0};
  TimePoint last_rx_{};
  Duration write_stall_{0};  // set_write_timeout
  TimePoint last_tx_{};      // the send in flight was submitted (after the socket took bytes)
  TimePoint fixed_deadline_ = TimePoint::max();  // set_deadline
  TimePoint armed_for_ = TimePoint::max();       // what the armed timer waits for
  TimePoint close_deadline_ = TimePoint::max();
  std::size_t slot_ = 0;  // index in KernelStack::connections_
};

}  // namespace salvo::net
