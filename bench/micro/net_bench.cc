// SPDX-License-Identifier: Apache-2.0
// net micro-benchmarks: SocketAddress parsing, and TlsSession handshake and bulk transfer
// through memory (the cost TLS adds per byte, with no socket in the way).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <salvo/net/socket_address.h>
#include <salvo/net/tls.h>

// wolfSSL's test certificates (ECC P-256 server certificate and key), DER in a header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wunused-variable"
#define USE_CERT_BUFFERS_256
#include <wolfssl/options.h>
#include <wolfssl/certs_test.h>
#pragma GCC diagnostic pop

namespace salvo::net {
namespace {

std::string pem(const unsigned char* der, std::size_t len, const char* label) {
  static constexpr char kB64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (std::size_t i = 0; i < len; i += 3) {
    unsigned v = static_cast<unsigned>(der[i]) << 16;
    if (i + 1 < len) v |= static_cast<unsigned>(der[i + 1]) << 8;
    if (i + 2 < len) v |= der[i + 2];
    b64 += kB64[(v >> 18) & 63];
    b64 += kB64[(v >> 12) & 63];
    b64 += i + 1 < len ? kB64[(v >> 6) & 63] : '=';
    b64 += i + 2 < len ? kB64[v & 63] : '=';
  }
  std::string out = std::string("-----BEGIN ") + label + "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

// Server certificate and key written once to temp files (TlsContext takes paths).
struct Files {
  std::string cert, key;
  Files() {
    char dir[] = "/tmp/salvo-net-bench-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    cert = std::string(dir) + "/server.pem";
    key = std::string(dir) + "/server.key";
    write(cert, pem(serv_ecc_der_256, sizeof serv_ecc_der_256, "CERTIFICATE"));
    write(key, pem(ecc_key_der_256, sizeof ecc_key_der_256, "EC PRIVATE KEY"));
  }
  ~Files() {
    std::remove(cert.c_str());
    std::remove(key.c_str());
    ::rmdir(cert.substr(0, cert.rfind('/')).c_str());
  }
  static void write(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) std::abort();
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
};

struct Contexts {
  Files files;
  std::unique_ptr<TlsContext> server, client;
  Contexts() {
    TlsContextOptions so;
    so.role = TlsRole::Server;
    so.certificate_file = files.cert;
    so.key_file = files.key;
    server = std::make_unique<TlsContext>(so);
    client = std::make_unique<TlsContext>(TlsContextOptions{});
  }
  static Contexts& get() {
    static Contexts c;
    return c;
  }
};

void pump(TlsSession& a, TlsSession& b, ByteBuffer& a_plain, ByteBuffer& b_plain) {
  for (int i = 0; i < 64; ++i) {
    bool moved = false;
    if (!a.ciphertext_out().empty()) {
      b.feed_ciphertext(a.ciphertext_out().view());
      a.ciphertext_out().clear();
      moved = true;
    }
    b.advance(b_plain);
    if (!b.ciphertext_out().empty()) {
      a.feed_ciphertext(b.ciphertext_out().view());
      b.ciphertext_out().clear();
      moved = true;
    }
    a.advance(a_plain);
    if (!moved && a.ciphertext_out().empty()) return;
  }
}

void BM_SocketAddressParse(benchmark::State& state) {
  for (auto _ : state) {
    auto v4 = SocketAddress::parse("192.168.100.200:2525");
    auto v6 = SocketAddress::parse("[2001:db8::1234:5678]:25");
    benchmark::DoNotOptimize(v4);
    benchmark::DoNotOptimize(v6);
  }
}
BENCHMARK(BM_SocketAddressParse);

void BM_TlsHandshake(benchmark::State& state) {
  auto& ctx = Contexts::get();
  ByteBuffer a_plain, b_plain;
  for (auto _ : state) {
    TlsSession client(*ctx.client, "localhost");
    TlsSession server(*ctx.server, "");
    client.advance(a_plain);
    pump(client, server, a_plain, b_plain);
    if (server.state() != TlsSession::State::Established) state.SkipWithError("handshake");
  }
}
BENCHMARK(BM_TlsHandshake)->Unit(benchmark::kMicrosecond);

// Encrypt on one side, decrypt on the other: `range(0)` bytes per write.
void BM_TlsTransfer(benchmark::State& state) {
  auto& ctx = Contexts::get();
  TlsSession client(*ctx.client, "");
  TlsSession server(*ctx.server, "");
  ByteBuffer a_plain, b_plain;
  client.advance(a_plain);
  pump(client, server, a_plain, b_plain);
  const std::string chunk(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    if (!client.write(chunk)) state.SkipWithError("write");
    server.feed_ciphertext(client.ciphertext_out().view());
    client.ciphertext_out().clear();
    server.advance(b_plain);
    b_plain.clear();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_TlsTransfer)->Arg(512)->Arg(16 << 10)->Arg(256 << 10);

}  // namespace
}  // namespace salvo::net
