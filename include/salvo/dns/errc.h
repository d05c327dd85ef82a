// SPDX-License-Identifier: Apache-2.0
// dns::errc: error codes of the dns module. Kernel errors (ECONNREFUSED from
// an ICMP port unreachable, ...) keep std::system_category.
#pragma once

#include <system_error>

namespace salvo::dns {

enum class errc {
  malformed = 1,   // a datagram or stream that does not decode as a DNS message
  mismatch,        // a well-formed response to another query (id or question differ)
  bad_name,        // a name that cannot be put in a query (empty, label > 63, > 255)
  cname_chain,     // CNAME chain longer than the limit, or a loop
  timeout,         // no usable answer from any server within the tries
  overloaded,      // too many queries queued (Resolver back-pressure)
  no_servers,      // the resolver has no server to ask
  cancelled,       // the resolver stopped before the query finished
  nxdomain,        // the domain does not exist (permanent)
  no_data,         // no MX and no A/AAAA (permanent)
  null_mx,         // RFC 7505 null MX: the domain accepts no mail (permanent)
  no_usable_mx,    // MX records exist but none resolves to an address
  server_failure,  // SERVFAIL, REFUSED or another rcode (temporary)
  bad_idn,         // the domain is not a valid IDN (libidn2 refused it; permanent)
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace salvo::dns

template <>
struct std::is_error_code_enum<salvo::dns::errc> : std::true_type {};
