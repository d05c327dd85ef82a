// SPDX-License-Identifier: Apache-2.0
// DANE for outbound SMTP (RFC 7672) end to end: unbound as a validating resolver over a zone
// signed at run time (ldns-signzone, its DS as trust anchor), salvo-sink serving STARTTLS
// with a CertFactory certificate, salvod with [dns] validating. TLSA records are computed
// with the openssl CLI. A matching record delivers over DANE, a mismatching one defers and
// delivers nothing, an unsigned domain keeps the other policy, and without `validating` the
// AD bit is ignored.
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/delivery_env.h"
#include "support/cert_factory.h"
#include "support/eventually.h"
#include "support/signed_zone.h"

namespace salvo::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kZone = "signed.example.";

// signed.example, signed once per binary: d0.signed.example's MX has a TLSA record that
// matches the sink's certificate (DANE-EE, SPKI, SHA-256); d0.bad.signed.example's MX one
// that does not (the digest of another CA's key); d0.bogus.signed.example's MX one whose
// signature was broken after signing (unbound answers SERVFAIL); d0.ta and d0.taname
// have DANE-TA records naming the test CA (their MX hosts must send a chain up to it, and
// only mxta is named in that certificate). Every MX host is the main sink.
const SignedZone& zone() {
  static const std::unique_ptr<SignedZone> z = [] {
    const auto& certs = CertFactory::shared();
    const std::string good = to_hex(openssl_tlsa_data(certs.server_cert(), 1, "sha256"));
    const std::string bad = to_hex(openssl_tlsa_data(certs.other_ca_cert(), 1, "sha256"));
    const std::string ca = to_hex(openssl_tlsa_data(certs.ca_cert(), 0, "sha256"));
    return std::make_unique<SignedZone>(
        kZone, std::vector<std::string>{
                   "d0.signed.example. 300 IN MX 10 mx.signed.example.",
                   "mx.signed.example. 300 IN A 127.0.0.3",
                   "_25._tcp.mx.signed.example. 300 IN TLSA 3 1 1 " + good,
                   "d0.bad.signed.example. 300 IN MX 10 mxbad.signed.example.",
                   "mxbad.signed.example. 300 IN A 127.0.0.3",
                   "_25._tcp.mxbad.signed.example. 300 IN TLSA 3 1 1 " + bad,
                   "d0.bogus.signed.example. 300 IN MX 10 mxbogus.signed.example.",
                   "mxbogus.signed.example. 300 IN A 127.0.0.3",
                   "_25._tcp.mxbogus.signed.example. 300 IN TLSA 3 1 1 " + good,
                   "d0.ta.signed.example. 300 IN MX 10 mxta.signed.example.",
                   "mxta.signed.example. 300 IN A 127.0.0.3",
                   "_25._tcp.mxta.signed.example. 300 IN TLSA 2 0 1 " + ca,
                   "d0.taname.signed.example. 300 IN MX 10 mxtaname.signed.example.",
                   "mxtaname.signed.example. 300 IN A 127.0.0.3",
                   "_25._tcp.mxtaname.signed.example. 300 IN TLSA 2 0 1 " + ca,
               });
  }();
  static const bool broken =
      z->ok() && z->break_signature("_25._tcp.mxbogus.signed.example.", "TLSA");
  (void)broken;
  return *z;
}

class Dane : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& certs = CertFactory::shared();
    if (!certs.ok()) GTEST_SKIP() << certs.error();
    if (!zone().ok()) GTEST_SKIP() << zone().error();
    start_env(certs.server_cert(), certs.server_key());
  }
  // unbound validating signed.example, the main sink serving STARTTLS with `cert` (PEM,
  // possibly a chain) and `key`.
  void start_env(const std::string& cert, const std::string& key) {
    env_.reset();
    UnboundOptions z = zones();
    z.signed_zones.push_back({kZone, zone().signed_file(), zone().ds_file()});
    env_ = std::make_unique<Env>(z, std::vector<std::string>{"--tls-cert", cert, "--tls-key", key});
  }
  std::unique_ptr<Salvod> start(bool validating) {
    return std::make_unique<Salvod>(
        env_->dir, env_->salvod("", "", validating ? "validating = true" : "validating = false"));
  }
  std::vector<nlohmann::json> events(const std::string& type) const {
    return of_type(env_->dir, type);
  }
  // Three messages to d0.<suffix>, all delivered, each accounted with `policy`.
  void expect_delivered(Salvod& d, const std::string& suffix, const std::string& policy) {
    ASSERT_EQ(blast_to(env_->dir, d, 3, suffix)["accepted"], 3);
    ASSERT_TRUE(eventually([&] { return count_of(env_->dir, "delivered") == 3; }, 15s))
        << d.log() << env_->dns->log();
    for (const auto& e : events("delivered")) EXPECT_EQ(e["tls_policy"], policy) << e.dump();
  }
  std::unique_ptr<Env> env_;
};

TEST_F(Dane, MatchingTlsaDeliversOverDane) {
  auto d = start(true);
  expect_delivered(*d, "signed.example", "dane");
  for (const auto& e : events("delivered")) EXPECT_EQ(e["mx"], "mx.signed.example");
  EXPECT_EQ(count_of(env_->dir, "deferred"), 0);
  EXPECT_EQ(d->stop(), 0);
}

TEST_F(Dane, MismatchingTlsaDefersAndDeliversNothing) {
  auto d = start(true);
  ASSERT_EQ(blast_to(env_->dir, *d, 3, "bad.signed.example")["accepted"], 3);
  ASSERT_TRUE(eventually([&] { return count_of(env_->dir, "deferred") >= 3; }, 15s)) << d->log();
  for (const auto& e : events("deferred")) {
    const std::string why = e["response"];
    EXPECT_NE(why.find("DANE"), std::string::npos) << e.dump();
    EXPECT_EQ(e["enhanced"], "4.7.5") << e.dump();
    EXPECT_EQ(e.value("tls_policy", "").rfind("dane-mismatch: ", 0), 0u) << e.dump();
  }
  EXPECT_EQ(count_of(env_->dir, "delivered"), 0);
  EXPECT_EQ(count_of(env_->dir, "bounced"), 0);
  EXPECT_EQ(d->stop(), 0);
  EXPECT_EQ(env_->mx->stop()["messages"], 0);
}

// DANE-TA (RFC 7672 §3.1.2, §3.2.2): the sink sends its leaf and the test CA; the TLSA
// record names the CA. The leaf names mxta.signed.example: delivered there, refused (name
// check) at mxtaname.signed.example.
TEST_F(Dane, DaneTaChecksTheChainAndTheName) {
  const auto& certs = CertFactory::shared();
  const auto leaf = certs.issue("dane-ta", {"DNS:mxta.signed.example"});
  const TempDir files;  // outlives the Env started below
  const std::string chain = files.file("chain.pem");
  {
    std::ofstream out(chain);
    out << read_file(leaf.cert) << read_file(certs.ca_cert());
  }
  start_env(chain, leaf.key);
  auto d = start(true);
  expect_delivered(*d, "ta.signed.example", "dane");
  ASSERT_EQ(blast_to(env_->dir, *d, 2, "taname.signed.example")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return count_of(env_->dir, "deferred") >= 2; }, 15s)) << d->log();
  for (const auto& e : events("deferred")) {
    const std::string why = e["response"];
    EXPECT_NE(why.find("does not name mxtaname.signed.example"), std::string::npos) << e.dump();
  }
  EXPECT_EQ(count_of(env_->dir, "delivered"), 3);
  EXPECT_EQ(d->stop(), 0);
}

// RFC 7672 §2.2: the host's addresses validated but its TLSA lookup failed (bogus:
// SERVFAIL); an attacker may be hiding the records, so nothing is sent to it.
TEST_F(Dane, FailedTlsaLookupDefers) {
  auto d = start(true);
  ASSERT_EQ(blast_to(env_->dir, *d, 2, "bogus.signed.example")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return count_of(env_->dir, "deferred") >= 2; }, 15s)) << d->log();
  for (const auto& e : events("deferred")) {
    const std::string why = e["response"];
    EXPECT_NE(why.find("TLSA lookup for mxbogus.signed.example failed"), std::string::npos)
        << e.dump();
    EXPECT_EQ(e.value("tls_policy", "").rfind("tlsa-lookup-failed: ", 0), 0u) << e.dump();
  }
  EXPECT_EQ(count_of(env_->dir, "delivered"), 0);
  EXPECT_EQ(d->stop(), 0);
  EXPECT_EQ(env_->mx->stop()["messages"], 0);
}

TEST_F(Dane, UnsignedDomainKeepsTheOtherPolicy) {
  auto d = start(true);
  expect_delivered(*d, "ok.test", "opportunistic");
  EXPECT_EQ(d->stop(), 0);
}

// Without [dns] validating the resolver's AD bit is not believed: the mismatching TLSA
// record is never looked at and the mail goes out opportunistically.
TEST_F(Dane, AdIgnoredWhenTheResolverIsNotMarkedValidating) {
  auto d = start(false);
  expect_delivered(*d, "bad.signed.example", "opportunistic");
  EXPECT_EQ(count_of(env_->dir, "deferred"), 0);
  EXPECT_EQ(d->stop(), 0);
}

}  // namespace
}  // namespace salvo::test
