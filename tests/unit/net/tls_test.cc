// SPDX-License-Identifier: Apache-2.0
// TlsSession: a client and a server wired together through memory (no sockets): handshake,
// data both ways, STARTTLS mid-stream, verification, garbage input, close_notify.
#include <salvo/net/tls.h>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "support/cert_factory.h"
#include "tls_pipe.h"

namespace salvo::net {
namespace {

using test::CertFactory;

const CertFactory& certs() { return CertFactory::shared(); }

TlsContextOptions server_options() {
  TlsContextOptions o;
  o.role = TlsRole::Server;
  o.certificate_file = certs().server_cert();
  o.key_file = certs().server_key();
  return o;
}

TlsContextOptions client_options(TlsVerify verify, const std::string& ca) {
  TlsContextOptions o;
  o.role = TlsRole::Client;
  o.verify = verify;
  o.ca_file = ca;
  return o;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!certs().ok()) GTEST_SKIP() << "cannot make test certificates: " << certs().error();
  }
};

TEST_F(TlsTest, HandshakeAndDataBothWays) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "localhost");
  EXPECT_EQ(client.state(), TlsSession::State::Handshaking);
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(client.state(), TlsSession::State::Established) << client.error();
  ASSERT_EQ(server.state(), TlsSession::State::Established) << server.error();
  EXPECT_EQ(client.version(), "TLSv1.3");
  EXPECT_FALSE(client.cipher().empty());
  EXPECT_EQ(client.cipher(), server.cipher());
  EXPECT_NE(client.cipher().find("CHACHA20"), std::string::npos) << client.cipher();

  ASSERT_TRUE(client.write("EHLO client.example\r\n").has_value());
  p.pump();
  EXPECT_EQ(p.b_plain.view(), "EHLO client.example\r\n");
  ASSERT_TRUE(server.write("250 ok\r\n").has_value());
  p.pump();
  EXPECT_EQ(p.a_plain.view(), "250 ok\r\n");
}

TEST_F(TlsTest, OneMegabyteEachWay) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "");
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(server.state(), TlsSession::State::Established) << server.error();

  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 4096);
  ASSERT_TRUE(client.write(big).has_value());
  ASSERT_TRUE(server.write(big).has_value());
  p.pump();
  EXPECT_EQ(p.b_plain.size(), big.size());
  EXPECT_TRUE(p.b_plain.view() == big);
  EXPECT_TRUE(p.a_plain.view() == big);
}

TEST_F(TlsTest, OneAdvanceDecryptsEveryBufferedRecord) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "");
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(server.state(), TlsSession::State::Established);
  std::string big(40000, 'z');
  ASSERT_TRUE(client.write("a").has_value());
  ASSERT_TRUE(client.write("b").has_value());
  ASSERT_TRUE(client.write(big).has_value());
  server.feed_ciphertext(client.ciphertext_out().view());
  client.ciphertext_out().clear();
  ByteBuffer plain;
  EXPECT_EQ(server.advance(plain), TlsSession::State::Established);
  EXPECT_EQ(plain.size(), 2 + big.size());  // no record left behind inside wolfSSL
}

TEST_F(TlsTest, ByteAtATimeHandshake) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::Peer, certs().ca_cert()));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "localhost");
  Pipe p(client, server);
  p.max_chunk = 1;
  p.pump();
  ASSERT_EQ(client.state(), TlsSession::State::Established) << client.error();
  ASSERT_EQ(server.state(), TlsSession::State::Established) << server.error();
  ASSERT_TRUE(server.write("hello").has_value());
  p.pump();
  EXPECT_EQ(p.a_plain.view(), "hello");
}

// STARTTLS (RFC 3207): plaintext first, then both sides start TLS on the same stream.
TEST_F(TlsTest, StartsMidStream) {
  std::string wire = "EHLO x\r\n250-STARTTLS\r\nSTARTTLS\r\n220 go ahead\r\n";
  ASSERT_FALSE(wire.empty());  // the plaintext phase is the driver's business
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::Peer, certs().ca_cert()));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "localhost");
  ByteBuffer plain;
  EXPECT_EQ(client.advance(plain), TlsSession::State::Handshaking);
  ASSERT_FALSE(client.ciphertext_out().empty());  // ClientHello
  EXPECT_EQ(client.ciphertext_out().view()[0], '\x16');  // handshake record
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(client.state(), TlsSession::State::Established) << client.error();
  ASSERT_TRUE(client.write("EHLO x\r\n").has_value());
  p.pump();
  EXPECT_EQ(p.b_plain.view(), "EHLO x\r\n");
}

TEST_F(TlsTest, VerifiesTheRightCaAndName) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::Peer, certs().ca_cert()));
  for (const char* name : {"localhost", "127.0.0.1"}) {
    TlsSession server(sctx, "");
    TlsSession client(cctx, name);
    Pipe p(client, server);
    p.pump();
    EXPECT_EQ(client.state(), TlsSession::State::Established) << name << ": " << client.error();
    EXPECT_EQ(server.state(), TlsSession::State::Established) << name << ": " << server.error();
  }
}

TEST_F(TlsTest, RejectsAnUnknownCa) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::Peer, certs().other_ca_cert()));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "localhost");
  Pipe p(client, server);
  p.pump();
  EXPECT_EQ(client.state(), TlsSession::State::Failed);
  EXPECT_FALSE(client.error().empty());
  EXPECT_NE(server.state(), TlsSession::State::Established);
  EXPECT_TRUE(client.write("x").error() == std::errc::broken_pipe);
}

TEST_F(TlsTest, RejectsTheWrongName) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::Peer, certs().ca_cert()));
  for (const char* name : {"mx.example.com", "127.0.0.2"}) {
    TlsSession server(sctx, "");
    TlsSession client(cctx, name);
    Pipe p(client, server);
    p.pump();
    EXPECT_EQ(client.state(), TlsSession::State::Failed) << name;
    EXPECT_FALSE(client.error().empty()) << name;
  }
}

TEST_F(TlsTest, ReportModeCompletesAndSaysWhatFailed) {
  TlsContext sctx(server_options());
  // The right CA and name: nothing to report.
  TlsContext good(client_options(TlsVerify::Report, certs().ca_cert()));
  {
    TlsSession server(sctx, "");
    TlsSession client(good, "localhost");
    Pipe p(client, server);
    p.pump();
    EXPECT_EQ(client.state(), TlsSession::State::Established) << client.error();
    EXPECT_EQ(client.verify_error(), "");
  }
  // A wrong name, and an unknown CA: established all the same, the failure reported.
  TlsContext other(client_options(TlsVerify::Report, certs().other_ca_cert()));
  for (TlsContext* ctx : {&good, &other}) {
    TlsSession server(sctx, "");
    TlsSession client(*ctx, ctx == &good ? "mx.example.com" : "localhost");
    Pipe p(client, server);
    p.pump();
    EXPECT_EQ(client.state(), TlsSession::State::Established) << client.error();
    EXPECT_NE(client.verify_error(), "");
  }
}

TEST_F(TlsTest, NoVerificationAcceptsAnyCertificate) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "mx.example.com");  // wrong name, unknown CA: opportunistic
  Pipe p(client, server);
  p.pump();
  EXPECT_EQ(client.state(), TlsSession::State::Established) << client.error();
}

TEST_F(TlsTest, GarbageInsteadOfClientHelloFailsCleanly) {
  TlsContext sctx(server_options());
  for (std::string garbage : {std::string("RSET\r\nQUIT\r\n"), std::string(5000, '\x16'),
                              std::string("\x16\x03\x01\xff\xff", 5) + std::string(100, 'A'),
                              std::string("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9)}) {
    TlsSession server(sctx, "");
    server.feed_ciphertext(garbage);
    ByteBuffer plain;
    TlsSession::State st = TlsSession::State::Handshaking;
    for (int i = 0; i < 3; ++i) st = server.advance(plain);
    EXPECT_TRUE(st == TlsSession::State::Failed || st == TlsSession::State::Handshaking);
    if (garbage.starts_with("RSET")) {
      EXPECT_EQ(st, TlsSession::State::Failed);
      EXPECT_FALSE(server.error().empty());
    }
    EXPECT_TRUE(plain.empty());
  }
}

TEST_F(TlsTest, CorruptRecordAfterHandshakeFails) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "");
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(server.state(), TlsSession::State::Established);
  ASSERT_TRUE(client.write("secret").has_value());
  std::string rec(client.ciphertext_out().view());
  client.ciphertext_out().clear();
  rec[rec.size() - 3] ^= 0x55;  // break the AEAD tag
  server.feed_ciphertext(rec);
  ByteBuffer plain;
  EXPECT_EQ(server.advance(plain), TlsSession::State::Failed);
  EXPECT_TRUE(plain.empty());
  EXPECT_FALSE(server.error().empty());
}

TEST_F(TlsTest, CloseNotify) {
  TlsContext sctx(server_options());
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "");
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(server.state(), TlsSession::State::Established);
  ASSERT_TRUE(client.write("last words").has_value());
  client.shutdown();
  EXPECT_EQ(client.state(), TlsSession::State::Closed);
  p.pump();
  EXPECT_EQ(p.b_plain.view(), "last words");
  EXPECT_EQ(server.state(), TlsSession::State::Closed);
  EXPECT_TRUE(client.write("more").error() == std::errc::broken_pipe);
}

TEST_F(TlsTest, TlsOneThreeMinimum) {
  auto so = server_options();
  so.min_version = "1.3";
  TlsContext sctx(so);
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "");
  Pipe p(client, server);
  p.pump();
  EXPECT_EQ(server.version(), "TLSv1.3");
}

TEST_F(TlsTest, ExplicitCipherListAndTls12) {
  auto so = server_options();
  so.cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256";  // TLS 1.2 only: forces 1.2
  TlsContext sctx(so);
  TlsContext cctx(client_options(TlsVerify::Peer, certs().ca_cert()));
  TlsSession server(sctx, "");
  TlsSession client(cctx, "localhost");
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(client.state(), TlsSession::State::Established)
      << client.error() << " / " << server.error();
  EXPECT_EQ(client.version(), "TLSv1.2");
  EXPECT_NE(client.cipher().find("AES128-GCM"), std::string::npos) << client.cipher();
  ASSERT_TRUE(client.write("over 1.2").has_value());
  p.pump();
  EXPECT_EQ(p.b_plain.view(), "over 1.2");

  auto bad = server_options();
  bad.cipher_list = "NO-SUCH-CIPHER";
  EXPECT_THROW(TlsContext{bad}, std::runtime_error);
}

TEST_F(TlsTest, WriteBeforeHandshakeIsRefused) {
  TlsContext cctx(client_options(TlsVerify::None, ""));
  TlsSession client(cctx, "");
  EXPECT_TRUE(client.write("early").error() == std::errc::not_connected);
}

TEST_F(TlsTest, ContextErrorsAreOneLine) {
  auto o = server_options();
  o.certificate_file = certs().dir() + "/missing.pem";
  try {
    TlsContext bad(o);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("missing.pem"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos);
  }
  TlsContextOptions no_cert;
  no_cert.role = TlsRole::Server;
  EXPECT_THROW(TlsContext{no_cert}, std::runtime_error);
  auto badver = client_options(TlsVerify::None, "");
  badver.min_version = "1.1";
  EXPECT_THROW(TlsContext{badver}, std::runtime_error);
}

}  // namespace
}  // namespace salvo::net
