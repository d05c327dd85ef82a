// SPDX-License-Identifier: Apache-2.0
// Strict base64 (RFC 4648 §4) for AUTH (RFC 4954): no whitespace, padding only at the
// end, length a multiple of 4, non-zero pad bits rejected. Private to smtp.
#pragma once

#include <string>
#include <string_view>

namespace salvo::smtp {

bool base64_decode(std::string_view in, std::string* out);
void base64_encode(std::string_view in, std::string* out);

}  // namespace salvo::smtp
