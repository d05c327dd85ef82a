// SPDX-License-Identifier: Apache-2.0
// Reload on real files: a bad file, a key that cannot be read or a CA bundle that is not
// there is refused whole with one line saying why; a good one names what waits for a
// restart; DeliverySettings are built once per configuration with everything delivery uses.
#include <salvo/admin/reload.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <salvo/outbound/settings.h>

namespace salvo::admin {
namespace {

namespace fs = std::filesystem;

class ReloadTest : public ::testing::Test {
 protected:
  ReloadTest() {
    dir_ = fs::temp_directory_path() / fmt::format("salvo-reload-{}", ::getpid());
    fs::create_directories(dir_);
    options_.resolv_conf = "/nonexistent/resolv.conf";
    options_.hostname = "node.test";
  }
  ~ReloadTest() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) {
    const auto path = (dir_ / "salvo.toml").string();
    std::ofstream(path) << "[dns]\nresolvers = [\"127.0.0.1\"]\n" << text;
    return path;
  }
  config::ConfigPtr load(const std::string& text) {
    auto c = config::load_file(write(text), options_);
    EXPECT_TRUE(c.has_value());
    return c ? *c : nullptr;
  }

  fs::path dir_;
  config::LoadOptions options_;
};

TEST_F(ReloadTest, SettingsHoldTheClassifierKeysAndTlsOfTheirConfiguration) {
  auto c = load("[delivery]\ntls_verify = false\n");
  auto s = outbound::DeliverySettings::build(c);
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_EQ((*s)->config, c);
  EXPECT_NE((*s)->classifier, nullptr);
  EXPECT_NE((*s)->tls, nullptr);
  // Built whatever tls_verify says: another [[shaping]] entry (or, later, a destination's
  // MTA-STS policy) may need it.
  EXPECT_NE((*s)->tls_verified, nullptr);
  EXPECT_EQ((*s)->signers->size(), 0u);
}

TEST_F(ReloadTest, SettingsFailWithOneLineNamingWhat) {
  auto s = outbound::DeliverySettings::build(load(
      "[[dkim]]\ndomain = \"a.test\"\nselector = \"s1\"\nkey_file = \"/nonexistent/k.pem\"\n"));
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().find("/nonexistent/k.pem"), std::string::npos) << s.error();
  EXPECT_EQ(s.error().find('\n'), std::string::npos);
  for (const char* verify : {"true", "false"}) {
    s = outbound::DeliverySettings::build(load(std::string("[delivery]\ntls_verify = ") + verify +
                                               "\n[tls]\nca_bundle = \"/nonexistent/ca.pem\"\n"));
    ASSERT_FALSE(s.has_value());
    EXPECT_NE(s.error().find("delivery TLS"), std::string::npos) << s.error();
    EXPECT_NE(s.error().find("/nonexistent/ca.pem"), std::string::npos) << s.error();
  }
}

TEST_F(ReloadTest, ABadFileIsRefusedAndTheRunningOneStays) {
  auto first = load("");
  Reloader r(write(""), options_, {}, first);
  write("[delivery]\nmax_recipients = \"many\"\n");
  auto j = r.reload();
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_NE(j["error"].get<std::string>().find("delivery.max_recipients"), std::string::npos)
      << j.dump();
  write("[delivery]\ntls_verify = true\n[tls]\nca_bundle = \"/nonexistent/ca.pem\"\n");
  j = r.reload();
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_NE(j["error"].get<std::string>().find("reload refused"), std::string::npos);
}

TEST_F(ReloadTest, AGoodFileAppliesAndSaysWhatWaitsForARestart) {
  ControlInbox inbox;  // not attached: answered at once, as a shard that is gone
  Reloader r(write(""), options_, {&inbox}, load(""));
  write("[node]\ncores = 3\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 2\n");
  auto j = r.reload();
  ASSERT_TRUE(j["ok"].get<bool>()) << j.dump();
  ASSERT_EQ(j["warnings"].size(), 1u);
  EXPECT_EQ(j["warnings"][0], "[node] changes wait for a restart");
  // The next reload compares against the one now in force: no [node] change any more.
  j = r.reload();
  ASSERT_TRUE(j["ok"].get<bool>());
  EXPECT_TRUE(j["warnings"].empty()) << j.dump();
}

}  // namespace
}  // namespace salvo::admin
