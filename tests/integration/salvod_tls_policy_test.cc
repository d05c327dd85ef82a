// SPDX-License-Identifier: Apache-2.0
// Outbound TLS that authenticates (docs/outbound-tls.md): salvod delivering through unbound
// to a salvo-sink whose certificate is signed by a test CA that the system bundle does not
// know. tls = "required" verifies the chain against [tls] ca_bundle and the MX host name
// unless tls_verify = false; a reload rebuilds the client TLS contexts (and refuses a CA
// bundle that does not load); every attempt's accounting line says what was verified.
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/delivery_env.h"
#include "support/cert_factory.h"
#include "support/eventually.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// d0.tls.test's MX is mx.tls.test (the main sink, 127.0.0.3); d0.wrong.test's MX is
// mx.wrong.test, the same sink under a name its certificate does not carry; d0.fine.test's
// is the senders' sink (no STARTTLS).
UnboundOptions tls_zones() {
  return zones({"d0.tls.test. 300 IN MX 10 mx.tls.test.", "mx.tls.test. 300 IN A 127.0.0.3",
                "d0.wrong.test. 300 IN MX 10 mx.wrong.test.",
                "mx.wrong.test. 300 IN A 127.0.0.3",
                "d0.fine.test. 300 IN MX 10 mx.sender.test."});
}

// The main sink offers STARTTLS with a certificate for mx.tls.test from the test CA.
std::vector<std::string> sink_tls() {
  const auto& certs = CertFactory::shared();
  if (!certs.ok()) throw std::runtime_error(certs.error());
  static const CertFactory::Issued issued = certs.issue("mx-tls-test", {"DNS:mx.tls.test"});
  return {"--tls-cert", issued.cert, "--tls-key", issued.key};
}

std::string required(const std::string& domain, const std::string& more = "") {
  return "[[shaping]]\ndomain = \"" + domain + "\"\ntls = \"required\"\n" + more;
}

std::string test_ca() { return "[tls]\nca_bundle = \"" + CertFactory::shared().ca_cert() + "\"\n"; }

std::string field(const json& e, const char* key) {
  return e.contains(key) ? e[key].get<std::string>() : std::string();
}

TEST(TlsPolicy, RequiredRefusesACertificateTheBundleDoesNotTrust) {
  // The default bundle (the system's) does not know the test CA: nothing goes.
  Env env(tls_zones(), sink_tls());
  Salvod d(env.dir, env.salvod(required("d0.tls.test")));
  ASSERT_EQ(blast_to(env.dir, d, 2, "tls.test")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 2; }, 15s)) << d.log();
  for (const auto& e : of_type(env.dir, "deferred")) {
    EXPECT_EQ(e["code"], 451) << e.dump();
    EXPECT_EQ(e["enhanced"], "4.7.5") << e.dump();
    EXPECT_TRUE(field(e, "tls_policy").starts_with("verify-failed: ")) << e.dump();
    EXPECT_EQ(e["mx"], "mx.tls.test") << e.dump();
  }
  EXPECT_EQ(count_of(env.dir, "delivered"), 0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(env.mx->stop()["messages"], 0);
}

TEST(TlsPolicy, RequiredWithTlsVerifyFalseOnlyEncrypts) {
  Env env(tls_zones(), sink_tls());
  Salvod d(env.dir, env.salvod(required("d0.tls.test", "tls_verify = false\n")));
  ASSERT_EQ(blast_to(env.dir, d, 2, "tls.test")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 15s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) {
    EXPECT_EQ(field(e, "tls_policy"), "opportunistic") << e.dump();
    EXPECT_FALSE(field(e, "tls").empty()) << e.dump();
  }
  EXPECT_EQ(d.stop(), 0);
}

TEST(TlsPolicy, RequiredDeliversWithTheRightCaAndNameAndRefusesAWrongName) {
  Env env(tls_zones(), sink_tls());
  Salvod d(env.dir, env.salvod(required("d0.tls.test") + required("d0.wrong.test") + test_ca()));
  ASSERT_EQ(blast_to(env.dir, d, 2, "tls.test")["accepted"], 2);
  ASSERT_EQ(blast_to(env.dir, d, 1, "wrong.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 15s)) << d.log();
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 1; }, 15s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) {
    EXPECT_EQ(e["domain"], "d0.tls.test") << e.dump();
    EXPECT_EQ(field(e, "tls_policy"), "verified") << e.dump();
  }
  for (const auto& e : of_type(env.dir, "deferred")) {
    EXPECT_EQ(e["domain"], "d0.wrong.test") << e.dump();
    EXPECT_TRUE(field(e, "tls_policy").starts_with("verify-failed: ")) << e.dump();
  }
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(env.mx->stop()["messages"], 2);
}

TEST(TlsPolicy, OpportunisticAndPlaintextAreNamedToo) {
  // Opportunistic TLS is "opportunistic"; plaintext to the senders' sink is "none".
  Env env(tls_zones(), sink_tls());
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(blast_to(env.dir, d, 1, "tls.test")["accepted"], 1);
  ASSERT_EQ(blast_to(env.dir, d, 1, "fine.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 15s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) {
    const bool plain = e["domain"] == "d0.fine.test";
    EXPECT_EQ(field(e, "tls_policy"), plain ? "none" : "opportunistic") << e.dump();
  }
  EXPECT_EQ(d.stop(), 0);
}

// Reload rebuilds the client TLS contexts: verification turned on by a reload ([delivery]
// tls_verify, a key older versions knew) applies to the next connection, a new CA bundle
// too, and a bundle that does not load is refused.
TEST(TlsPolicy, ReloadTurnsVerificationOnAndRefusesABadBundle) {
  Env env(tls_zones(), sink_tls());
  const std::string quick = "idle_timeout = \"100ms\"\n";
  SalvodOptions o = env.salvod(required("d0.tls.test"), quick + "tls_verify = false");
  Salvod d(env.dir, o);
  auto rewrite = [&](const std::string& extra, const std::string& delivery) {
    std::string text = read_file(d.config_path());
    const std::string was = o.extra;
    o = env.salvod(extra, quick + delivery);
    text.replace(text.find(was), was.size(), o.extra);
    std::ofstream(d.config_path()) << text;
  };
  ASSERT_EQ(blast_to(env.dir, d, 1, "tls.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 1; }, 15s)) << d.log();

  // Verification on: the next mail waits.
  rewrite(required("d0.tls.test"), "tls_verify = true");
  Ctl on = salvoctl(env.dir, d.config_path(), {"reload"});
  ASSERT_EQ(on.rc, 0) << on.err;
  ASSERT_EQ(blast_to(env.dir, d, 1, "tls.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 1; }, 15s)) << d.log();
  EXPECT_EQ(count_of(env.dir, "delivered"), 1);
  EXPECT_TRUE(field(of_type(env.dir, "deferred").front(), "tls_policy").starts_with("verify-"))
      << of_type(env.dir, "deferred").front().dump();

  // A CA bundle that does not load: refused, named, the running settings stay.
  rewrite(required("d0.tls.test") + "[tls]\nca_bundle = \"" + env.dir.file("missing.pem") +
              "\"\n",
          "tls_verify = true");
  Ctl bad = salvoctl(env.dir, d.config_path(), {"reload"});
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE((bad.err + bad.out).find("missing.pem"), std::string::npos) << bad.err << bad.out;

  // The test CA: the deferred message goes at its retry, verified.
  rewrite(required("d0.tls.test") + test_ca(), "tls_verify = true");
  Ctl ca = salvoctl(env.dir, d.config_path(), {"reload"});
  ASSERT_EQ(ca.rc, 0) << ca.err;
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 15s)) << d.log();
  EXPECT_EQ(field(of_type(env.dir, "delivered").back(), "tls_policy"), "verified");
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace salvo::test
