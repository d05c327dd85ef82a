// SPDX-License-Identifier: Apache-2.0
// AuthUsers: loading the credentials (start-up) and the constant-time check (shards).
#include <salvo/inbound/auth_users.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace salvo::inbound {
namespace {

// Compares over max(a, b) bytes so the time does not reveal a common prefix or length.
bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
  std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

AuthUsers AuthUsers::from_config(const config::Listener& listener) {
  AuthUsers users;
  for (const auto& [user, password] : listener.auth_users) users.add(user, password);
  if (!listener.auth_users_file.empty()) {
    std::ifstream f(listener.auth_users_file, std::ios::binary);
    if (!f) {
      throw std::runtime_error("auth_users_file " + listener.auth_users_file +
                               ": cannot be read");
    }
    std::ostringstream text;
    text << f.rdbuf();
    AuthUsers from_file = parse_file_text(text.str(), listener.auth_users_file);
    for (auto& [user, password] : from_file.users_) users.add(user, password);
  }
  return users;
}

AuthUsers AuthUsers::parse_file_text(std::string_view text, std::string_view name) {
  AuthUsers users;
  std::size_t line_no = 0;
  while (!text.empty()) {
    std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
      throw std::runtime_error("auth_users_file " + std::string(name) + ": line " +
                               std::to_string(line_no) + ": expected user:password");
    }
    users.add(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return users;
}

void AuthUsers::add(std::string user, std::string password) {
  users_.insert_or_assign(std::move(user), std::move(password));
}

bool AuthUsers::check(std::string_view user, std::string_view password) const noexcept {
  static constexpr std::string_view kDummy = "salvo-no-such-user-placeholder-secret";
  auto it = users_.find(user);
  bool known = it != users_.end();
  bool match = equal_constant_time(known ? std::string_view(it->second) : kDummy, password);
  return known && match;
}

}  // namespace salvo::inbound
