// SPDX-License-Identifier: Apache-2.0
// Hostile DNS servers (CVE-2015-7547 class): decode_response over arbitrary bytes. The
// question is taken from the input itself when ldns can read one, so the fuzzer reaches the
// answer, CNAME and SOA code instead of stopping at the id/question check.
#include <salvo/dns/message.h>

#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "dns/ldns_include.h"

namespace {

using namespace salvo::dns;
using salvo::Result;

void check(const Result<Answer>& a, std::size_t size) {
  if (!a) return;
  // Every record came from the input: a decoder that invents records is broken.
  if (a->mx.size() + a->addresses.size() + a->tlsa.size() > size / 11) std::abort();
  for (const auto& t : a->tlsa) {
    if (t.tlsa.data.empty() || t.tlsa.data.size() > size) std::abort();
    if (t.ttl & 0x80000000u) std::abort();
  }
  for (const auto& m : a->mx) {
    if (m.exchange.size() > 4 * 255) std::abort();
    if (m.ttl & 0x80000000u) std::abort();
  }
  for (const auto& r : a->addresses) {
    if (r.ttl & 0x80000000u) std::abort();
  }
  if (a->negative_ttl && (*a->negative_ttl & 0x80000000u)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const char> wire(reinterpret_cast<const char*>(data), size);
  const std::uint16_t id = size >= 2 ? static_cast<std::uint16_t>((data[0] << 8) | data[1]) : 0;

  // A fixed question, as a resolver would have asked.
  for (RrType t : {RrType::Mx, RrType::A, RrType::Aaaa, RrType::Tlsa}) {
    check(decode_response(wire, {"example.com", t, id}), size);
  }

  // The question the input claims to answer.
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, data, size) == LDNS_STATUS_OK && pkt != nullptr) {
    const ldns_rr_list* q = ldns_pkt_question(pkt);
    if (q != nullptr && ldns_rr_list_rr_count(q) == 1) {
      const ldns_rr* rr = ldns_rr_list_rr(q, 0);
      char* name = ldns_rdf2str(ldns_rr_owner(rr));
      if (name != nullptr) {
        const auto type = static_cast<RrType>(ldns_rr_get_type(rr));
        check(decode_response(wire, {name, type, id}), size);
        // Round trip: the name must encode as a query (or be rejected cleanly).
        (void)encode_query({name, type, id});
        std::free(name);
      }
    }
  }
  ldns_pkt_free(pkt);
  return 0;
}
