// SPDX-License-Identifier: Apache-2.0
#include <salvo/dsn/errc.h>

#include <string>

namespace salvo::dsn {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "dsn"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::no_recipients: return "no recipients to report";
      case errc::null_sender: return "null sender: no DSN is sent to <>";
      case errc::bad_reporting_mta: return "reporting MTA is not a host name";
    }
    return "unknown dsn error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category kCategory;
  return kCategory;
}

}  // namespace salvo::dsn
