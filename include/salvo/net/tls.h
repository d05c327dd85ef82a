// SPDX-License-Identifier: Apache-2.0
// TLS over in-memory buffers: wolfSSL reads and writes ciphertext through
// custom IO callbacks on ByteBuffers, so the same TlsSession works over io_uring, a fake
// engine or a user-space stack, and can start mid-stream for STARTTLS (RFC 3207).
// A TlsContext is built at start-up (may throw std::runtime_error with a one-line reason)
// and then only read: sessions of every shard may share it (wolfSSL locks the context's
// reference count; nothing else in it changes after construction).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/byte_buffer.h>
#include <salvo/base/result.h>

namespace salvo::net {

enum class TlsRole { Client, Server };
// Peer: verify the server chain (and name) against ca_file. Report: the same checks, but a
// failure does not stop the handshake; TlsSession::verify_error() says what failed (MTA-STS
// testing mode reports what enforce would have refused).
enum class TlsVerify { None, Peer, Report };

struct TlsContextOptions {
  TlsRole role = TlsRole::Client;
  std::string certificate_file;  // PEM; server side (client certs unused)
  std::string key_file;          // PEM
  std::string ca_file;           // PEM bundle for verifying peers; empty + Peer: system CAs
  TlsVerify verify = TlsVerify::None;
  // Minimum protocol version: "1.2" (default) or "1.3".
  std::string min_version = "1.2";
  // wolfSSL cipher list ("TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256..."). Empty:
  // forward-secret suites only, ChaCha20-Poly1305 first (Debian's wolfSSL has no AES-NI;
  // ChaCha20 runs ~2.4x faster there), CBC last for old servers. Servers use their order.
  std::string cipher_list;
};

class TlsContext {
 public:
  // Throws std::runtime_error naming the file and wolfSSL's reason (start-up only).
  explicit TlsContext(const TlsContextOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  TlsRole role() const noexcept { return role_; }
  TlsVerify verify() const noexcept { return verify_; }
  void* native() const noexcept { return ctx_; }  // WOLFSSL_CTX*

 private:
  void* ctx_ = nullptr;
  TlsRole role_;
  TlsVerify verify_ = TlsVerify::None;
};

// One TLS connection's state. The driver moves ciphertext between the socket and
// feed_ciphertext()/ciphertext_out(); the protocol reads plaintext with read() and writes
// with write(). Single owner; not thread-safe.
class TlsSession {
 public:
  enum class State { Handshaking, Established, Closed, Failed };

  // server_name: SNI and the name verified (client side); may be empty.
  TlsSession(const TlsContext& ctx, std::string_view server_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext that arrived from the peer.
  void feed_ciphertext(std::string_view bytes);
  // Advances the handshake and decrypts what it can into `plaintext`. Returns the state.
  // Failed: error() says why (certificate, protocol, ...); the connection should close.
  State advance(ByteBuffer& plaintext);
  // Encrypts application data; ciphertext lands in ciphertext_out().
  [[nodiscard]] Status write(std::string_view plaintext);
  // Ciphertext to send to the peer (drain it after every advance()/write()).
  ByteBuffer& ciphertext_out() noexcept { return out_; }
  // Sends close_notify into ciphertext_out().
  void shutdown();

  State state() const noexcept { return state_; }
  const std::string& error() const noexcept { return error_; }
  // TlsVerify::Report: the first certificate check that failed ("" when all passed).
  const std::string& verify_error() const noexcept { return verify_error_; }
  std::string version() const;  // "TLSv1.3"
  std::string cipher() const;
  // The certificates the server sent (DER, leaf first), after the handshake; empty before
  // it or when there were none. Kept whether or not the context verifies (DANE checks the
  // chain itself: net/dane.h).
  std::vector<std::string> peer_chain() const;

 private:
  friend struct TlsIo;
  void* ssl_ = nullptr;
  ByteBuffer in_;
  ByteBuffer out_;
  State state_ = State::Handshaking;
  std::string error_;
  std::string verify_error_;
};

}  // namespace salvo::net
