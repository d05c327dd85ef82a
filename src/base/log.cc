// SPDX-License-Identifier: Apache-2.0
// Logging set-up: one stderr sink, a compact pattern, a level.
#include <salvo/base/log.h>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace salvo::log {

void init(Level level) {
  auto logger = spdlog::stderr_color_mt("salvo");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e [%l] %v");
  switch (level) {
    case Level::Debug: spdlog::set_level(spdlog::level::debug); break;
    case Level::Info: spdlog::set_level(spdlog::level::info); break;
    case Level::Warn: spdlog::set_level(spdlog::level::warn); break;
    case Level::Error: spdlog::set_level(spdlog::level::err); break;
    case Level::Off: spdlog::set_level(spdlog::level::off); break;
  }
}

bool parse_level(std::string_view text, Level* out) noexcept {
  if (text == "debug") *out = Level::Debug;
  else if (text == "info") *out = Level::Info;
  else if (text == "warn") *out = Level::Warn;
  else if (text == "error") *out = Level::Error;
  else if (text == "off") *out = Level::Off;
  else return false;
  return true;
}

}  // namespace salvo::log
