// SPDX-License-Identifier: Apache-2.0
// TlsContext / TlsSession over wolfSSL with buffer IO callbacks: wolfSSL
// never touches a socket; it reads ciphertext from TlsSession::in_ and appends to out_.
#include <salvo/net/tls.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "net/wolf.h"

namespace salvo::net {
namespace {

// Largest TLS record plaintext (RFC 8446 §5.1); wolfSSL_read returns at most one record.
constexpr std::size_t kReadChunk = 16 * 1024 + 256;

void init_library() {
  // Function-local static: thread-safe, once per process. Never cleaned up (sessions may
  // live on shard threads until exit).
  static const int ok = wolfSSL_Init();
  if (ok != WOLFSSL_SUCCESS) throw std::runtime_error("tls: wolfSSL_Init failed");
}

// wolfSSL's ECC fixed-point cache (FP_ECC, on in Debian's build) is per thread and only
// the thread that filled it can free it: each thread that makes sessions frees its cache
// when it exits (shard threads end before the process does).
struct ThreadCacheCleanup {
  ~ThreadCacheCleanup() {
#if defined(FP_ECC) && defined(HAVE_ECC)
    wc_ecc_fp_free();
#endif
  }
};

void register_thread_cleanup() {
  thread_local ThreadCacheCleanup cleanup;
  (void)cleanup;
}

std::string error_string(int err) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), buf, sizeof buf);
  std::string out = buf[0] ? buf : "unknown error";
  out += " (";
  out += std::to_string(err);
  out += ')';
  return out;
}

bool is_ip_literal(const std::string& name) {
  unsigned char tmp[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), tmp) == 1 || inet_pton(AF_INET6, name.c_str(), tmp) == 1;
}

WOLFSSL* as_ssl(void* p) noexcept { return static_cast<WOLFSSL*>(p); }

// Default suites: AEAD with forward secrecy first, ChaCha20-Poly1305 ahead of AES-GCM
// (no AES-NI in Debian's wolfSSL: 456 vs 189 MB/s measured), then ECDHE/DHE CBC suites
// for old MX servers. wolfSSL's full compiled-in list also holds RC4, 3DES, NULL and
// anonymous suites, so it is not used as the base.
constexpr const char* kDefaultCiphers =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "DHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:"
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA";

}  // namespace

// The wolfSSL IO callbacks; a friend of TlsSession so they can reach in_ and out_.
struct TlsIo {
  static int recv(WOLFSSL*, char* buf, int sz, void* ctx) noexcept {
    auto* s = static_cast<TlsSession*>(ctx);
    if (s->in_.empty()) return WOLFSSL_CBIO_ERR_WANT_READ;
    std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(sz), s->in_.size());
    std::memcpy(buf, s->in_.view().data(), n);
    s->in_.consume(n);
    return static_cast<int>(n);
  }

  // TlsVerify::Report: note the first failed check and let the handshake go on.
  static int report(int ok, WOLFSSL_X509_STORE_CTX* store) noexcept {
    if (ok == 0 && store != nullptr) {
      auto* s = static_cast<TlsSession*>(store->userCtx);
      if (s != nullptr && s->verify_error_.empty()) s->verify_error_ = error_string(store->error);
    }
    return 1;
  }

  static int send(WOLFSSL*, char* buf, int sz, void* ctx) noexcept {
    auto* s = static_cast<TlsSession*>(ctx);
    // ByteBuffer growth may throw bad_alloc; running out of memory is fatal.
    s->out_.append(std::string_view(buf, static_cast<std::size_t>(sz)));
    return sz;
  }
};

TlsContext::TlsContext(const TlsContextOptions& options)
    : role_(options.role), verify_(options.verify) {
  init_library();
  WOLFSSL_METHOD* method = options.role == TlsRole::Server ? wolfSSLv23_server_method()
                                                            : wolfSSLv23_client_method();
  WOLFSSL_CTX* ctx = method ? wolfSSL_CTX_new(method) : nullptr;
  if (ctx == nullptr) throw std::runtime_error("tls: wolfSSL_CTX_new failed");
  ctx_ = ctx;
  auto fail = [&](const std::string& what) {
    wolfSSL_CTX_free(ctx);
    ctx_ = nullptr;
    throw std::runtime_error("tls: " + what);
  };

  int min = 0;
  if (options.min_version == "1.2") {
    min = WOLFSSL_TLSV1_2;
  } else if (options.min_version == "1.3") {
    min = WOLFSSL_TLSV1_3;
  } else {
    fail("min_version must be \"1.2\" or \"1.3\", got \"" + options.min_version + "\"");
  }
  if (int rc = wolfSSL_CTX_SetMinVersion(ctx, min); rc != WOLFSSL_SUCCESS) {
    fail("cannot set min_version " + options.min_version + ": " + error_string(rc));
  }

  if (!options.certificate_file.empty()) {
    int rc = wolfSSL_CTX_use_certificate_chain_file(ctx, options.certificate_file.c_str());
    if (rc != WOLFSSL_SUCCESS) {
      fail("cannot load certificate " + options.certificate_file + ": " + error_string(rc));
    }
  }
  if (!options.key_file.empty()) {
    int rc = wolfSSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), WOLFSSL_FILETYPE_PEM);
    if (rc != WOLFSSL_SUCCESS) {
      fail("cannot load key " + options.key_file + ": " + error_string(rc));
    }
  }
  const std::string ciphers = options.cipher_list.empty() ? kDefaultCiphers : options.cipher_list;
  if (wolfSSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != WOLFSSL_SUCCESS) {
    fail("no usable cipher in \"" + ciphers + "\"");
  }
  // A list without TLS 1.3 suites means TLS 1.2: say so, or a wolfSSL server still picks
  // 1.3 from the client's supported_versions and fails the handshake.
  if (ciphers.find("TLS13-") == std::string::npos) {
    if (min == WOLFSSL_TLSV1_3) fail("min_version 1.3 with a cipher_list of TLS 1.2 suites");
    wolfSSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  }
  if (options.role == TlsRole::Server) {
    wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
    if (options.certificate_file.empty() || options.key_file.empty()) {
      fail("a server context needs certificate_file and key_file");
    }
    if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
      fail("key " + options.key_file + " does not match certificate " +
           options.certificate_file);
    }
  }

  if (options.verify != TlsVerify::None) {
    int rc = options.ca_file.empty()
                 ? wolfSSL_CTX_load_system_CA_certs(ctx)
                 : wolfSSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr);
    if (rc != WOLFSSL_SUCCESS) {
      fail("cannot load CA " + (options.ca_file.empty() ? "(system store)" : options.ca_file) +
           ": " + error_string(rc));
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER,
                           options.verify == TlsVerify::Report ? &TlsIo::report : nullptr);
  } else {
    // Opportunistic TLS (RFC 7435): encrypt, do not authenticate.
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, nullptr);
  }
  wolfSSL_CTX_SetIORecv(ctx, &TlsIo::recv);
  wolfSSL_CTX_SetIOSend(ctx, &TlsIo::send);
}

TlsContext::~TlsContext() {
  if (ctx_) wolfSSL_CTX_free(static_cast<WOLFSSL_CTX*>(ctx_));
}

TlsSession::TlsSession(const TlsContext& ctx, std::string_view server_name)
    : in_(16 * 1024), out_(16 * 1024) {
  register_thread_cleanup();
  WOLFSSL* ssl = ctx.native() ? wolfSSL_new(static_cast<WOLFSSL_CTX*>(ctx.native())) : nullptr;
  if (ssl == nullptr) {
    state_ = State::Failed;
    error_ = "tls: cannot create session (out of memory?)";
    return;
  }
  ssl_ = ssl;
  wolfSSL_SSLSetIORecv(ssl, &TlsIo::recv);
  wolfSSL_SSLSetIOSend(ssl, &TlsIo::send);
  wolfSSL_SetIOReadCtx(ssl, this);
  wolfSSL_SetIOWriteCtx(ssl, this);
  if (ctx.role() == TlsRole::Client && !server_name.empty()) {
    std::string name(server_name);
    bool ip = is_ip_literal(name);
    // RFC 6066 §3: literal IP addresses are not sent as SNI.
    if (!ip && wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name.data(),
                              static_cast<unsigned short>(name.size())) != WOLFSSL_SUCCESS) {
      state_ = State::Failed;
      error_ = "tls: cannot set SNI";
      return;
    }
    if (ctx.verify() == TlsVerify::Report) wolfSSL_SetCertCbCtx(ssl, this);
    if (ctx.verify() != TlsVerify::None) {
      int rc = WOLFSSL_SUCCESS;
      if (ip) {
        WOLFSSL_X509_VERIFY_PARAM* param = wolfSSL_get0_param(ssl);
        rc = param ? wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) : WOLFSSL_FAILURE;
      } else {
        rc = wolfSSL_check_domain_name(ssl, name.c_str());
      }
      if (rc != WOLFSSL_SUCCESS) {
        state_ = State::Failed;
        error_ = "tls: cannot set the name to verify";
      }
    }
  }
}

TlsSession::~TlsSession() {
  if (ssl_) wolfSSL_free(as_ssl(ssl_));
}

void TlsSession::feed_ciphertext(std::string_view bytes) {
  if (state_ == State::Failed) return;
  in_.append(bytes);
}

TlsSession::State TlsSession::advance(ByteBuffer& plaintext) {
  WOLFSSL* ssl = as_ssl(ssl_);
  if (state_ == State::Handshaking) {
    int rc = wolfSSL_negotiate(ssl);
    if (rc != WOLFSSL_SUCCESS) {
      int err = wolfSSL_get_error(ssl, rc);
      if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) return state_;
      state_ = State::Failed;
      error_ = "tls handshake: " + error_string(err);
      if (err == WOLFSSL_ERROR_ZERO_RETURN) error_ = "tls handshake: peer closed";
      return state_;
    }
    state_ = State::Established;
  }
  // Closed still drains records that arrived before the peer's close_notify.
  if (state_ != State::Established && state_ != State::Closed) return state_;
  if (state_ == State::Closed && in_.empty()) return state_;
  // Read until wolfSSL asks for more input: records it already pulled into its own buffer
  // must not wait for the next feed (the peer may be waiting for our answer).
  for (;;) {
    auto w = plaintext.prepare(kReadChunk);
    int n = wolfSSL_read(ssl, w.data(), static_cast<int>(std::min<std::size_t>(w.size(), 1 << 30)));
    if (n > 0) {
      plaintext.commit(static_cast<std::size_t>(n));
      continue;
    }
    int err = wolfSSL_get_error(ssl, n);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) break;
    if (err == WOLFSSL_ERROR_ZERO_RETURN) {  // close_notify received
      state_ = State::Closed;
      in_.clear();
      break;
    }
    state_ = State::Failed;
    error_ = "tls read: " + error_string(err);
    break;
  }
  return state_;
}

Status TlsSession::write(std::string_view plaintext) {
  if (state_ != State::Established) {
    return fail(state_ == State::Handshaking ? std::errc::not_connected : std::errc::broken_pipe);
  }
  WOLFSSL* ssl = as_ssl(ssl_);
  while (!plaintext.empty()) {
    // wolfSSL_write splits into records itself; bound one call to keep int sizes sane.
    int chunk = static_cast<int>(std::min<std::size_t>(plaintext.size(), 1 << 20));
    int n = wolfSSL_write(ssl, plaintext.data(), chunk);
    if (n <= 0) {
      int err = wolfSSL_get_error(ssl, n);
      state_ = State::Failed;
      error_ = "tls write: " + error_string(err);
      return fail(std::errc::protocol_error);
    }
    plaintext.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

void TlsSession::shutdown() {
  if (ssl_ == nullptr || state_ == State::Failed) return;
  if (state_ == State::Established || state_ == State::Closed) {
    wolfSSL_shutdown(as_ssl(ssl_));  // queues close_notify into out_; no reply awaited
  }
  state_ = State::Closed;
}

std::string TlsSession::version() const {
  if (ssl_ == nullptr) return {};
  const char* v = wolfSSL_get_version(as_ssl(ssl_));
  return v ? v : "";
}

std::string TlsSession::cipher() const {
  if (ssl_ == nullptr || state_ == State::Handshaking) return {};
  const char* c = wolfSSL_get_cipher_name(as_ssl(ssl_));
  return c ? c : "";
}

std::vector<std::string> TlsSession::peer_chain() const {
  std::vector<std::string> out;
  if (ssl_ == nullptr || state_ == State::Handshaking || state_ == State::Failed) return out;
  WOLFSSL_X509_CHAIN* chain = wolfSSL_get_peer_chain(as_ssl(ssl_));
  const int count = chain != nullptr ? wolfSSL_get_chain_count(chain) : 0;
  for (int i = 0; i < count; ++i) {
    const unsigned char* der = wolfSSL_get_chain_cert(chain, i);
    const int len = wolfSSL_get_chain_length(chain, i);
    if (der == nullptr || len <= 0) break;
    out.emplace_back(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  }
  return out;
}

}  // namespace salvo::net
