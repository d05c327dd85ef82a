// SPDX-License-Identifier: Apache-2.0
// Text helpers of the DSN builder (see text.h).
#include "dsn/text.h"

#include <array>

#include <fmt/format.h>

#include <salvo/smtp/address.h>

namespace salvo::dsn::detail {
namespace {

bool is_ctl(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

// Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil inverse).
void civil_from_days(std::int64_t z, std::int64_t* y, unsigned* m, unsigned* d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t yy = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2 ? 1 : 0);
}

}  // namespace

std::string format_date(std::int64_t t) {
  static constexpr std::array<const char*, 7> kDays = {"Thu", "Fri", "Sat", "Sun",
                                                       "Mon", "Tue", "Wed"};
  static constexpr std::array<const char*, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::int64_t days = t / 86400;
  std::int64_t secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    days -= 1;
  }
  std::int64_t y = 0;
  unsigned m = 1, d = 1;
  civil_from_days(days, &y, &m, &d);
  const auto wd = static_cast<std::size_t>(((days % 7) + 7) % 7);
  return fmt::format("{}, {} {} {} {:02}:{:02}:{:02} +0000", kDays[wd], d, kMonths[m - 1], y,
                     secs / 3600, (secs / 60) % 60, secs % 60);
}

std::string sanitize_line(std::string_view in, bool allow_utf8) {
  const bool keep_8bit = allow_utf8 && smtp::valid_utf8(in);
  std::string out;
  out.reserve(in.size());
  bool pending_space = false;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_ctl(c) || c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    out += (c >= 0x80 && !keep_8bit) ? '?' : ch;
  }
  return out;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ':';
  std::size_t line = name.size() + 1;
  bool first = true;
  std::size_t pos = 0;
  while (pos < value.size()) {
    std::size_t end = value.find(' ', pos);
    if (end == std::string_view::npos) end = value.size();
    std::string_view word = value.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (!first && line + 1 + word.size() > kSoftLine) {
      out += "\r\n";
      line = 0;
    }
    first = false;
    // A word that cannot fit even on a fresh line is split (the only place a space is added).
    while (line + 1 + word.size() > kHardLine) {
      const std::size_t take = kHardLine - line - 1;
      out += ' ';
      out += word.substr(0, take);
      out += "\r\n";
      line = 0;
      word.remove_prefix(take);
    }
    out += ' ';
    out += word;
    line += 1 + word.size();
  }
  out += "\r\n";
}

void append_wrapped(std::string& out, std::string_view text, std::size_t first_indent,
                    std::size_t indent, std::size_t width) {
  if (width > kHardLine) width = kHardLine;
  out.append(first_indent, ' ');
  std::size_t line = first_indent;
  bool at_start = true;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (!at_start && line + 1 + word.size() > width) {
      out += "\r\n";
      out.append(indent, ' ');
      line = indent;
      at_start = true;
    }
    while ((at_start ? 0 : 1) + line + word.size() > width) {
      const std::size_t room = width - line - (at_start ? 0 : 1);
      if (!at_start) out += ' ';
      out += word.substr(0, room);
      out += "\r\n";
      out.append(indent, ' ');
      line = indent;
      at_start = true;
      word.remove_prefix(room);
    }
    if (!at_start) {
      out += ' ';
      ++line;
    }
    out += word;
    line += word.size();
    at_start = false;
  }
  out += "\r\n";
}

std::string xtext_for_field(std::string_view xtext, bool allow_utf8) {
  std::string decoded;
  if (smtp::xtext_decode(xtext, &decoded)) {
    bool safe = !decoded.empty();
    for (char ch : decoded) {
      const auto c = static_cast<unsigned char>(ch);
      if (is_ctl(c) || (c >= 0x80 && !allow_utf8)) safe = false;
    }
    if (safe && allow_utf8 && !smtp::valid_utf8(decoded)) safe = false;
    if (safe) return sanitize_line(decoded, allow_utf8);  // collapses odd spacing only
  }
  return sanitize_line(xtext, false);
}

std::string sanitize_host(std::string_view in) {
  std::string out;
  for (char c : in) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '[' || c == ']' || c == ':') {
      out += c;
    }
  }
  if (out.size() > smtp::kMaxDomain) out.resize(smtp::kMaxDomain);
  return out;
}

bool is_host_name(std::string_view in) noexcept {
  if (in.empty() || in.size() > smtp::kMaxDomain) return false;
  for (char c : in) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.' || c == '_')) {
      return false;
    }
  }
  return true;
}

std::size_t max_line_length(std::string_view text) noexcept {
  std::size_t best = 0, cur = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      if (cur > 0 && text[i - 1] == '\r') --cur;
      if (cur > best) best = cur;
      cur = 0;
    } else {
      ++cur;
    }
  }
  return cur > best ? cur : best;
}

bool has_8bit(std::string_view text) noexcept {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

void append_message_text(std::string& out, std::string_view text) {
  std::size_t line = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      out += "\r\n";
      line = 0;
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      continue;
    }
    if (line == kHardLine) {
      out += "\r\n ";
      line = 1;
    }
    out += c == '\0' ? ' ' : c;
    ++line;
  }
  if (!text.empty() && line != 0) out += "\r\n";
}

}  // namespace salvo::dsn::detail
