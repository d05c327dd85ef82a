// SPDX-License-Identifier: Apache-2.0
// Logging set-up (one stderr sink, a compact pattern, a level) and the one call into
// spdlog that every log line goes through.
#include <salvo/base/log.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace {

// A line still to be formatted: spdlog formats it (after its level check, inside its own
// error handling) exactly as it would the caller's format string and arguments.
struct Deferred {
  fmt::string_view format;
  fmt::format_args args;
};

}  // namespace

template <>
struct fmt::formatter<Deferred> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  auto format(const Deferred& d, fmt::format_context& ctx) const {
    return fmt::vformat_to(ctx.out(), d.format, d.args);
  }
};

namespace salvo::log {

namespace {

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::Debug: return spdlog::level::debug;
    case Level::Info: return spdlog::level::info;
    case Level::Warn: return spdlog::level::warn;
    case Level::Error: return spdlog::level::err;
    case Level::Off: break;
  }
  return spdlog::level::off;
}

}  // namespace

void detail::write(Level level, fmt::string_view format, fmt::format_args args) {
  spdlog::default_logger_raw()->log(to_spdlog(level), "{}", Deferred{format, args});
}

void init(Level level) {
  auto logger = spdlog::stderr_color_mt("salvo");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e [%l] %v");
  spdlog::set_level(to_spdlog(level));
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
