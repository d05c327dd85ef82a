// SPDX-License-Identifier: Apache-2.0
// run_blast: salvo-blast as a child process, its JSON report parsed.
#include "support/blast.h"

#include <gtest/gtest.h>

namespace salvo::test {

nlohmann::json run_blast(const TempDir& dir, const std::string& target,
                         const std::vector<std::string>& args) {
  using namespace std::chrono_literals;
  std::vector<std::string> argv = {program_path("salvo-blast"), "--smtp", target, "--json",
                                   "--timeout", "60s"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, dir.path());
  auto rc = p.wait(90s);
  EXPECT_TRUE(rc.has_value()) << "salvo-blast did not finish";
  EXPECT_EQ(rc.value_or(-1), 0) << p.stderr_text() << p.stdout_text();
  auto j = nlohmann::json::parse(p.stdout_text(), nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "salvo-blast printed no JSON: " << p.stdout_text();
  return j;
}

}  // namespace salvo::test
