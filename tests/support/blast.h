// SPDX-License-Identifier: Apache-2.0
// Runs salvo-blast against an SMTP address with --json and returns its report; any
// failure to run or finish is a test failure (bounded: --timeout 60s, wait 90s).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace salvo::test {

nlohmann::json run_blast(const TempDir& dir, const std::string& target,
                         const std::vector<std::string>& args);

}  // namespace salvo::test
