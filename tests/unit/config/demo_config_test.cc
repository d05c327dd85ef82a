// SPDX-License-Identifier: Apache-2.0
// configs/demo.toml (tools/demo.sh's configuration) loads once its @WORK@ placeholder is
// replaced, with the routes and shaping the demo's summary relies on.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <salvo/config/config.h>

namespace salvo::config {
namespace {

std::string demo_text() {
  std::ifstream in(SALVO_SOURCE_DIR "/configs/demo.toml");
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  for (auto at = text.find("@WORK@"); at != std::string::npos; at = text.find("@WORK@", at))
    text.replace(at, 6, "/tmp/salvo-demo.test");
  return text;
}

TEST(DemoConfig, LoadsWithTheWorkDirectoryFilledIn) {
  const std::string text = demo_text();
  ASSERT_NE(text.find("[node]"), std::string::npos) << "configs/demo.toml not found";
  auto r = load_string(text, "demo.toml", LoadOptions{.resolv_conf = "/nonexistent"});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const Config& c = **r;
  EXPECT_EQ(c.node.hostname, "salvo.demo");
  EXPECT_EQ(c.node.cores, 2u);
  EXPECT_TRUE(c.node.fsync);
  EXPECT_EQ(c.node.pickup, "/tmp/salvo-demo.test/pickup");
  EXPECT_EQ(c.node.log_dir, "/tmp/salvo-demo.test/log");
  EXPECT_EQ(c.routes.size(), 41u);  // 40 demo domains and esp.demo, where DSNs go
  EXPECT_EQ(c.routes.count("club1.demo"), 1u);
  EXPECT_EQ(c.delivery.retry_schedule.size(), 2u);
  EXPECT_EQ(c.default_shaping.max_connections, 4u);
  ASSERT_EQ(c.shaping.size(), 1u);
  EXPECT_EQ(c.shaping[0].domain, "shop1.demo");
  EXPECT_TRUE(c.shaping[0].max_message_rate.has_value());
  EXPECT_EQ(c.shaping[0].max_connections, 4u);  // inherited from "*"
  // The dashboard needs a token; demo.sh writes the file.
  EXPECT_EQ(c.http.token_file, "/tmp/salvo-demo.test/http-token");
}

}  // namespace
}  // namespace salvo::config
