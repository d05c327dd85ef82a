// SPDX-License-Identifier: Apache-2.0
// RFC 5321 §4.1.2 path grammar, RFC 6531 UTF-8 extension, RFC 3461 xtext. Pure functions;
// every input is hostile, every index is checked against the end.
#include <salvo/smtp/address.h>

#include <salvo/smtp/errc.h>

#include "smtp/ascii.h"

namespace salvo::smtp {
namespace {

constexpr bool is_atext(unsigned char c) noexcept {
  if (is_alnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return c >= 0x80;  // UTF8-non-ascii (RFC 6531), validated afterwards
  }
}

bool valid_ipv4(std::string_view s) noexcept {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    unsigned v = 0;
    while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && i - start < 3) {
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
    }
    if (i == start || v > 255) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool valid_ipv6(std::string_view s) noexcept {
  if (s.empty()) return false;
  int groups = 0;
  bool dbl = false;
  std::size_t i = 0;
  if (s.starts_with("::")) {
    dbl = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    std::size_t j = s.find(':', i);
    std::string_view tok = s.substr(i, j == std::string_view::npos ? s.size() - i : j - i);
    if (tok.find('.') != std::string_view::npos) {
      if (j != std::string_view::npos || !valid_ipv4(tok)) return false;
      groups += 2;
      break;
    }
    if (tok.empty() || tok.size() > 4) return false;
    for (char c : tok)
      if (!is_xdigit(static_cast<unsigned char>(c))) return false;
    ++groups;
    if (j == std::string_view::npos) break;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (dbl) return false;
      dbl = true;
      i = j + 2;
    } else {
      i = j + 1;
      if (i == s.size()) return false;
    }
  }
  return dbl ? groups <= 7 : groups == 8;
}

bool valid_address_literal(std::string_view s) noexcept {  // without the brackets
  if (s.empty()) return false;
  if (s.size() > 5 && iequals(s.substr(0, 5), "IPv6:")) return valid_ipv6(s.substr(5));
  if (is_digit(static_cast<unsigned char>(s[0])) && s.find(':') == std::string_view::npos)
    return valid_ipv4(s);
  // General-address-literal: Standardized-tag ":" 1*dcontent
  std::size_t colon = s.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == s.size()) return false;
  for (std::size_t i = 0; i < colon; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!is_alnum(c) && c != '-') return false;
  }
  if (s[colon - 1] == '-') return false;
  for (std::size_t i = colon + 1; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\') return false;
  }
  return true;
}

// Domain = sub-domain *("." sub-domain); returns the length parsed, 0 on error. Stops at
// the first byte that cannot continue a domain.
std::size_t scan_domain(std::string_view in, std::size_t pos) noexcept {
  std::size_t start = pos;
  while (true) {
    std::size_t label = pos;
    while (pos < in.size()) {
      auto c = static_cast<unsigned char>(in[pos]);
      if (is_alnum(c) || c == '-' || c >= 0x80) {
        ++pos;
      } else {
        break;
      }
    }
    std::size_t len = pos - label;
    if (len == 0 || len > 63 || in[label] == '-' || in[pos - 1] == '-') return 0;
    if (pos < in.size() && in[pos] == '.') {
      ++pos;
      continue;
    }
    return pos - start;
  }
}

bool has_high(std::string_view s) noexcept {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

PathError finish_mailbox(Path* out, AllowUtf8 allow_utf8) {
  if (out->local_part.size() > kMaxLocalPart || out->domain.size() > kMaxDomain)
    return PathError::TooLong;
  out->non_ascii = has_high(out->local_part) || has_high(out->domain);
  if (out->non_ascii) {
    if (!valid_utf8(out->local_part) || !valid_utf8(out->domain)) return PathError::BadUtf8;
    if (!allow_utf8) return PathError::NonAscii;
  }
  return PathError::None;
}

// Parses Mailbox = Local-part "@" (Domain / address-literal) starting at pos; on success
// returns the end position, 0 on error.
std::size_t scan_mailbox(std::string_view in, std::size_t pos, Path* out,
                         bool allow_postmaster) {
  std::size_t lp = pos;
  if (pos < in.size() && in[pos] == '"') {
    ++pos;
    bool closed = false;
    while (pos < in.size()) {
      auto c = static_cast<unsigned char>(in[pos]);
      if (c == '"') {
        closed = true;
        ++pos;
        break;
      }
      if (c == '\\') {
        if (pos + 1 >= in.size()) return 0;
        auto n = static_cast<unsigned char>(in[pos + 1]);
        if (n < 32 || n > 126) return 0;
        pos += 2;
        continue;
      }
      if ((c >= 32 && c <= 126) || c >= 0x80) {
        ++pos;
        continue;
      }
      return 0;  // control characters, CR, LF, NUL
    }
    if (!closed || pos - lp < 2) return 0;
  } else {
    while (true) {
      std::size_t atom = pos;
      while (pos < in.size() && is_atext(static_cast<unsigned char>(in[pos]))) ++pos;
      if (pos == atom) return 0;
      if (pos < in.size() && in[pos] == '.') {
        ++pos;
        continue;
      }
      break;
    }
  }
  out->local_part.assign(in.substr(lp, pos - lp));
  if (pos >= in.size() || in[pos] != '@') {
    if (allow_postmaster && iequals(out->local_part, "postmaster")) {
      out->domain.clear();
      return pos;
    }
    return 0;
  }
  ++pos;
  std::size_t dom = pos;
  if (pos < in.size() && in[pos] == '[') {
    std::size_t close = in.find(']', pos);
    if (close == std::string_view::npos) return 0;
    if (!valid_address_literal(in.substr(pos + 1, close - pos - 1))) return 0;
    pos = close + 1;
  } else {
    std::size_t n = scan_domain(in, pos);
    if (n == 0) return 0;
    pos += n;
  }
  out->domain.assign(in.substr(dom, pos - dom));
  return pos;
}

}  // namespace

std::string Path::mailbox() const {
  std::string s;
  append_mailbox(s);
  return s;
}

void Path::append_mailbox(std::string& out) const {
  out.append(local_part);
  if (!domain.empty()) {
    out.push_back('@');
    out.append(domain);
  }
}

PathError parse_path(std::string_view in, PathKind kind, AllowUtf8 allow_utf8, Path* out,
                     std::size_t* consumed) {
  out->clear();
  *consumed = 0;
  if (in.size() < 2 || in[0] != '<') return PathError::Syntax;
  std::size_t pos = 1;
  if (in[1] == '>') {
    if (kind != PathKind::Reverse) return PathError::Syntax;
    *consumed = 2;
    return PathError::None;
  }
  if (in[pos] == '@') {  // A-d-l ":" — checked, then dropped (RFC 5321 §4.1.2, §3.6.1)
    while (true) {
      if (pos >= in.size() || in[pos] != '@') return PathError::Syntax;
      ++pos;
      std::size_t n = scan_domain(in, pos);
      if (n == 0) return PathError::Syntax;
      pos += n;
      if (pos < in.size() && in[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < in.size() && in[pos] == ':') {
        ++pos;
        break;
      }
      return PathError::Syntax;
    }
  }
  std::size_t end = scan_mailbox(in, pos, out, kind == PathKind::Forward);
  if (end == 0 || end >= in.size() || in[end] != '>') {
    out->clear();
    return PathError::Syntax;
  }
  if (end + 1 > kMaxPath) {
    out->clear();
    return PathError::TooLong;
  }
  PathError e = finish_mailbox(out, allow_utf8);
  if (e != PathError::None) {
    out->clear();
    return e;
  }
  *consumed = end + 1;
  return PathError::None;
}

PathError parse_mailbox(std::string_view in, AllowUtf8 allow_utf8, Path* out) {
  out->clear();
  if (in.size() + 2 > kMaxPath) return PathError::TooLong;
  std::size_t end = scan_mailbox(in, 0, out, false);
  if (end == 0 || end != in.size()) {
    out->clear();
    return PathError::Syntax;
  }
  PathError e = finish_mailbox(out, allow_utf8);
  if (e != PathError::None) out->clear();
  return e;
}

Result<Path> parse_address(std::string_view mailbox, AllowUtf8 allow_utf8) {
  Path p;
  switch (parse_mailbox(mailbox, allow_utf8, &p)) {
    case PathError::None: return p;
    case PathError::Syntax: return fail(errc::bad_address);
    case PathError::TooLong: return fail(errc::address_too_long);
    case PathError::NonAscii: return fail(errc::non_ascii_address);
    case PathError::BadUtf8: return fail(errc::bad_utf8);
  }
  return fail(errc::bad_address);
}

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* e = p + s.size();
  while (p < e) {
    unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, F5..FF
    }
    if (e - p <= n) return false;
    for (int k = 1; k <= n; ++k) {
      unsigned cc = p[k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

bool xtext_valid(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return false;
      auto h1 = static_cast<unsigned char>(s[i + 1]);
      auto h2 = static_cast<unsigned char>(s[i + 2]);
      if (!is_upper_xdigit(h1) || !is_upper_xdigit(h2)) return false;
      i += 2;
      continue;
    }
    if (c < 33 || c > 126 || c == '=') return false;
  }
  return true;
}

bool xtext_decode(std::string_view s, std::string* out) {
  out->clear();
  if (!xtext_valid(s)) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out->push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out->push_back(s[i]);
    }
  }
  return true;
}

void xtext_encode(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->clear();
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out->push_back('+');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
}

std::string normalize_domain(std::string_view domain) {
  std::string d(domain);
  for (char& c : d) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

std::string domain_of(std::string_view mailbox) {
  const auto at = mailbox.rfind('@');
  if (at == std::string_view::npos) return {};
  return normalize_domain(mailbox.substr(at + 1));
}

}  // namespace salvo::smtp
