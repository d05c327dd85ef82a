// SPDX-License-Identifier: Apache-2.0
// The one error-carrying return type: Result<T> = std::expected<T, error_code>.
// Fallible functions return it and are [[nodiscard]]; exceptions only at start-up.
#pragma once

#include <expected>
#include <system_error>

namespace salvo {

template <class T>
using Result = std::expected<T, std::error_code>;

using Status = Result<void>;

// An error from a std::errc or a module errc enum (anything std::make_error_code accepts).
template <class E>
[[nodiscard]] inline std::unexpected<std::error_code> fail(E e) {
  using std::make_error_code;
  return std::unexpected<std::error_code>(make_error_code(e));
}

[[nodiscard]] inline std::unexpected<std::error_code> fail_errno(int err) {
  return std::unexpected<std::error_code>(std::error_code(err, std::system_category()));
}

}  // namespace salvo
