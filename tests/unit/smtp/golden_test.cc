// SPDX-License-Identifier: Apache-2.0
// Golden transcripts: tests/data/smtp/<name>.in (client bytes; 0x1E separates writes) fed
// to a ServerSession with a fixed config must produce exactly <name>.ref. Messages are
// completed with "250 2.0.0 Ok: queued as <n>"; STARTTLS completes at once (the net layer
// would discard buffered plaintext; the runner does the same). SALVO_UPDATE_GOLDEN=1
// rewrites the .ref files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server_harness.h"

namespace salvo::smtp {
namespace {

namespace fs = std::filesystem;

fs::path data_dir() { return fs::path(SALVO_SOURCE_DIR) / "tests" / "data" / "smtp"; }

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ServerConfig golden_config() {
  ServerConfig c;
  c.hostname = "mx.golden.test";
  c.greeting = "ESMTP salvo";
  c.max_message_size = 65536;
  c.max_recipients = 5;
  c.hard_error_limit = 20;
  c.starttls_available = true;
  c.auth_mechanisms.add(AuthMechanism::Plain).add(AuthMechanism::Login);
  c.keep_body = true;
  return c;
}

std::string run_transcript(const std::string& input) {
  ServerConfig cfg = golden_config();
  testing::TestPolicy policy;
  policy.deny_domain = "relay.test";
  ServerSession s(cfg, policy);
  ByteBuffer in;
  std::string out;
  int queued = 0;
  s.greet();
  std::size_t pos = 0;
  bool closed = false;
  while (pos <= input.size() && !closed) {
    std::size_t sep = input.find('\x1e', pos);
    std::size_t end = sep == std::string::npos ? input.size() : sep;
    in.append(std::string_view(input).substr(pos, end - pos));
    pos = end + 1;
    while (true) {
      ServerEvent ev = s.feed(in);
      if (ev == ServerEvent::MessageReady) {
        std::string text = "Ok: queued as " + std::to_string(++queued);
        s.complete_message(250, {2, 0, 0}, text);
        continue;
      }
      if (ev == ServerEvent::StartTls) {
        in.clear();
        out.append(s.output().view());
        s.output().clear();
        out.append("[tls established]\r\n");
        s.tls_established();
        continue;
      }
      if (ev == ServerEvent::Close) closed = true;
      break;
    }
    out.append(s.output().view());
    s.output().clear();
  }
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, Transcript) {
  const fs::path in = data_dir() / (GetParam() + ".in");
  const fs::path ref = data_dir() / (GetParam() + ".ref");
  std::string actual = run_transcript(read_file(in));
  if (std::getenv("SALVO_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(ref, std::ios::binary) << actual;
    GTEST_SKIP() << "updated " << ref;
  }
  ASSERT_TRUE(fs::exists(ref)) << ref;
  EXPECT_EQ(actual, read_file(ref));
}

std::vector<std::string> transcript_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(data_dir()))
    if (e.path().extension() == ".in") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Smtp, Golden, ::testing::ValuesIn(transcript_names()),
                         [](const auto& param_info) { return param_info.param; });

TEST(GoldenSet, AtLeastTenTranscripts) { EXPECT_GE(transcript_names().size(), 10u); }

}  // namespace
}  // namespace salvo::smtp
