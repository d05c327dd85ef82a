// SPDX-License-Identifier: Apache-2.0
// Composition helpers: the From: domain that picks the DKIM keys.
#include <cctype>
#include <string>

#include "outbound/types.h"

namespace salvo::outbound {

std::string from_domain(std::string_view message) {
  // The header section ends at the first empty line; From: may be folded.
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = message.size();
    std::string_view line = message.substr(pos, eol - pos);
    if (line.empty()) break;
    if (line.size() >= 5 && (line[0] == 'F' || line[0] == 'f') &&
        (line[1] == 'r' || line[1] == 'R') && (line[2] == 'o' || line[2] == 'O') &&
        (line[3] == 'm' || line[3] == 'M') && line[4] == ':') {
      std::string value(line.substr(5));
      std::size_t next = eol + 2;
      while (next < message.size() && (message[next] == ' ' || message[next] == '\t')) {
        std::size_t e2 = message.find("\r\n", next);
        if (e2 == std::string_view::npos) e2 = message.size();
        value.append(message.substr(next, e2 - next));
        next = e2 + 2;
      }
      // The address is inside <...> when there is a display name.
      std::size_t lt = value.rfind('<');
      std::string addr = value;
      if (lt != std::string::npos) {
        std::size_t gt = value.find('>', lt);
        addr = value.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
      }
      std::size_t at = addr.rfind('@');
      if (at == std::string::npos) return {};
      std::string d;
      for (char c : addr.substr(at + 1)) {
        if (c == ' ' || c == '\t' || c == '>' || c == ')' || c == ',' || c == ';') break;
        d.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
      return d;
    }
    pos = eol + 2;
  }
  return {};
}

}  // namespace salvo::outbound
