// SPDX-License-Identifier: Apache-2.0
// Logging facade over spdlog. Modules log through salvo::log so the sink and format are
// chosen in one place (app start-up) and tests can silence it.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace salvo::log {

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

enum class Level { Debug, Info, Warn, Error, Off };

// Sets the process-wide level and the "[time] [level] msg" pattern on stderr.
void init(Level level);
// Parses "debug" | "info" | "warn" | "error" | "off".
bool parse_level(std::string_view text, Level* out) noexcept;

}  // namespace salvo::log
