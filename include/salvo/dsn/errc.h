// SPDX-License-Identifier: Apache-2.0
// dsn::errc: why build_dsn refused to build a notification.
#pragma once

#include <system_error>

namespace salvo::dsn {

enum class errc {
  no_recipients = 1,   // nothing to report
  null_sender,         // original_sender empty: a null-sender message never gets a DSN
  bad_reporting_mta,   // reporting_mta empty or not a host name
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace salvo::dsn

template <>
struct std::is_error_code_enum<salvo::dsn::errc> : std::true_type {};
