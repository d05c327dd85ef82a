// SPDX-License-Identifier: Apache-2.0
#include <salvo/smtp/errc.h>

#include <string>

namespace salvo::smtp {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "smtp"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::bad_address: return "bad address syntax";
      case errc::address_too_long: return "address too long";
      case errc::non_ascii_address: return "non-ASCII address without SMTPUTF8";
      case errc::bad_utf8: return "invalid UTF-8";
      case errc::reply_syntax: return "malformed SMTP reply";
      case errc::reply_too_long: return "SMTP reply too long";
      case errc::bare_line_ending: return "bare CR or LF";
    }
    return "unknown smtp error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category kCategory;
  return kCategory;
}

}  // namespace salvo::smtp
