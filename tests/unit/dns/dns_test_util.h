// SPDX-License-Identifier: Apache-2.0
// Helpers for the dns unit tests: real wire-format responses built with ldns from zone-file
// text, so the decoder is tested against what a server would send.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/dns/message.h>

#include "dns/ldns_include.h"

namespace salvo::dns::test {

struct WireSpec {
  std::uint16_t id = 0;
  std::string qname;
  RrType qtype = RrType::Mx;
  Rcode rcode = Rcode::NoError;
  bool tc = false;
  bool qr = true;
  bool ad = false;
  std::vector<std::string> answer;  // zone-file lines: "example.com. 300 IN MX 10 mx."
  std::vector<std::string> authority;
};

inline std::string make_wire(const WireSpec& s) {
  std::string name = s.qname;
  if (name.empty() || name.back() != '.') name.push_back('.');
  ldns_pkt* p = ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()),
                                   static_cast<ldns_rr_type>(s.qtype), LDNS_RR_CLASS_IN, LDNS_RD);
  EXPECT_NE(p, nullptr);
  ldns_pkt_set_id(p, s.id);
  ldns_pkt_set_qr(p, s.qr);
  ldns_pkt_set_ra(p, true);
  ldns_pkt_set_tc(p, s.tc);
  ldns_pkt_set_ad(p, s.ad);
  ldns_pkt_set_rcode(p, static_cast<std::uint8_t>(s.rcode));
  auto push = [&](const std::vector<std::string>& lines, ldns_pkt_section section) {
    for (const auto& line : lines) {
      ldns_rr* rr = nullptr;
      EXPECT_EQ(ldns_rr_new_frm_str(&rr, line.c_str(), 3600, nullptr, nullptr), LDNS_STATUS_OK)
          << line;
      if (rr != nullptr) ldns_pkt_push_rr(p, section, rr);
    }
  };
  push(s.answer, LDNS_SECTION_ANSWER);
  push(s.authority, LDNS_SECTION_AUTHORITY);
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, p, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<const char*>(wire), size);
  std::free(wire);
  ldns_pkt_free(p);
  return out;
}

inline std::uint16_t wire_id(const std::string& wire) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(wire[0]) << 8) |
                                    static_cast<unsigned char>(wire[1]));
}

}  // namespace salvo::dns::test
