// SPDX-License-Identifier: Apache-2.0
// smtp::errc: the module's error codes for Result-returning helpers.
// Protocol outcomes are Replies, not errors; these are for callers that need an
// std::error_code (e.g. a pickup file whose X-Sender address does not parse).
#pragma once

#include <system_error>

namespace salvo::smtp {

enum class errc {
  bad_address = 1,
  address_too_long,
  non_ascii_address,
  bad_utf8,
  reply_syntax,
  reply_too_long,
  bare_line_ending,
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace salvo::smtp

template <>
struct std::is_error_code_enum<salvo::smtp::errc> : std::true_type {};
