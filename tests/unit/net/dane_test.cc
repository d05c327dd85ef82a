// SPDX-License-Identifier: Apache-2.0
// DANE matching (RFC 7672): DANE-EE and DANE-TA over the CertFactory chain, selectors and
// matching types, unusable records, and garbage certificates. The expected association
// data is computed by the openssl CLI, independently of the code under test.
#include <salvo/net/dane.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/net/tls.h>

#include "support/cert_factory.h"
#include "support/signed_zone.h"
#include "tls_pipe.h"

namespace salvo::net {
namespace {

using test::CertFactory;

const CertFactory& certs() { return CertFactory::shared(); }

std::string der_of(const std::string& pem) { return test::openssl_tlsa_data(pem, 0, ""); }

std::string openssl_association(const std::string& pem, int selector, const char* digest) {
  return test::openssl_tlsa_data(pem, selector, digest == nullptr ? "" : digest);
}

class DaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!certs().ok()) GTEST_SKIP() << "cannot make test certificates: " << certs().error();
    leaf_ = der_of(certs().server_cert());
    ca_ = der_of(certs().ca_cert());
    other_ca_ = der_of(certs().other_ca_cert());
    ASSERT_FALSE(leaf_.empty());
    ASSERT_FALSE(ca_.empty());
  }
  std::string leaf_, ca_, other_ca_;
};

TEST_F(DaneTest, AssociationDataAgreesWithOpenssl) {
  const std::string& pem = certs().server_cert();
  EXPECT_EQ(tlsa_association(leaf_, 0, 0), leaf_);
  EXPECT_EQ(tlsa_association(leaf_, 0, 1), openssl_association(pem, 0, "sha256"));
  EXPECT_EQ(tlsa_association(leaf_, 0, 2), openssl_association(pem, 0, "sha512"));
  const std::string spki = openssl_association(pem, 1, nullptr);
  ASSERT_FALSE(spki.empty());
  EXPECT_EQ(tlsa_association(leaf_, 1, 0), spki);
  EXPECT_EQ(tlsa_association(leaf_, 1, 1), openssl_association(pem, 1, "sha256"));
  EXPECT_EQ(tlsa_association(leaf_, 1, 2), openssl_association(pem, 1, "sha512"));
  EXPECT_EQ(tlsa_association(leaf_, 2, 1), "");   // unknown selector
  EXPECT_EQ(tlsa_association(leaf_, 1, 3), "");   // unknown matching type
  EXPECT_EQ(tlsa_association("junk", 0, 1), "");  // not a certificate
}

TEST_F(DaneTest, DaneEeMatchesTheLeafWhateverItsName) {
  const std::string& pem = certs().server_cert();
  const std::vector<std::string> chain = {leaf_};
  for (int selector : {0, 1}) {
    for (const char* digest : {"sha256", "sha512"}) {
      const Tlsa r{3, static_cast<std::uint8_t>(selector),
                   static_cast<std::uint8_t>(digest[3] == '2' ? 1 : 2),
                   openssl_association(pem, selector, digest)};
      auto m = dane_match(std::span(&r, 1), chain, "mx.elsewhere.example");
      EXPECT_TRUE(m.matched) << selector << digest << ": " << m.detail;
      EXPECT_EQ(m.detail, "DANE-EE");
    }
  }
  const Tlsa full{3, 0, 0, leaf_};
  EXPECT_TRUE(dane_match(std::span(&full, 1), chain, "").matched);
}

TEST_F(DaneTest, DaneEeMismatchIsReported) {
  const Tlsa r{3, 1, 1, std::string(32, '\x42')};
  auto m = dane_match(std::span(&r, 1), std::vector<std::string>{leaf_}, "localhost");
  EXPECT_FALSE(m.matched);
  EXPECT_EQ(m.detail, "the certificate does not match a TLSA record");
  // The CA's digest as DANE-EE does not match the leaf either.
  const Tlsa ca{3, 0, 1, tlsa_association(ca_, 0, 1)};
  EXPECT_FALSE(dane_match(std::span(&ca, 1), std::vector<std::string>{leaf_, ca_}, "").matched);
}

TEST_F(DaneTest, DaneTaVerifiesTheChainAndTheName) {
  const std::vector<std::string> chain = {leaf_, ca_};
  for (std::uint8_t selector : {0, 1}) {
    const Tlsa r{2, selector, 1, tlsa_association(ca_, selector, 1)};
    auto m = dane_match(std::span(&r, 1), chain, "localhost");
    EXPECT_TRUE(m.matched) << m.detail;
    EXPECT_EQ(m.detail, "DANE-TA");
    // RFC 7672 §3.2.2: the name is checked with DANE-TA.
    auto wrong = dane_match(std::span(&r, 1), chain, "mx.example");
    EXPECT_FALSE(wrong.matched);
    EXPECT_NE(wrong.detail.find("does not name mx.example"), std::string::npos) << wrong.detail;
  }
}

TEST_F(DaneTest, DaneTaNeedsTheAnchorInTheChainAndAChainThatLeadsToIt) {
  const Tlsa ta{2, 0, 1, tlsa_association(ca_, 0, 1)};
  // The server did not send its anchor.
  EXPECT_FALSE(dane_match(std::span(&ta, 1), std::vector<std::string>{leaf_}, "localhost").matched);
  // An anchor that did not sign the leaf: sent, matched, but the chain does not verify.
  const Tlsa other{2, 0, 1, tlsa_association(other_ca_, 0, 1)};
  auto m = dane_match(std::span(&other, 1), std::vector<std::string>{leaf_, other_ca_},
                      "localhost");
  EXPECT_FALSE(m.matched);
  // The leaf as its own DANE-TA anchor is not accepted.
  const Tlsa self{2, 0, 1, tlsa_association(leaf_, 0, 1)};
  EXPECT_FALSE(
      dane_match(std::span(&self, 1), std::vector<std::string>{leaf_, leaf_}, "localhost")
          .matched);
}

TEST_F(DaneTest, PkixUsagesAndBadFieldsAreUnusable) {
  const std::string sha = tlsa_association(leaf_, 0, 1);
  EXPECT_TRUE(tlsa_usable({3, 0, 1, sha}));
  EXPECT_TRUE(tlsa_usable({2, 1, 0, "x"}));
  EXPECT_FALSE(tlsa_usable({0, 0, 1, sha}));  // PKIX-TA: RFC 7672 §3.1.3
  EXPECT_FALSE(tlsa_usable({1, 0, 1, sha}));  // PKIX-EE
  EXPECT_FALSE(tlsa_usable({4, 0, 1, sha}));
  EXPECT_FALSE(tlsa_usable({3, 2, 1, sha}));
  EXPECT_FALSE(tlsa_usable({3, 0, 3, sha}));
  EXPECT_FALSE(tlsa_usable({3, 0, 1, sha.substr(1)}));  // SHA-256 of 31 octets
  EXPECT_FALSE(tlsa_usable({3, 0, 2, sha}));            // SHA-512 of 32 octets
  EXPECT_FALSE(tlsa_usable({3, 0, 0, ""}));
  // A PKIX-EE record that matches the leaf does not make DANE match.
  const Tlsa pkix{1, 0, 1, sha};
  EXPECT_FALSE(dane_match(std::span(&pkix, 1), std::vector<std::string>{leaf_}, "").matched);
}

TEST_F(DaneTest, GarbageChainsNeverMatchAndNeverCrash) {
  const std::vector<Tlsa> records = {{3, 0, 1, tlsa_association(leaf_, 0, 1)},
                                     {2, 0, 1, tlsa_association(ca_, 0, 1)},
                                     {3, 0, 0, std::string(1, '\0')}};
  EXPECT_FALSE(dane_match(records, {}, "localhost").matched);
  EXPECT_EQ(dane_match(records, {}, "localhost").detail, "the server sent no certificate");
  std::vector<std::vector<std::string>> chains = {
      {""}, {std::string(1, '\0')}, {"garbage"}, {leaf_.substr(0, leaf_.size() / 2)},
      {std::string(5000, '\x30')}, {"garbage", ca_}};
  for (std::size_t cut = 0; cut < leaf_.size(); cut += 7) chains.push_back({leaf_.substr(0, cut)});
  for (const auto& chain : chains) {
    EXPECT_FALSE(dane_match(records, chain, "localhost").matched) << chain[0].size();
  }
  // A good leaf with a damaged anchor: DANE-TA cannot match.
  const Tlsa ta = records[1];
  for (std::size_t cut = 0; cut < ca_.size(); cut += 11) {
    EXPECT_FALSE(dane_match(std::span(&ta, 1), std::vector<std::string>{leaf_, ca_.substr(0, cut)},
                            "localhost")
                     .matched)
        << cut;
  }
}

// The chain a client session keeps is what the server sent, leaf first, with or without
// verification, so DANE can check it after an unverified handshake.
TEST_F(DaneTest, TlsSessionKeepsThePeerChain) {
  TlsContextOptions so;
  so.role = TlsRole::Server;
  so.certificate_file = certs().server_cert();
  so.key_file = certs().server_key();
  TlsContext sctx(so);
  TlsContextOptions co;
  co.role = TlsRole::Client;
  TlsContext cctx(co);
  TlsSession server(sctx, "");
  TlsSession client(cctx, "mx.example");
  EXPECT_TRUE(client.peer_chain().empty());
  Pipe p(client, server);
  p.pump();
  ASSERT_EQ(client.state(), TlsSession::State::Established) << client.error();
  const auto chain = client.peer_chain();
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain[0], leaf_);
}

}  // namespace
}  // namespace salvo::net
