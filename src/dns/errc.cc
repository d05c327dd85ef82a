// SPDX-License-Identifier: Apache-2.0
// The dns error category.
#include <salvo/dns/errc.h>

#include <string>

namespace salvo::dns {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "dns"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed:
        return "malformed DNS message";
      case errc::mismatch:
        return "DNS response does not match the query";
      case errc::bad_name:
        return "invalid domain name";
      case errc::cname_chain:
        return "CNAME chain too long or looping";
      case errc::timeout:
        return "DNS query timed out";
      case errc::overloaded:
        return "too many DNS queries queued";
      case errc::no_servers:
        return "no DNS servers configured";
      case errc::cancelled:
        return "DNS query cancelled";
      case errc::nxdomain:
        return "domain does not exist (NXDOMAIN)";
      case errc::no_data:
        return "domain has no MX and no address records";
      case errc::null_mx:
        return "domain accepts no mail (null MX, RFC 7505)";
      case errc::no_usable_mx:
        return "no MX host of the domain has an address";
      case errc::server_failure:
        return "DNS server failure";
      case errc::bad_idn:
        return "invalid internationalized domain name";
    }
    return "unknown dns error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category kCategory;
  return kCategory;
}

}  // namespace salvo::dns
