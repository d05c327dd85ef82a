// SPDX-License-Identifier: Apache-2.0
// DNS message codec over ldns (encoder/decoder only). Every field read from a decoded packet
// is checked for presence and size first: a hostile answer yields an error, never a crash.
#include <salvo/dns/message.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <salvo/dns/errc.h>

#include "dns/ldns_include.h"

namespace salvo::dns {
namespace {

struct PktDeleter {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};
struct RdfDeleter {
  void operator()(ldns_rdf* r) const noexcept { ldns_rdf_deep_free(r); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktDeleter>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfDeleter>;

// RFC 2181 §8: a TTL with the most significant bit set is treated as zero.
std::uint32_t sane_ttl(std::uint32_t ttl) noexcept { return (ttl & 0x80000000u) ? 0 : ttl; }

bool is_dname(const ldns_rdf* r) noexcept {
  return r != nullptr && ldns_rdf_get_type(r) == LDNS_RDF_TYPE_DNAME && ldns_rdf_size(r) >= 1;
}

// Uncompressed wire labels to "a.b.c" (lower case; the root is ""). Octets that would be
// ambiguous in text ('.', '\\', controls, non-ASCII) are written as \DDD (RFC 4343 §2.1).
Result<std::string> dname_to_string(const ldns_rdf* r) {
  if (!is_dname(r)) return fail(errc::malformed);
  const auto* p = ldns_rdf_data(r);
  const std::size_t n = ldns_rdf_size(r);
  std::string out;
  std::size_t i = 0;
  bool first = true;
  while (i < n) {
    const std::size_t len = p[i++];
    if (len == 0) return out;
    if (len > 63 || i + len > n) return fail(errc::malformed);
    if (!first) out.push_back('.');
    first = false;
    for (std::size_t k = 0; k < len; ++k) {
      const unsigned char c = p[i + k];
      if (c >= 'A' && c <= 'Z') {
        out.push_back(static_cast<char>(c - 'A' + 'a'));
      } else if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
        out.push_back(static_cast<char>(c));
      } else {
        char buf[5];
        buf[0] = '\\';
        buf[1] = static_cast<char>('0' + c / 100);
        buf[2] = static_cast<char>('0' + (c / 10) % 10);
        buf[3] = static_cast<char>('0' + c % 10);
        buf[4] = 0;
        out.append(buf, 4);
      }
    }
    i += len;
  }
  return fail(errc::malformed);  // no terminating root label
}

bool same_name(const ldns_rdf* a, const ldns_rdf* b) noexcept {
  return is_dname(a) && is_dname(b) && ldns_dname_compare(a, b) == 0;
}

std::uint32_t read_u32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// RFC 6698 §2.1: three one-octet fields, then the association data (at least one octet
// on the wire per §2.1.4's presentation rules; an empty one is refused as malformed).
Result<TlsaRecord> tlsa_record(const ldns_rr* rr, std::uint32_t ttl) {
  if (ldns_rr_rd_count(rr) != 4) return fail(errc::malformed);
  TlsaRecord t;
  t.ttl = ttl;
  std::uint8_t* fields[3] = {&t.tlsa.usage, &t.tlsa.selector, &t.tlsa.matching_type};
  for (std::size_t i = 0; i < 3; ++i) {
    const ldns_rdf* r = ldns_rr_rdf(rr, i);
    if (r == nullptr || ldns_rdf_size(r) != 1) return fail(errc::malformed);
    *fields[i] = ldns_rdf_data(r)[0];
  }
  const ldns_rdf* d = ldns_rr_rdf(rr, 3);
  if (d == nullptr || ldns_rdf_size(d) == 0) return fail(errc::malformed);
  t.tlsa.data.assign(reinterpret_cast<const char*>(ldns_rdf_data(d)), ldns_rdf_size(d));
  return t;
}

Result<RdfPtr> make_dname(std::string_view name) {
  std::string text = normalize_name(name);
  if (text.empty() || text.size() > 253) return fail(errc::bad_name);
  // Labels are checked here: ldns accepts some oversized input silently.
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t dot = text.find('.', start);
    if (dot == std::string::npos) dot = text.size();
    const std::size_t len = dot - start;
    if (len == 0 || len > 63) return fail(errc::bad_name);
    start = dot + 1;
  }
  if (text.find_first_of(" \t\r\n\\\"();") != std::string::npos) return fail(errc::bad_name);
  text.push_back('.');
  RdfPtr rdf(ldns_dname_new_frm_str(text.c_str()));
  if (!rdf) return fail(errc::bad_name);
  return rdf;
}

}  // namespace

std::string_view to_string(RrType type) noexcept {
  switch (type) {
    case RrType::A:
      return "A";
    case RrType::Cname:
      return "CNAME";
    case RrType::Soa:
      return "SOA";
    case RrType::Mx:
      return "MX";
    case RrType::Txt:
      return "TXT";
    case RrType::Aaaa:
      return "AAAA";
    case RrType::Tlsa:
      return "TLSA";
  }
  return "TYPE?";
}

std::string_view to_string(Rcode rcode) noexcept {
  switch (rcode) {
    case Rcode::NoError:
      return "NOERROR";
    case Rcode::FormErr:
      return "FORMERR";
    case Rcode::ServFail:
      return "SERVFAIL";
    case Rcode::NxDomain:
      return "NXDOMAIN";
    case Rcode::NotImp:
      return "NOTIMP";
    case Rcode::Refused:
      return "REFUSED";
  }
  return "RCODE?";
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Result<std::string> encode_query(const Question& q, std::uint16_t edns_payload) {
  auto name = make_dname(q.name);
  if (!name) return std::unexpected(name.error());
  // ldns_pkt_query_new takes ownership of the name.
  PktPtr pkt(ldns_pkt_query_new(name->release(), static_cast<ldns_rr_type>(q.type),
                                LDNS_RR_CLASS_IN, LDNS_RD));
  if (!pkt) return fail(errc::bad_name);
  ldns_pkt_set_id(pkt.get(), q.id);
  ldns_pkt_set_ad(pkt.get(), true);
  if (edns_payload != 0) ldns_pkt_set_edns_udp_size(pkt.get(), edns_payload);
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&wire, pkt.get(), &size) != LDNS_STATUS_OK || wire == nullptr) {
    std::free(wire);
    return fail(errc::bad_name);
  }
  std::string out(reinterpret_cast<const char*>(wire), size);
  std::free(wire);
  return out;
}

Result<Answer> decode_response(std::span<const char> wire, const Question& q) {
  if (wire.size() < 12 || wire.size() > 65535) return fail(errc::malformed);
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size()) !=
          LDNS_STATUS_OK ||
      raw == nullptr) {
    ldns_pkt_free(raw);
    return fail(errc::malformed);
  }
  PktPtr pkt(raw);
  if (!ldns_pkt_qr(pkt.get())) return fail(errc::malformed);

  // RFC 5452 §9.1: id and question must match the query; anything else is not our answer.
  if (ldns_pkt_id(pkt.get()) != q.id) return fail(errc::mismatch);
  const ldns_rr_list* question = ldns_pkt_question(pkt.get());
  if (question == nullptr || ldns_rr_list_rr_count(question) != 1) return fail(errc::mismatch);
  const ldns_rr* qrr = ldns_rr_list_rr(question, 0);
  auto qname = make_dname(q.name);
  if (!qname) return std::unexpected(qname.error());
  if (qrr == nullptr || ldns_rr_get_type(qrr) != static_cast<ldns_rr_type>(q.type) ||
      ldns_rr_get_class(qrr) != LDNS_RR_CLASS_IN || !same_name(ldns_rr_owner(qrr), qname->get())) {
    return fail(errc::mismatch);
  }

  Answer a;
  a.id = q.id;
  a.rcode = static_cast<Rcode>(ldns_pkt_get_rcode(pkt.get()));
  a.truncated = ldns_pkt_tc(pkt.get());
  a.authenticated = ldns_pkt_ad(pkt.get());

  const ldns_rr_list* answer = ldns_pkt_answer(pkt.get());
  const std::size_t count = answer != nullptr ? ldns_rr_list_rr_count(answer) : 0;

  // Follow the CNAME chain from the question name (RFC 1034 §3.6.2), bounded.
  const ldns_rdf* current = qname->get();
  std::uint32_t chain_ttl = 0xffffffffu;
  for (int hops = 0;; ++hops) {
    const ldns_rr* cname = nullptr;
    for (std::size_t i = 0; i < count; ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(answer, i);
      if (rr != nullptr && ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
          ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN && same_name(ldns_rr_owner(rr), current)) {
        cname = rr;
        break;
      }
    }
    if (cname == nullptr || q.type == RrType::Cname) break;
    if (hops >= kMaxCnameChain) return fail(errc::cname_chain);
    if (ldns_rr_rd_count(cname) < 1 || !is_dname(ldns_rr_rdf(cname, 0))) {
      return fail(errc::malformed);
    }
    current = ldns_rr_rdf(cname, 0);
    chain_ttl = std::min(chain_ttl, sane_ttl(ldns_rr_ttl(cname)));
  }
  if (current != qname->get()) {
    auto cn = dname_to_string(current);
    if (!cn) return std::unexpected(cn.error());
    a.canonical_name = std::move(*cn);
  }

  for (std::size_t i = 0; i < count; ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answer, i);
    if (rr == nullptr || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
        ldns_rr_get_type(rr) != static_cast<ldns_rr_type>(q.type) ||
        !same_name(ldns_rr_owner(rr), current)) {
      continue;
    }
    const std::uint32_t ttl = std::min(chain_ttl, sane_ttl(ldns_rr_ttl(rr)));
    switch (q.type) {
      case RrType::Mx: {
        if (ldns_rr_rd_count(rr) != 2) return fail(errc::malformed);
        const ldns_rdf* pref = ldns_rr_rdf(rr, 0);
        if (pref == nullptr || ldns_rdf_size(pref) != 2) return fail(errc::malformed);
        auto exchange = dname_to_string(ldns_rr_rdf(rr, 1));
        if (!exchange) return std::unexpected(exchange.error());
        a.mx.push_back({ldns_rdf2native_int16(pref), std::move(*exchange), ttl});
        break;
      }
      case RrType::A: {
        const ldns_rdf* r = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : nullptr;
        if (r == nullptr || ldns_rdf_size(r) != 4) return fail(errc::malformed);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        std::memcpy(&sin.sin_addr, ldns_rdf_data(r), 4);
        a.addresses.push_back({net::SocketAddress::from_sockaddr(
                                   reinterpret_cast<const sockaddr*>(&sin), sizeof(sin)),
                               ttl});
        break;
      }
      case RrType::Aaaa: {
        const ldns_rdf* r = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : nullptr;
        if (r == nullptr || ldns_rdf_size(r) != 16) return fail(errc::malformed);
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        std::memcpy(&sin6.sin6_addr, ldns_rdf_data(r), 16);
        a.addresses.push_back({net::SocketAddress::from_sockaddr(
                                   reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6)),
                               ttl});
        break;
      }
      case RrType::Tlsa: {
        auto tlsa = tlsa_record(rr, ttl);
        if (!tlsa) return std::unexpected(tlsa.error());
        a.tlsa.push_back(std::move(*tlsa));
        break;
      }
      case RrType::Txt: {
        // Each rdf is one character-string: a length octet, then that many octets.
        TxtRecord t;
        t.ttl = ttl;
        for (std::size_t k = 0; k < ldns_rr_rd_count(rr); ++k) {
          const ldns_rdf* r = ldns_rr_rdf(rr, k);
          const std::size_t size = r != nullptr ? ldns_rdf_size(r) : 0;
          if (size == 0 || ldns_rdf_data(r)[0] != size - 1) return fail(errc::malformed);
          t.text.append(reinterpret_cast<const char*>(ldns_rdf_data(r)) + 1, size - 1);
        }
        a.txt.push_back(std::move(t));
        break;
      }
      case RrType::Cname:
      case RrType::Soa:
        break;
    }
  }

  // RFC 2308 §5: the negative answer is cached for min(SOA TTL, SOA MINIMUM).
  const ldns_rr_list* authority = ldns_pkt_authority(pkt.get());
  const std::size_t ns = authority != nullptr ? ldns_rr_list_rr_count(authority) : 0;
  for (std::size_t i = 0; i < ns; ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(authority, i);
    if (rr == nullptr || ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA) continue;
    if (ldns_rr_rd_count(rr) != 7) return fail(errc::malformed);
    const ldns_rdf* min = ldns_rr_rdf(rr, 6);
    if (min == nullptr || ldns_rdf_size(min) != 4) return fail(errc::malformed);
    a.negative_ttl = std::min(sane_ttl(ldns_rr_ttl(rr)), sane_ttl(read_u32(ldns_rdf_data(min))));
    break;
  }
  return a;
}

}  // namespace salvo::dns
