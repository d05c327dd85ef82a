// SPDX-License-Identifier: Apache-2.0
// KernelConnection: the receive, send (plain and zero-copy), timer and teardown paths of
// one TCP connection.
// Handlers are called only from engine completions or from the stack's ready list, never
// from inside a call the handler made, so they may close/abort/pause from any callback.
#include "net/connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "net/kernel_stack.h"

namespace salvo::net {
namespace {

constexpr std::size_t kKeepBuffer = 64 * 1024;  // output capacity kept after a big send
// send_zc buffers per connection. Each waits for its notification (on a real network:
// the peer's ACK) before reuse; with all of them waiting, a write goes out as plain send
// rather than stall, so this bounds pinned memory, not throughput.
constexpr std::size_t kMaxZcBuffers = 4;

std::error_code errc(std::errc e) noexcept { return std::make_error_code(e); }

// send_zc results that mean "not with zero-copy" rather than "the connection is broken":
// the socket does not support it (-EOPNOTSUPP: not TCP/UDP), the kernel refuses the
// request (-EINVAL), or no memory for the notification or page pins (-ENOBUFS, -ENOMEM).
// The same bytes then go out with plain send, and the connection stays with plain send.
bool is_zerocopy_refusal(std::int32_t res) noexcept {
  return res == -EOPNOTSUPP || res == -EINVAL || res == -ENOBUFS || res == -ENOMEM;
}

// A peer on this host: loopback, or the connection's own local address (traffic to our
// own IP also goes through the loopback device).
bool is_local_peer(const SocketAddress& peer, const SocketAddress& local) noexcept {
  if (peer.empty()) return false;
  if (peer.family() == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(peer.sa());
    if ((ntohl(a->sin_addr.s_addr) >> 24) == 127) return true;
    if (local.family() != AF_INET) return false;
    const auto* b = reinterpret_cast<const sockaddr_in*>(local.sa());
    return a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (peer.family() == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(peer.sa());
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127) return true;
    if (local.family() == AF_INET6) {
      const auto* b = reinterpret_cast<const sockaddr_in6*>(local.sa());
      return IN6_ARE_ADDR_EQUAL(&a->sin6_addr, &b->sin6_addr);
    }
  }
  return false;
}

}  // namespace

KernelConnection::KernelConnection(KernelStack& stack, int fd, std::uint64_t id,
                                   const SocketAddress& peer, const SocketAddress& local)
    : stack_(stack),
      fd_(fd),
      id_(id),
      peer_(peer),
      local_(local),
      in_(4096),
      out_(4096),
      inflight_(0),
      recv_op_(this, &KernelConnection::on_recv),
      send_op_(this, &KernelConnection::on_send),
      timer_op_(this, &KernelConnection::on_timer),
      shutdown_op_(this, &KernelConnection::on_shutdown),
      last_rx_(stack.now()) {
  const KernelStackOptions& o = stack_.options();
  zc_enabled_ = o.zerocopy_threshold > 0 && stack_.engine().features().send_zc &&
                (o.zerocopy_to_local_peers || !is_local_peer(peer_, local_));
  if (stack_.buffer_ring() == nullptr) {
    rx_ = std::make_unique_for_overwrite<char[]>(stack_.options().recv_buffer_size);
  }
}

KernelConnection::~KernelConnection() = default;

// ---- bookkeeping ----------------------------------------------------------------------

void KernelConnection::op_done(bool& armed) noexcept {
  armed = false;
  --ops_;
  stack_.op_finished();
}

void KernelConnection::start() noexcept {
  started_ = true;
  if (handler_ == nullptr) {
    teardown(errc(std::errc::connection_aborted));
    return;
  }
  if (want_recv() && !recv_armed_) arm_recv();
}

bool KernelConnection::want_recv() const noexcept {
  return started_ && (phase_ == Phase::Open || phase_ == Phase::Draining ||
                      phase_ == Phase::ShuttingDown) &&
         !peer_eof_ && !recv_stopped_;
}

// Closing: finalize once only send_zc notifications are owed. Done (lingering): free once
// those arrived too.
void KernelConnection::maybe_finish() noexcept {
  if ((phase_ == Phase::Closing && ops_ == zc_notifications_) ||
      (phase_ == Phase::Done && ops_ == 0)) {
    stack_.schedule(this);
  }
}

void KernelConnection::run_deferred() noexcept {
  if (phase_ == Phase::Closing) {
    if (ops_ == zc_notifications_) finalize();  // may free this
    return;
  }
  if (phase_ == Phase::Done) {
    if (ops_ == 0) stack_.release(this);  // deletes this
    return;
  }
  if (phase_ != Phase::Open || !deliver_pending_) return;
  deliver_pending_ = false;
  deliver();
  after_input();
}

void KernelConnection::finalize() noexcept {
  phase_ = Phase::Done;
  if (fd_ >= 0 && zc_notifications_ > 0 && why_) {
    // Abortive close with zero-copy data still queued (e.g. a peer that stopped reading):
    // reset instead of lingering, so the kernel frees it and the notifications arrive.
    linger lg{.l_onoff = 1, .l_linger = 0};
    (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  if (fd_ >= 0) {
    if (stack_.destroying()) {
      ::close(fd_);
    } else {
      stack_.engine().close(fd_, nullptr);
    }
    fd_ = -1;
  }
  ++stack_.counters().closed;
  ConnectionHandler* h = std::exchange(handler_, nullptr);
  if (h != nullptr) h->on_close(*this, why_);
  if (ops_ > 0) {
    // send_zc notifications still owed: their ZcBuffers (and this) must outlive them.
    stack_.park(this);
    return;
  }
  stack_.release(this);  // deletes this
}

// ---- receive --------------------------------------------------------------------------

void KernelConnection::arm_recv() noexcept {
  if (io::BufferRing* ring = stack_.buffer_ring()) {
    stack_.engine().recv_multishot(fd_, *ring, &recv_op_);
  } else {
    stack_.engine().recv(fd_, {rx_.get(), stack_.options().recv_buffer_size}, &recv_op_);
  }
  recv_armed_ = true;
  ++ops_;
  stack_.op_started();
}

void KernelConnection::on_recv(std::int32_t res, std::uint32_t flags) noexcept {
  const bool final = (flags & io::kMore) == 0;
  if (final) op_done(recv_armed_);

  if (res > 0) {
    std::string_view bytes;
    io::BufferRing* ring = stack_.buffer_ring();
    const bool selected = (flags & io::kBufferSelected) != 0 && ring != nullptr;
    if (selected) {
      auto buf = ring->buffer(io::buffer_id(flags));
      bytes = {buf.data(), std::min<std::size_t>(static_cast<std::size_t>(res), buf.size())};
    } else if (rx_) {
      bytes = {rx_.get(), static_cast<std::size_t>(res)};
    }
    // Copy out and hand the buffer straight back to the kernel.
    if (phase_ == Phase::Open) ingest(bytes);
    if (selected) ring->recycle(io::buffer_id(flags));
    stack_.counters().bytes_received += static_cast<std::size_t>(res);
    last_rx_ = stack_.now();
  } else if ((flags & io::kBufferSelected) != 0 && stack_.buffer_ring() != nullptr) {
    stack_.buffer_ring()->recycle(io::buffer_id(flags));
  }

  if (res == -ENOBUFS) ++stack_.counters().recv_enobufs;
  if (res == 0) {
    peer_eof_ = true;
  } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {
    teardown(io::to_error_code(res));
  }
  if (phase_ == Phase::Closing || phase_ == Phase::Done) {
    maybe_finish();
    return;
  }

  if (res > 0 && phase_ == Phase::Open) {
    if (tls_) drive_tls();
    deliver();
  }
  after_input();

  // Bounded input while paused (the handler waits for something else, e.g. a spool
  // fsync): stop receiving; resume_reading() re-arms.
  if (paused_ && in_.size() > stack_.options().paused_input_limit && !recv_stopped_) {
    recv_stopped_ = true;
    ++stack_.counters().paused_overflows;
    if (recv_armed_) stack_.engine().cancel(&recv_op_);
  }
  // A multishot receive ended (kMore cleared, -ENOBUFS, or single-shot): re-arm.
  if (!recv_armed_ && want_recv()) {
    ++stack_.counters().recv_rearms;
    arm_recv();
  }
}

void KernelConnection::ingest(std::string_view bytes) noexcept {
  if (tls_) {
    tls_->feed_ciphertext(bytes);
  } else {
    in_.append(bytes);
  }
}

void KernelConnection::drive_tls() noexcept {
  const TlsSession::State before = tls_->state();
  const TlsSession::State now = tls_->advance(in_);
  if (now == TlsSession::State::Failed) {
    // Send the alert wolfSSL queued, then close with EPROTO; plaintext output is dropped.
    out_.clear();
    ++stack_.counters().tls_failures;
    begin_close(errc(std::errc::protocol_error));
    return;
  }
  if (before == TlsSession::State::Handshaking && now != TlsSession::State::Handshaking) {
    ++stack_.counters().tls_handshakes;
    if (handler_ != nullptr && phase_ == Phase::Open) handler_->on_tls_ready(*this);
  }
  if (now == TlsSession::State::Closed) peer_eof_ = true;  // close_notify
  pump_output();  // handshake records, tickets, alerts, and plaintext held back until now
}

void KernelConnection::deliver() noexcept {
  if (phase_ != Phase::Open || paused_ || handler_ == nullptr || in_.empty()) return;
  handler_->on_data(*this, in_);
}

// Peer EOF (or TLS close_notify): once the handler has seen the buffered input, close
// gracefully so queued replies still go out.
void KernelConnection::after_input() noexcept {
  if (peer_eof_ && phase_ == Phase::Open && !paused_) begin_close({});
}

void KernelConnection::resume_reading() noexcept {
  if (!paused_) return;
  paused_ = false;
  if (phase_ != Phase::Open) return;
  if (recv_stopped_) {
    recv_stopped_ = false;
    if (!recv_armed_ && want_recv()) arm_recv();
  }
  if (!in_.empty() || peer_eof_) {
    deliver_pending_ = true;
    stack_.schedule(this);
  }
}

// ---- send -----------------------------------------------------------------------------

void KernelConnection::flush() noexcept {
  if (phase_ == Phase::Open) pump_output();
}

std::size_t KernelConnection::pending_output() const noexcept {
  std::size_t n = out_.size() + inflight_.size();
  if (zc_active_ != nullptr) n += zc_active_->bytes.size() - zc_active_->sent;
  if (tls_) n += tls_->ciphertext_out().size();
  return n;
}

void KernelConnection::fill_inflight() noexcept {
  if (tls_) {
    if (tls_->state() == TlsSession::State::Established && !out_.empty()) {
      Status st = tls_->write(out_.view());
      out_.clear();
      if (!st) {
        teardown(errc(std::errc::protocol_error));
        return;
      }
    }
    if (!tls_->ciphertext_out().empty()) std::swap(inflight_, tls_->ciphertext_out());
  } else if (!out_.empty()) {
    std::swap(inflight_, out_);
  }
}

void KernelConnection::pump_output() noexcept {
  if (send_armed_ || phase_ == Phase::ShuttingDown || phase_ == Phase::Closing ||
      phase_ == Phase::Done || fd_ < 0) {
    return;
  }
  if (!has_unsent()) fill_inflight();
  if (phase_ == Phase::Closing) return;  // fill_inflight failed
  if (has_unsent()) {
    arm_send();
  } else if (phase_ == Phase::Draining) {
    begin_shutdown();
  }
}

// A buffer no send_zc reads any more, or a new one; null when all kMaxZcBuffers are owed
// a notification.
KernelConnection::ZcBuffer* KernelConnection::take_zc_buffer() noexcept {
  for (auto& z : zc_) {
    if (z->owed == 0 && z.get() != zc_active_) return z.get();
  }
  if (zc_.size() >= kMaxZcBuffers) return nullptr;
  zc_.push_back(std::make_unique<ZcBuffer>(this));
  return zc_.back().get();
}

// Once fully sent and released by the kernel, a ZcBuffer is emptied for the next write.
void KernelConnection::recycle_if_released(ZcBuffer& z) noexcept {
  if (&z == zc_active_ || z.owed > 0) return;
  z.bytes.clear();
  z.bytes.shrink_if_empty(kKeepBuffer);
  z.sent = 0;
}

void KernelConnection::arm_send() noexcept {
  io::Engine& e = stack_.engine();
  const std::size_t threshold = stack_.options().zerocopy_threshold;
  if (zc_active_ == nullptr && zc_enabled_ && inflight_.size() >= threshold) {
    // The buffer moves into a ZcBuffer, where it stays untouched until released;
    // inflight_ takes that ZcBuffer's empty storage in exchange.
    zc_active_ = take_zc_buffer();
    if (zc_active_ != nullptr) {
      std::swap(zc_active_->bytes, inflight_);
      zc_active_->sent = 0;
    }
  }
  if (zc_active_ != nullptr) {
    auto rest = zc_active_->bytes.readable().subspan(zc_active_->sent);
    send_is_zc_ = zc_enabled_ && rest.size() >= threshold;
    if (send_is_zc_) {
      e.send_zc(fd_, rest, zc_active_);
      ++zc_active_->owed;
      ++stack_.counters().zerocopy_sends;
    } else {
      e.send(fd_, rest, &send_op_);  // a short tail, or after a refusal: copying is fine
    }
  } else {
    send_is_zc_ = false;
    e.send(fd_, inflight_.readable(), &send_op_);
  }
  send_armed_ = true;
  ++ops_;
  stack_.op_started();
  // A new send, or the rest after the socket took part: the write timeout starts again.
  if (write_stall_ > Duration::zero()) {
    last_tx_ = stack_.now();
    if (phase_ == Phase::Open) wake_by(last_tx_ + write_stall_);
  }
}

void KernelConnection::on_send(std::int32_t res, std::uint32_t) noexcept {
  op_done(send_armed_);
  on_sent(res);
}

// Every call for a send_zc reading z: first its result (kMore: a notification follows),
// then the notification that the kernel no longer reads the buffer (engine.h).
void KernelConnection::on_send_zc(ZcBuffer& z, std::int32_t res, std::uint32_t flags) noexcept {
  if ((flags & io::kNotification) != 0) {
    --z.owed;
    --zc_notifications_;
    --ops_;
    stack_.op_finished();
    recycle_if_released(z);
    maybe_finish();
    return;
  }
  send_armed_ = false;
  if ((flags & io::kMore) != 0) {
    ++zc_notifications_;  // this call stays owed, as the notification
  } else {
    --z.owed;
    --ops_;
    stack_.op_finished();
  }
  if (res < 0 && is_zerocopy_refusal(res)) {
    zc_enabled_ = false;
    ++stack_.counters().zerocopy_fallbacks;
    if (phase_ == Phase::Closing || phase_ == Phase::Done) {
      maybe_finish();
      return;
    }
    arm_send();  // the same bytes, from the same buffer, with plain send
    return;
  }
  on_sent(res);
}

// The result of the send in flight, plain or zero-copy.
void KernelConnection::on_sent(std::int32_t res) noexcept {
  if (res < 0 || (res == 0 && has_unsent())) {
    if (res != -ECANCELED) {
      teardown(res < 0 ? io::to_error_code(res) : errc(std::errc::broken_pipe));
    }
    maybe_finish();
    return;
  }
  auto n = static_cast<std::size_t>(res);
  if (zc_active_ != nullptr) {
    ZcBuffer& z = *zc_active_;
    z.sent += std::min(n, z.bytes.size() - z.sent);
    if (z.sent == z.bytes.size()) {
      zc_active_ = nullptr;  // written; pinned until its notifications arrived
      recycle_if_released(z);
    }
  } else {
    inflight_.consume(std::min(n, inflight_.size()));
  }
  stack_.counters().bytes_sent += n;
  if (phase_ == Phase::Closing || phase_ == Phase::Done) {
    maybe_finish();
    return;
  }
  if (has_unsent()) {  // partial send: write the rest
    arm_send();
    return;
  }
  inflight_.shrink_if_empty(kKeepBuffer);
  fill_inflight();
  if (phase_ == Phase::Closing) {
    maybe_finish();
    return;
  }
  if (has_unsent()) {
    arm_send();
    return;
  }
  if (phase_ == Phase::Draining) {
    begin_shutdown();
  } else if (phase_ == Phase::Open && out_.empty() && handler_ != nullptr) {
    handler_->on_drained(*this);
  }
}

// ---- STARTTLS -------------------------------------------------------------------------

void KernelConnection::start_tls(const TlsContext& ctx, std::string_view server_name) noexcept {
  if (phase_ != Phase::Open) return;
  if (tls_) {
    teardown(errc(std::errc::protocol_error));  // TLS twice on one stream
    return;
  }
  // RFC 3207 §4.2, CVE-2011-0411: nothing received before the handshake may be used after
  // it; that includes bytes that arrived in the same segment as the STARTTLS command.
  in_.clear();
  tls_ = std::make_unique<TlsSession>(ctx, server_name);
  // The plaintext still queued (the "220 Ready to start TLS" reply) precedes the handshake
  // on the wire: it goes first into the raw outgoing byte stream.
  if (!out_.empty()) {
    tls_->ciphertext_out().append(out_.view());
    out_.clear();
  }
  if (tls_->state() == TlsSession::State::Failed) {
    begin_close(errc(std::errc::protocol_error));
    return;
  }
  if (ctx.role() == TlsRole::Client) {
    drive_tls();  // writes the ClientHello
  } else {
    pump_output();
  }
}

// ---- timers ---------------------------------------------------------------------------

TimePoint KernelConnection::deadline() const noexcept {
  TimePoint d = TimePoint::max();
  if (idle_ > Duration::zero() && phase_ == Phase::Open) d = last_rx_ + idle_;
  if (phase_ == Phase::Open) d = std::min(d, fixed_deadline_);
  // A send in flight is a write the socket has not taken yet.
  if (write_stall_ > Duration::zero() && phase_ == Phase::Open && send_armed_) {
    d = std::min(d, last_tx_ + write_stall_);
  }
  if (phase_ == Phase::Draining || phase_ == Phase::ShuttingDown) d = std::min(d, close_deadline_);
  return d;
}

void KernelConnection::arm_timer() noexcept {
  TimePoint d = deadline();
  if (d == TimePoint::max() || timer_armed_) return;
  Duration left = std::max(Duration::zero(), d - stack_.now());
  stack_.engine().timeout(left, &timer_op_);
  timer_armed_ = true;
  armed_for_ = d;
  ++ops_;
  stack_.op_started();
}

void KernelConnection::set_idle_timeout(Duration idle) noexcept {
  if (phase_ != Phase::Open) return;
  idle_ = idle;
  last_rx_ = stack_.now();
  // Like any deadline: an armed timer waiting for something later is cancelled; one due
  // earlier finds the new deadline when it fires. Sessions set this at every command, and
  // each cancel makes the kernel walk the ring's list of timeouts (4% of salvod's CPU).
  const TimePoint d = deadline();
  if (d != TimePoint::max()) wake_by(d);
}

void KernelConnection::set_deadline(TimePoint when) noexcept {
  if (phase_ != Phase::Open) return;
  fixed_deadline_ = when;
  wake_by(when);
}

void KernelConnection::set_write_timeout(Duration stalled) noexcept {
  if (phase_ != Phase::Open) return;
  write_stall_ = stalled;
  last_tx_ = stack_.now();
  if (stalled > Duration::zero() && send_armed_) wake_by(last_tx_ + stalled);
}

// The timer must fire by `when`: armed now if it is not, or cancelled when it waits for
// something later (re-armed from its completion, earlier). A later `when` costs nothing:
// the timer's completion finds the new deadline() and re-arms.
void KernelConnection::wake_by(TimePoint when) noexcept {
  if (!timer_armed_) {
    arm_timer();
  } else if (when < armed_for_) {
    stack_.engine().cancel(&timer_op_);
    armed_for_ = TimePoint::min();  // one cancel is enough
  }
}

void KernelConnection::on_timer(std::int32_t, std::uint32_t) noexcept {
  op_done(timer_armed_);
  if (phase_ == Phase::Closing || phase_ == Phase::Done) {
    maybe_finish();
    return;
  }
  TimePoint d = deadline();
  if (d == TimePoint::max()) return;
  if (stack_.now() >= d) {
    if (phase_ == Phase::Open) {
      ++stack_.counters().idle_timeouts;
      if (handler_ != nullptr && handler_->on_idle_timeout(*this)) {
        begin_close(errc(std::errc::timed_out));  // flush the last words, then close
        return;
      }
      // The handler gave itself more time (moved both timers): stay open.
      if (phase_ == Phase::Open && deadline() > stack_.now()) {
        arm_timer();
        return;
      }
    }
    teardown(errc(std::errc::timed_out));
    return;
  }
  arm_timer();
}

// ---- closing --------------------------------------------------------------------------

void KernelConnection::begin_close(std::error_code why) noexcept {
  if (phase_ != Phase::Open) return;
  why_ = why;
  phase_ = Phase::Draining;
  close_deadline_ = stack_.now() + stack_.options().close_linger;
  if (tls_) {
    if (tls_->state() == TlsSession::State::Handshaking) {
      out_.clear();  // cannot be encrypted any more
    } else if (tls_->state() != TlsSession::State::Failed) {
      // Encrypt what the handler queued, then close_notify (RFC 8446 §6.1).
      if (tls_->state() == TlsSession::State::Established && !out_.empty()) {
        (void)tls_->write(out_.view());
        out_.clear();
      }
      tls_->shutdown();
    }
  }
  if (timer_armed_) {
    stack_.engine().cancel(&timer_op_);  // re-armed with the linger deadline
  } else {
    arm_timer();
  }
  pump_output();
}

void KernelConnection::begin_shutdown() noexcept {
  phase_ = Phase::ShuttingDown;
  stack_.engine().shutdown(fd_, SHUT_WR, &shutdown_op_);
  shutdown_armed_ = true;
  ++ops_;
  stack_.op_started();
}

void KernelConnection::on_shutdown(std::int32_t, std::uint32_t) noexcept {
  op_done(shutdown_armed_);
  teardown(why_);
  maybe_finish();
}

void KernelConnection::abort() noexcept { teardown(errc(std::errc::connection_aborted)); }

void KernelConnection::teardown(std::error_code why) noexcept {
  if (phase_ == Phase::Closing || phase_ == Phase::Done) return;
  phase_ = Phase::Closing;
  if (!why_) why_ = why;
  io::Engine& e = stack_.engine();
  if (recv_armed_) e.cancel(&recv_op_);
  if (send_armed_) {
    if (send_is_zc_) {
      e.cancel(zc_active_);
    } else {
      e.cancel(&send_op_);
    }
  }
  if (timer_armed_) e.cancel(&timer_op_);
  maybe_finish();
}

void KernelConnection::teardown_silently() noexcept {
  handler_ = nullptr;
  teardown(errc(std::errc::operation_canceled));
}

}  // namespace salvo::net
