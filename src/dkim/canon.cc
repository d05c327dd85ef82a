// SPDX-License-Identifier: Apache-2.0
// Splitting a message into header fields and body (RFC 5322 §2.1, §2.2.3).
#include "dkim/canon.h"

#include <cstring>

#include <salvo/dkim/errc.h>

namespace salvo::dkim::detail {

MessageParts split_message(std::string_view message) noexcept {
  if (message.starts_with("\r\n")) return {message.substr(0, 0), message.substr(2)};
  const std::size_t blank = message.find("\r\n\r\n");
  if (blank == std::string_view::npos) return {message, message.substr(message.size())};
  return {message.substr(0, blank + 2), message.substr(blank + 4)};
}

Status parse_header_fields(std::string_view header, std::vector<HeaderField>& out) {
  const char* const base = header.data();
  const std::size_t n = header.size();
  std::size_t pos = 0;
  bool in_field = false;  // the last line belonged to a field that continuations may extend
  while (pos < n) {
    const void* nl = std::memchr(base + pos, '\n', n - pos);
    std::size_t next;  // start of the following line
    if (nl == nullptr) {
      next = n;
    } else {
      const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
      if (at == pos || base[at - 1] != '\r') return fail(errc::bare_lf);
      next = at + 1;
    }
    const std::string_view line = header.substr(pos, next - pos);
    if (is_wsp(line.front())) {
      if (in_field) {
        HeaderField& f = out.back();
        f.raw =
            std::string_view(f.raw.data(), next - static_cast<std::size_t>(f.raw.data() - base));
      }
    } else {
      const std::size_t colon = line.find(':');
      std::size_t name_end = colon == std::string_view::npos ? 0 : colon;
      while (name_end > 0 && is_wsp(line[name_end - 1])) --name_end;
      in_field = name_end > 0;
      if (in_field) out.push_back({line.substr(0, name_end), line});
    }
    pos = next;
  }
  return {};
}

}  // namespace salvo::dkim::detail
