// SPDX-License-Identifier: Apache-2.0
// net::Stack: listen, connect and Connection byte streams, the seam where
// a kernel-bypass stack would plug in. KernelStack (src/net/) runs over io::Engine.
// One Stack per shard; every object here is owned by that shard and used on its thread.
//
// Connection lifecycle: created by accept or connect, owned by the Stack; the handler gets
// on_data as bytes arrive, and exactly one on_close, after which the Connection is freed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

#include <salvo/base/byte_buffer.h>
#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/net/socket_address.h>
#include <salvo/net/stats.h>
#include <salvo/net/tls.h>

namespace salvo::io {
class Engine;
}

namespace salvo::net {

class Connection;

class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // New plaintext bytes are in `in` (after TLS, if active). Consume what you can; what
  // you leave stays for the next call. Not called while reading is paused.
  virtual void on_data(Connection& c, ByteBuffer& in) noexcept = 0;
  // Outgoing data fully written to the socket (for flow control); optional.
  virtual void on_drained(Connection&) noexcept {}
  // The TLS handshake started by start_tls() finished; optional.
  virtual void on_tls_ready(Connection&) noexcept {}
  // Last call. why: {} for an orderly close (close(), or the peer's FIN once its input was
  // delivered), otherwise the cause (ECONNRESET, ETIMEDOUT for the idle timer or a close()
  // that could not drain, EPROTO for a TLS failure, ECONNABORTED after abort(), ...).
  // Never called from inside the handler's own call into the Connection. The Connection is
  // freed after it returns.
  virtual void on_close(Connection& c, std::error_code why) noexcept = 0;
  // The idle timer, the deadline (set_deadline) or the write timeout expired. Return true
  // after queueing last words (e.g. SMTP's "421 4.4.2 timeout"): the connection then
  // closes gracefully (output flushed, bounded by the close linger) and on_close reports
  // ETIMEDOUT. false (default): it closes at once, unless the handler moved every timer
  // into the future meanwhile (set_idle_timeout restarts the idle timer; set_deadline):
  // then it stays open.
  virtual bool on_idle_timeout(Connection&) noexcept { return false; }
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual void set_handler(ConnectionHandler* h) noexcept = 0;

  // Output: write into output() and call flush(), or send() which copies.
  virtual ByteBuffer& output() noexcept = 0;
  virtual void flush() noexcept = 0;
  void send(std::string_view bytes) {
    output().append(bytes);
    flush();
  }
  // Bytes queued and not yet written to the socket (back-pressure).
  virtual std::size_t pending_output() const noexcept = 0;

  // Stop / restart delivering on_data (e.g. while waiting for a spool fsync); resume
  // calls on_data again at once when unconsumed input is buffered.
  virtual void pause_reading() noexcept = 0;
  virtual void resume_reading() noexcept = 0;

  // Starts TLS on this stream (STARTTLS). All buffered plaintext input is discarded
  // first (RFC 3207 §4.2; CVE-2011-0411): called from on_data, `in` is empty afterwards,
  // so stop parsing. Plaintext already in output() (the 220 reply) is sent before the
  // handshake. Works for either role (ctx.role()). on_tls_ready or on_close follows.
  virtual void start_tls(const TlsContext& ctx, std::string_view server_name) noexcept = 0;
  virtual const TlsSession* tls() const noexcept = 0;

  // Closes after pending output is written (graceful; bounded by close_linger) / at once.
  // Both are idempotent; on_close follows later, never from inside the call.
  virtual void close() noexcept = 0;
  virtual void abort() noexcept = 0;

  // No bytes received for `idle`: on_close(ETIMEDOUT). Zero disables.
  virtual void set_idle_timeout(Duration idle) noexcept = 0;
  // A point in time that received bytes do not move (a whole-session or whole-command
  // limit a trickling peer cannot stretch); expiry is handled as the idle timer's.
  // TimePoint::max() clears it. Cheap to call often: only an earlier deadline than the
  // armed timer's costs a timer cancel.
  virtual void set_deadline(TimePoint when) noexcept = 0;
  // Output waiting for the socket and none of it taken for `stalled` (a peer that stopped
  // reading: its TCP window stays shut); each write the socket takes, in part or whole,
  // starts the time again. Expiry is handled as the idle timer's. Zero disables.
  virtual void set_write_timeout(Duration stalled) noexcept = 0;

  virtual const SocketAddress& peer() const noexcept = 0;
  virtual const SocketAddress& local() const noexcept = 0;
  virtual std::uint64_t id() const noexcept = 0;
};

class Listener {
 public:
  virtual ~Listener() = default;
  // The bound address (port filled in when 0 was asked for).
  virtual const SocketAddress& address() const noexcept = 0;
  virtual void close() noexcept = 0;
};

class AcceptHandler {
 public:
  virtual ~AcceptHandler() = default;
  // A new connection; call c.set_handler() before returning.
  virtual void on_accept(Listener& l, Connection& c) noexcept = 0;
};

class ConnectHandler {
 public:
  virtual ~ConnectHandler() = default;
  // Success: call c.set_handler() before returning. Failure: c is null and why says why.
  virtual void on_connect(Connection* c, std::error_code why) noexcept = 0;
};

enum class ReusePort { No, Yes };

class Stack {
 public:
  virtual ~Stack() = default;
  // Binds and listens; with ReusePort::Yes every shard can bind the same address and the
  // kernel spreads connections (SO_REUSEPORT). Start-up errors: EADDRINUSE, EACCES...
  [[nodiscard]] virtual Result<Listener*> listen(const SocketAddress& addr, ReusePort reuse,
                                                 AcceptHandler& handler) = 0;
  // Connects (optionally from a bound source address); on_connect follows. Connections
  // that take longer than `timeout` fail with ETIMEDOUT.
  virtual void connect(const SocketAddress& to, const SocketAddress* from, Duration timeout,
                       ConnectHandler& handler) noexcept = 0;
  // Live connections (for stop and stats).
  virtual std::size_t connection_count() const noexcept = 0;
  // Stops listening and closes every connection (graceful stop).
  virtual void close_all() noexcept = 0;
  // Stops listening and aborts every connection, also those still draining their output
  // to a peer that does not read (the end of a stop's grace time).
  virtual void abort_all() noexcept = 0;
  // This stack's counters (read on its shard).
  virtual Stats stats() const noexcept { return {}; }
};

// Tuning of the kernel stack. Defaults suit one shard of salvod; tests shrink them.
struct KernelStackOptions {
  // The provided-buffer ring shared by every connection's multishot receive (count: a
  // power of two; 0 = no ring, single-shot receives into per-connection buffers). Received
  // bytes are copied out and the buffer recycled at once, so the ring only has to cover
  // one batch of completions.
  std::uint16_t recv_buffers = 1024;
  std::uint32_t recv_buffer_size = 16 * 1024;
  // While reading is paused, input keeps accumulating up to about this much; beyond it
  // the stack stops receiving until resume_reading().
  std::size_t paused_input_limit = 1 << 20;
  // close(): how long pending output may take to drain before the socket is dropped
  // (on_close then says ETIMEDOUT).
  Duration close_linger = std::chrono::seconds(30);
  int listen_backlog = 4096;
  // Writes of at least this many bytes (one send's worth of queued output, or TLS records)
  // go out with send_zc when the engine has it; smaller ones, and every write when 0, use
  // plain send. Zero-copy costs a page pin and a second completion: the sender's CPU
  // loses below about 4 KiB and wins from about 16 KiB (bench/micro/io_bench.cc).
  std::size_t zerocopy_threshold = 16 * 1024;
  // Also use send_zc to peers on this host (loopback, or our own address). Off by default:
  // the kernel copies such data again on delivery (msg_zerocopy.rst, "Loopback"); with it
  // on, salvo-blast -> salvo-sink (100 KiB messages, loopback) spent ~11% more CPU per
  // message in the sender and sent 8-16% fewer messages/s.
  bool zerocopy_to_local_peers = false;
  // Time for the idle and linger deadlines; null: the steady clock. Must outlive the stack.
  const Clock* clock = nullptr;
};

// The kernel TCP stack over an io::Engine (io_uring today).
[[nodiscard]] std::unique_ptr<Stack> make_kernel_stack(io::Engine& engine);
[[nodiscard]] std::unique_ptr<Stack> make_kernel_stack(io::Engine& engine,
                                                       const KernelStackOptions& options);

}  // namespace salvo::net
