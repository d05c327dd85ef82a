// SPDX-License-Identifier: Apache-2.0
// Logging facade over spdlog. Modules log through salvo::log so the sink and format are
// chosen in one place (app start-up) and tests can silence it. Only fmt's core is included
// here (the format string is still checked at compile time); spdlog stays in log.cc, out
// of every file that logs.
#pragma once

#include <fmt/core.h>

#include <string_view>

namespace salvo::log {

enum class Level { Debug, Info, Warn, Error, Off };

// Sets the process-wide level and the "[time] [level] msg" pattern on stderr.
void init(Level level);
// Parses "debug" | "info" | "warn" | "error" | "off".
bool parse_level(std::string_view text, Level* out) noexcept;

namespace detail {
// Formats and writes one line through spdlog's default logger, if its level lets it through.
void write(Level level, fmt::string_view format, fmt::format_args args);
}  // namespace detail

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  detail::write(Level::Debug, format, fmt::make_format_args(args...));
}
template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  detail::write(Level::Info, format, fmt::make_format_args(args...));
}
template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  detail::write(Level::Warn, format, fmt::make_format_args(args...));
}
template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  detail::write(Level::Error, format, fmt::make_format_args(args...));
}

}  // namespace salvo::log
