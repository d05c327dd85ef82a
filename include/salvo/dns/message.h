// SPDX-License-Identifier: Apache-2.0
// DNS message codec (RFC 1035 §4). Sans-IO and pure: ldns is used only to encode queries
// (ldns_pkt2wire) and decode responses (ldns_wire2pkt), never its resolver.
// Responses are reduced to plain C++ values: rcode, TC, AD, MX / A / AAAA / TLSA records with
// TTLs at the end of the CNAME chain, and the RFC 2308 negative-caching TTL from the SOA.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/net/dane.h>
#include <salvo/net/socket_address.h>

namespace salvo::dns {

// Record types the module asks for (RFC 1035 §3.2.2, RFC 3596, RFC 6698 §7.1).
enum class RrType : std::uint16_t {
  A = 1, Cname = 5, Soa = 6, Mx = 15, Txt = 16, Aaaa = 28, Tlsa = 52
};

// Response codes (RFC 1035 §4.1.1); other values pass through as their number.
enum class Rcode : std::uint16_t {
  NoError = 0,
  FormErr = 1,
  ServFail = 2,
  NxDomain = 3,
  NotImp = 4,
  Refused = 5,
};

std::string_view to_string(RrType type) noexcept;  // "MX", "A", ...
std::string_view to_string(Rcode rcode) noexcept;  // "NOERROR", "SERVFAIL", ... "RCODE?"

// What a query asks. `name` is an ASCII (A-label) domain, with or without the final dot.
struct Question {
  std::string name;
  RrType type = RrType::A;
  std::uint16_t id = 0;
};

// RFC 6891: the UDP payload size advertised in the OPT record (DNS Flag Day 2020 value).
inline constexpr std::uint16_t kEdnsPayload = 1232;
// Longest CNAME chain followed inside one answer (docs/reliability.md G12).
inline constexpr int kMaxCnameChain = 16;

// Builds the wire form of a recursive (RD) query with AD set (RFC 6840 §5.7: a validating
// resolver then reports in the answer's AD bit whether it validated the data, without the
// DO bit and its signatures). edns_payload 0 = no OPT record.
// Diagnostics: errc::bad_name for an empty name, a label over 63 or a name over 255 octets.
[[nodiscard]] Result<std::string> encode_query(const Question& q,
                                               std::uint16_t edns_payload = kEdnsPayload);

struct MxRecord {
  std::uint16_t preference = 0;
  std::string exchange;  // lower case, no final dot; "" is the root (RFC 7505 null MX ".")
  std::uint32_t ttl = 0;
  friend bool operator==(const MxRecord&, const MxRecord&) = default;
};

// RFC 6698 §2.1 with its TTL. The association data's length is not checked here (a digest
// of the wrong size makes the record unusable, net::tlsa_usable, not the answer bad).
struct TlsaRecord {
  net::Tlsa tlsa;
  std::uint32_t ttl = 0;
  friend bool operator==(const TlsaRecord&, const TlsaRecord&) = default;
};

// One TXT record: its character-strings joined (RFC 7208 §3.3, RFC 8461 §3.1 read it so).
struct TxtRecord {
  std::string text;
  std::uint32_t ttl = 0;
};

struct AddressRecord {
  net::SocketAddress address;  // port 0
  std::uint32_t ttl = 0;
};

// A decoded response. Record TTLs are already the minimum along the CNAME chain, and a TTL
// with the most significant bit set reads as 0 (RFC 2181 §8).
struct Answer {
  std::uint16_t id = 0;
  Rcode rcode = Rcode::NoError;
  bool truncated = false;                // TC: retry over TCP (RFC 7766)
  // AD (RFC 4035 §3.2.3): the server says it validated every record in the answer and
  // authority sections. Trust it only from a validating resolver on a secure path.
  bool authenticated = false;
  std::string canonical_name;            // end of the CNAME chain; "" when the answer had no CNAME
  std::vector<MxRecord> mx;              // for an MX question
  std::vector<AddressRecord> addresses;  // for an A or AAAA question
  std::vector<TlsaRecord> tlsa;          // for a TLSA question
  std::vector<TxtRecord> txt;            // for a TXT question
  // RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the authority-section SOA, if there is one.
  std::optional<std::uint32_t> negative_ttl;

  bool has_records() const noexcept {
    return !mx.empty() || !addresses.empty() || !tlsa.empty() || !txt.empty();
  }
};

// Decodes a response to `q`. Diagnostics:
//  - errc::malformed: not a DNS response (ldns refused it, QR clear, no question, bad rdata);
//  - errc::mismatch: a response, but the id or the question (name, type, class IN) differ;
//    the caller ignores it and keeps waiting (RFC 5452 §9.1, anti-spoofing);
//  - errc::cname_chain: the CNAME chain is longer than kMaxCnameChain or loops.
// Records of other types or other owners in the answer section are ignored. With TC set the
// record lists may be incomplete.
[[nodiscard]] Result<Answer> decode_response(std::span<const char> wire, const Question& q);

// Lower-cases ASCII and drops one final dot: the form names are compared and keyed in.
std::string normalize_name(std::string_view name);

}  // namespace salvo::dns
