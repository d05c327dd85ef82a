// SPDX-License-Identifier: Apache-2.0
// AuthUsers: the SMTP AUTH credentials of one [[listen]] entry (auth_users inline table or
// auth_users_file of "user:password" lines). Built at start-up, then read-only.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <salvo/config/config.h>

namespace salvo::inbound {

// Shared read-only by every shard once built. check() takes the same path, and compares
// the same number of bytes, for an unknown user as for a wrong password (same reply and
// timing), so the reply cannot be used to enumerate users.
class AuthUsers {
 public:
  AuthUsers() = default;
  // Start-up only: throws std::runtime_error with one line naming the file and line
  // ("auth_users_file /etc/salvo/users: line 3: expected user:password").
  static AuthUsers from_config(const config::Listener& listener);
  // Parses "user:password" lines; '#' comments and blank lines are skipped. Throws as above.
  static AuthUsers parse_file_text(std::string_view text, std::string_view name);

  void add(std::string user, std::string password);
  bool empty() const noexcept { return users_.empty(); }
  std::size_t size() const noexcept { return users_.size(); }
  // Constant-time comparison (over the longer of the two lengths).
  bool check(std::string_view user, std::string_view password) const noexcept;

 private:
  std::map<std::string, std::string, std::less<>> users_;
};

}  // namespace salvo::inbound
