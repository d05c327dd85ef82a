// SPDX-License-Identifier: Apache-2.0
// net::Stack: listen, connect and Connection byte streams (STYLE.md §5.1), the seam where
// a kernel-bypass stack would plug in. KernelStack (src/net/) runs over io::Engine.
// One Stack per shard; every object here is owned by that shard and used on its thread.
//
// Connection lifecycle: created by accept or connect, owned by the Stack; the handler gets
// on_data as bytes arrive, and exactly one on_close, after which the Connection is freed.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

#include <salvo/base/byte_buffer.h>
#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/net/socket_address.h>
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
  // Last call. why: {} for an orderly close, otherwise the cause (ECONNRESET, ETIMEDOUT
  // for the idle timer, EPROTO for a TLS failure, ...). The Connection is freed after.
  virtual void on_close(Connection& c, std::error_code why) noexcept = 0;
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
  // first (RFC 3207 §4.2; CVE-2011-0411). on_tls_ready or on_close follows.
  virtual void start_tls(const TlsContext& ctx, std::string_view server_name) noexcept = 0;
  virtual const TlsSession* tls() const noexcept = 0;

  // Closes after pending output is written (graceful) / at once.
  virtual void close() noexcept = 0;
  virtual void abort() noexcept = 0;

  // No bytes received for `idle`: on_close(ETIMEDOUT). Zero disables.
  virtual void set_idle_timeout(Duration idle) noexcept = 0;

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
};

// The kernel TCP stack over an io::Engine (io_uring today).
[[nodiscard]] std::unique_ptr<Stack> make_kernel_stack(io::Engine& engine);

}  // namespace salvo::net
