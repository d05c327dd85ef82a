// SPDX-License-Identifier: Apache-2.0
// MTA-STS (RFC 8461) end to end: unbound serves _mta-sts.d0.sts.test's TXT record and the
// MX and A records, a small Python HTTPS server (sts_policy_server.py, certificate from the
// test CA) serves the policy on 127.0.0.6, and salvod delivers to the sink on 127.0.0.3
// (certificate for mx.sts.test from the same CA, [tls] ca_bundle). Enforce with a matching
// and a non-matching MX, testing mode, a max_age expiry and a TXT id change.
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
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

// The zones: d0.sts.test's MX is mx.sts.test (the main sink); its policy host
// mta-sts.d0.sts.test is 127.0.0.6; the TXT record carries `id` with a TTL of one second.
UnboundOptions sts_zones(const std::string& id) {
  return zones({"d0.sts.test. 300 IN MX 10 mx.sts.test.", "mx.sts.test. 300 IN A 127.0.0.3",
                "mta-sts.d0.sts.test. 300 IN A 127.0.0.6",
                "_mta-sts.d0.sts.test. 1 IN TXT \"v=STSv1; id=" + id + ";\""});
}

std::string policy(const std::string& mode, const std::string& mx, int max_age = 86400) {
  return "version: STSv1\nmode: " + mode + "\nmx: " + mx + "\nmax_age: " +
         std::to_string(max_age) + "\n";
}

// The sink with a certificate for mx.sts.test; the policy server; salvod trusting the CA.
struct StsWorld {
  std::unique_ptr<Env> env;
  std::string policy_file, log_file;
  std::unique_ptr<Process> https;
  std::unique_ptr<Salvod> salvod;

  explicit StsWorld(const std::string& body, const std::string& id = "1") {
    const auto& certs = CertFactory::shared();
    if (!certs.ok()) throw std::runtime_error(certs.error());
    static const CertFactory::Issued mx = certs.issue("mx-sts-test", {"DNS:mx.sts.test"});
    static const CertFactory::Issued web =
        certs.issue("mta-sts-d0-sts-test", {"DNS:mta-sts.d0.sts.test"});
    env = std::make_unique<Env>(sts_zones(id),
                                std::vector<std::string>{"--tls-cert", mx.cert, "--tls-key",
                                                         mx.key});
    policy_file = env->dir.file("policy.txt");
    log_file = env->dir.file("policy-gets.log");
    set_policy(body);
    const std::uint16_t port = free_loopback_port();
    const std::string ready = env->dir.file("https.ready");
    https = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/python3",
                                 std::string(SALVO_SOURCE_DIR) +
                                     "/tests/integration/sts_policy_server.py",
                                 "--address", "127.0.0.6", "--port", std::to_string(port),
                                 "--cert", web.cert, "--key", web.key, "--policy", policy_file,
                                 "--log", log_file, "--ready", ready},
        env->dir.path());
    if (!wait_for_file(ready, 10s)) {
      throw std::runtime_error("policy server did not start: " + https->stderr_text());
    }
    SalvodOptions o = env->salvod("[tls]\nca_bundle = \"" + certs.ca_cert() + "\"\n",
                                  "mta_sts_port = " + std::to_string(port));
    // TXT records are checked again after their TTL: one second here.
    const std::string dns_timeout = "timeout = \"1s\"\n";
    o.extra.replace(o.extra.find(dns_timeout), dns_timeout.size(),
                    dns_timeout + "min_ttl = \"1s\"\n");
    salvod = std::make_unique<Salvod>(env->dir, o);
  }
  ~StsWorld() {
    if (https) https->signal(SIGTERM);
  }

  void set_policy(const std::string& body) const { std::ofstream(policy_file) << body; }
  // GETs of the policy so far.
  int gets() const {
    std::ifstream in(log_file);
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line == "mta-sts.d0.sts.test" ? 1 : 0;
    return n;
  }
  json send(int n) { return blast_to(env->dir, *salvod, n, "sts.test"); }
  int count(const std::string& type) const { return count_of(env->dir, type); }
  std::vector<json> events(const std::string& type) const { return of_type(env->dir, type); }
};

std::string field(const json& e, const char* key) {
  return e.contains(key) ? e[key].get<std::string>() : std::string();
}

TEST(MtaSts, EnforceWithAMatchingMxDeliversVerified) {
  StsWorld w(policy("enforce", "*.sts.test"));
  ASSERT_EQ(w.send(3)["accepted"], 3);
  ASSERT_TRUE(eventually([&] { return w.count("delivered") == 3; }, 15s)) << w.salvod->log();
  for (const auto& e : w.events("delivered")) {
    EXPECT_EQ(field(e, "tls_policy"), "mta-sts") << e.dump();
  }
  EXPECT_EQ(w.gets(), 1) << "one fetch, then the cache";
  EXPECT_NE(w.salvod->log().find("MTA-STS policy of d0.sts.test: mode enforce"),
            std::string::npos)
      << w.salvod->log();
  EXPECT_EQ(w.salvod->stop(), 0);
}

TEST(MtaSts, EnforceWithANonMatchingMxDefersAndSendsNothing) {
  StsWorld w(policy("enforce", "mx.elsewhere.test"));
  ASSERT_EQ(w.send(2)["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return w.count("deferred") >= 2; }, 15s)) << w.salvod->log();
  for (const auto& e : w.events("deferred")) {
    EXPECT_EQ(field(e, "tls_policy"), "mx-mismatch: mx.sts.test") << e.dump();
    EXPECT_NE(field(e, "response").find("not listed in the MTA-STS policy"), std::string::npos)
        << e.dump();
  }
  EXPECT_EQ(w.count("delivered"), 0);
  EXPECT_EQ(w.salvod->stop(), 0);
  EXPECT_EQ(w.env->mx->stop()["messages"], 0);
}

TEST(MtaSts, TestingModeDeliversAndReportsTheFailure) {
  StsWorld w(policy("testing", "mx.elsewhere.test"));
  ASSERT_EQ(w.send(2)["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return w.count("delivered") == 2; }, 15s)) << w.salvod->log();
  for (const auto& e : w.events("delivered")) {
    EXPECT_EQ(field(e, "tls_policy"), "mta-sts-testing: mx-mismatch: mx.sts.test") << e.dump();
  }
  EXPECT_NE(w.salvod->log().find("MTA-STS policy (mode testing) not met"), std::string::npos)
      << w.salvod->log();
  EXPECT_EQ(w.salvod->stop(), 0);
}

TEST(MtaSts, AnExpiringPolicyIsFetchedAgain) {
  // max_age 2 s: refetched from half its age on, never used once expired.
  StsWorld w(policy("enforce", "mx.sts.test", 2));
  ASSERT_EQ(w.send(1)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return w.count("delivered") == 1; }, 15s)) << w.salvod->log();
  EXPECT_EQ(w.gets(), 1);
  std::this_thread::sleep_for(2200ms);  // the policy's age runs out
  ASSERT_EQ(w.send(1)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return w.count("delivered") == 2; }, 15s)) << w.salvod->log();
  EXPECT_GE(w.gets(), 2);
  EXPECT_EQ(field(w.events("delivered").back(), "tls_policy"), "mta-sts");
  EXPECT_EQ(w.salvod->stop(), 0);
}

TEST(MtaSts, ANewTxtIdBringsTheNewPolicy) {
  StsWorld w(policy("enforce", "mx.sts.test"), "1");
  ASSERT_EQ(w.send(1)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return w.count("delivered") == 1; }, 15s)) << w.salvod->log();
  EXPECT_EQ(w.gets(), 1);
  // The same id after the TXT record's TTL: checked, not fetched again.
  std::this_thread::sleep_for(1200ms);
  ASSERT_EQ(w.send(1)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return w.count("delivered") == 2; }, 15s)) << w.salvod->log();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(w.gets(), 1);
  // A new id and a new policy that no longer lists the MX: fetched, and mail waits.
  w.set_policy(policy("enforce", "mx.elsewhere.test"));
  UnboundOptions z = sts_zones("2");
  z.port = w.env->dns->port();
  w.env->start_dns(z);
  std::this_thread::sleep_for(1200ms);
  // The first message after the change may still go under the cached policy while the new
  // one is fetched; the ones after it wait.
  ASSERT_EQ(w.send(1)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return w.gets() == 2; }, 15s)) << w.salvod->log();
  ASSERT_EQ(w.send(1)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return w.count("deferred") >= 1; }, 15s)) << w.salvod->log();
  EXPECT_EQ(field(w.events("deferred").back(), "tls_policy"), "mx-mismatch: mx.sts.test");
  EXPECT_LE(w.count("delivered"), 3);
  EXPECT_EQ(w.salvod->stop(), 0);
}

}  // namespace
}  // namespace salvo::test
