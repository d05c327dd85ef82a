// SPDX-License-Identifier: Apache-2.0
// DNS codec: queries as ldns decodes them, responses built by ldns from zone text, and
// hostile input (mismatched id or question, truncation, garbage, CNAME loops).
#include <salvo/dns/message.h>

#include <string>

#include <gtest/gtest.h>

#include <salvo/dns/errc.h>

#include "dns/ldns_include.h"
#include "dns_test_util.h"

namespace salvo::dns::test {
namespace {

TEST(EncodeQuery, RecursiveWithEdnsAndId) {
  auto wire = encode_query({"Example.COM.", RrType::Mx, 0xbeef});
  ASSERT_TRUE(wire) << wire.error().message();
  ldns_pkt* p = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const std::uint8_t*>(wire->data()), wire->size()),
            LDNS_STATUS_OK);
  EXPECT_EQ(ldns_pkt_id(p), 0xbeef);
  EXPECT_TRUE(ldns_pkt_rd(p));
  EXPECT_TRUE(ldns_pkt_ad(p));  // RFC 6840 §5.7: ask for AD in the answer
  EXPECT_FALSE(ldns_pkt_edns_do(p));
  EXPECT_FALSE(ldns_pkt_qr(p));
  EXPECT_TRUE(ldns_pkt_edns(p));
  EXPECT_EQ(ldns_pkt_edns_udp_size(p), kEdnsPayload);
  ASSERT_EQ(ldns_pkt_qdcount(p), 1);
  const ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(p), 0);
  EXPECT_EQ(ldns_rr_get_type(q), LDNS_RR_TYPE_MX);
  char* owner = ldns_rdf2str(ldns_rr_owner(q));
  EXPECT_STREQ(owner, "example.com.");
  free(owner);
  ldns_pkt_free(p);
}

TEST(EncodeQuery, WithoutEdns) {
  auto wire = encode_query({"example.com", RrType::A, 1}, 0);
  ASSERT_TRUE(wire);
  ldns_pkt* p = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const std::uint8_t*>(wire->data()), wire->size()),
            LDNS_STATUS_OK);
  EXPECT_FALSE(ldns_pkt_edns(p));
  EXPECT_EQ(ldns_pkt_arcount(p), 0);
  ldns_pkt_free(p);
}

TEST(EncodeQuery, RejectsBadNames) {
  EXPECT_EQ(encode_query({"", RrType::A, 1}).error(), errc::bad_name);
  EXPECT_EQ(encode_query({".", RrType::A, 1}).error(), errc::bad_name);
  EXPECT_EQ(encode_query({"a..b", RrType::A, 1}).error(), errc::bad_name);
  EXPECT_EQ(encode_query({std::string(64, 'a') + ".com", RrType::A, 1}).error(), errc::bad_name);
  std::string long_name;
  for (int i = 0; i < 50; ++i) long_name += "abcde.";
  EXPECT_EQ(encode_query({long_name + "com", RrType::A, 1}).error(), errc::bad_name);
  EXPECT_TRUE(encode_query({std::string(63, 'a') + ".com", RrType::A, 1}));
}

TEST(DecodeResponse, MxRecordsWithTtl) {
  const Question q{"example.com", RrType::Mx, 7};
  auto wire = make_wire({.id = 7,
                         .qname = "example.com",
                         .answer = {"example.com. 300 IN MX 20 mx2.example.com.",
                                    "EXAMPLE.com. 200 IN MX 10 MX1.Example.com."}});
  auto a = decode_response(wire, q);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->rcode, Rcode::NoError);
  EXPECT_FALSE(a->truncated);
  ASSERT_EQ(a->mx.size(), 2u);
  EXPECT_EQ(a->mx[0], (MxRecord{20, "mx2.example.com", 300}));
  EXPECT_EQ(a->mx[1], (MxRecord{10, "mx1.example.com", 200}));
  EXPECT_TRUE(a->canonical_name.empty());
  EXPECT_FALSE(a->negative_ttl);
}

TEST(DecodeResponse, NullMxIsRootExchange) {
  const Question q{"nomail.example", RrType::Mx, 9};
  auto a = decode_response(
      make_wire({.id = 9, .qname = "nomail.example", .answer = {"nomail.example. 60 IN MX 0 ."}}),
      q);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->mx.size(), 1u);
  EXPECT_EQ(a->mx[0].exchange, "");
  EXPECT_EQ(a->mx[0].preference, 0);
}

TEST(DecodeResponse, AddressesAndCnameChain) {
  const Question q{"www.example.com", RrType::A, 3};
  auto a = decode_response(make_wire({.id = 3,
                                      .qname = "www.example.com",
                                      .qtype = RrType::A,
                                      .answer = {"www.example.com. 100 IN CNAME web.example.net.",
                                                 "web.example.net. 50 IN CNAME host.example.org.",
                                                 "host.example.org. 500 IN A 192.0.2.1",
                                                 "host.example.org. 400 IN A 192.0.2.2",
                                                 "other.example.org. 500 IN A 192.0.2.99"}}),
                           q);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->canonical_name, "host.example.org");
  ASSERT_EQ(a->addresses.size(), 2u);
  EXPECT_EQ(a->addresses[0].address.ip(), "192.0.2.1");
  EXPECT_EQ(a->addresses[0].ttl, 50u);  // the chain's smallest TTL
  EXPECT_EQ(a->addresses[1].address.ip(), "192.0.2.2");
}

TEST(DecodeResponse, Aaaa) {
  const Question q{"h.example", RrType::Aaaa, 4};
  auto a = decode_response(make_wire({.id = 4,
                                      .qname = "h.example",
                                      .qtype = RrType::Aaaa,
                                      .answer = {"h.example. 30 IN AAAA 2001:db8::1"}}),
                           q);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->addresses.size(), 1u);
  EXPECT_EQ(a->addresses[0].address.ip(), "2001:db8::1");
  EXPECT_EQ(a->addresses[0].address.family(), AF_INET6);
}

TEST(DecodeResponse, TxtStringsAreJoined) {
  const Question q{"_mta-sts.example.com", RrType::Txt, 5};
  auto a = decode_response(
      make_wire({.id = 5,
                 .qname = "_mta-sts.example.com",
                 .qtype = RrType::Txt,
                 .answer = {"_mta-sts.example.com. 600 IN TXT \"v=STSv1; \" \"id=20190429;\"",
                            "_mta-sts.example.com. 60 IN TXT \"\"",
                            "other.example.com. 60 IN TXT \"not ours\""}}),
      q);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(a->txt.size(), 2u);
  EXPECT_EQ(a->txt[0].text, "v=STSv1; id=20190429;");
  EXPECT_EQ(a->txt[0].ttl, 600u);
  EXPECT_EQ(a->txt[1].text, "");
  EXPECT_TRUE(a->has_records());
  EXPECT_EQ(to_string(RrType::Txt), "TXT");
}

TEST(DecodeResponse, NxDomainWithSoaNegativeTtl) {
  const Question q{"nope.example", RrType::Mx, 5};
  auto a = decode_response(
      make_wire({.id = 5,
                 .qname = "nope.example",
                 .rcode = Rcode::NxDomain,
                 .authority = {"example. 900 IN SOA ns.example. host.example. 1 7200 3600 "
                               "1209600 120"}}),
      q);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rcode, Rcode::NxDomain);
  ASSERT_TRUE(a->negative_ttl);
  EXPECT_EQ(*a->negative_ttl, 120u);  // min(SOA TTL 900, MINIMUM 120)
}

TEST(DecodeResponse, TtlWithMsbSetIsZero) {
  const Question q{"e.example", RrType::A, 6};
  auto a = decode_response(make_wire({.id = 6,
                                      .qname = "e.example",
                                      .qtype = RrType::A,
                                      .answer = {"e.example. 2147483648 IN A 192.0.2.7"}}),
                           q);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->addresses.size(), 1u);
  EXPECT_EQ(a->addresses[0].ttl, 0u);
}

TEST(DecodeResponse, TruncatedAndServfail) {
  const Question q{"big.example", RrType::A, 8};
  auto tc = decode_response(
      make_wire({.id = 8, .qname = "big.example", .qtype = RrType::A, .tc = true}), q);
  ASSERT_TRUE(tc);
  EXPECT_TRUE(tc->truncated);
  auto sf = decode_response(
      make_wire({.id = 8, .qname = "big.example", .qtype = RrType::A, .rcode = Rcode::ServFail}),
      q);
  ASSERT_TRUE(sf);
  EXPECT_EQ(sf->rcode, Rcode::ServFail);
  EXPECT_FALSE(sf->has_records());
}

TEST(DecodeResponse, MismatchedIdOrQuestionIsIgnored) {
  const Question q{"example.com", RrType::Mx, 100};
  EXPECT_EQ(decode_response(make_wire({.id = 101, .qname = "example.com"}), q).error(),
            errc::mismatch);
  EXPECT_EQ(decode_response(make_wire({.id = 100, .qname = "example.org"}), q).error(),
            errc::mismatch);
  EXPECT_EQ(decode_response(make_wire({.id = 100, .qname = "example.com", .qtype = RrType::A}), q)
                .error(),
            errc::mismatch);
  // Case differences in the echoed question are fine (RFC 4343).
  EXPECT_TRUE(decode_response(make_wire({.id = 100, .qname = "EXAMPLE.com"}), q));
}

TEST(DecodeResponse, QueryIsNotAResponse) {
  const Question q{"example.com", RrType::Mx, 1};
  EXPECT_EQ(decode_response(make_wire({.id = 1, .qname = "example.com", .qr = false}), q).error(),
            errc::malformed);
}

TEST(DecodeResponse, GarbageIsAnErrorNotACrash) {
  const Question q{"example.com", RrType::Mx, 0x1234};
  auto good = make_wire({.id = 0x1234,
                         .qname = "example.com",
                         .answer = {"example.com. 300 IN MX 10 mx1.example.com."}});
  EXPECT_EQ(decode_response(std::string("\x12\x34"), q).error(), errc::malformed);
  // Every truncation of a valid answer decodes or fails cleanly.
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = decode_response(std::span<const char>(good.data(), n), q);
    EXPECT_FALSE(r) << n;
  }
  // ANCOUNT lies (65535).
  std::string lie = good;
  lie[6] = '\xff';
  lie[7] = '\xff';
  EXPECT_FALSE(decode_response(lie, q));
  // A compression pointer that points at itself.
  std::string loop = good.substr(0, 12);
  loop += std::string("\xc0\x0c\x00\x0f\x00\x01", 6);
  loop[5] = 1;  // QDCOUNT = 1
  EXPECT_FALSE(decode_response(loop, q));
}

TEST(DecodeResponse, CnameLoopIsBounded) {
  const Question q{"a.example", RrType::Mx, 2};
  auto a = decode_response(make_wire({.id = 2,
                                      .qname = "a.example",
                                      .answer = {"a.example. 60 IN CNAME b.example.",
                                                 "b.example. 60 IN CNAME a.example."}}),
                           q);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), errc::cname_chain);
}

const std::string kSha256Hex(64, 'a');

TEST(DecodeResponse, TlsaRecordsAndTheAdBit) {
  const Question q{"_25._tcp.mx.example", RrType::Tlsa, 7};
  auto a = decode_response(
      make_wire({.id = 7,
                 .qname = "_25._tcp.mx.example",
                 .qtype = RrType::Tlsa,
                 .ad = true,
                 .answer = {"_25._tcp.mx.example. 600 IN TLSA 3 1 1 " + kSha256Hex,
                            "_25._tcp.mx.example. 300 IN TLSA 2 0 0 3082ff"}}),
      q);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->authenticated);
  ASSERT_EQ(a->tlsa.size(), 2u);
  EXPECT_EQ(a->tlsa[0].tlsa.usage, 3);
  EXPECT_EQ(a->tlsa[0].tlsa.selector, 1);
  EXPECT_EQ(a->tlsa[0].tlsa.matching_type, 1);
  EXPECT_EQ(a->tlsa[0].tlsa.data, std::string(32, '\xaa'));
  EXPECT_EQ(a->tlsa[0].ttl, 600u);
  EXPECT_EQ(a->tlsa[1].tlsa.usage, 2);
  EXPECT_EQ(a->tlsa[1].tlsa.data, std::string("\x30\x82\xff", 3));
  EXPECT_TRUE(a->has_records());

  auto plain = decode_response(
      make_wire({.id = 7, .qname = "_25._tcp.mx.example", .qtype = RrType::Tlsa}), q);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->authenticated);
  EXPECT_TRUE(plain->tlsa.empty());
}

TEST(DecodeResponse, TlsaBehindCname) {
  const Question q{"_25._tcp.mx.example", RrType::Tlsa, 8};
  auto a = decode_response(
      make_wire({.id = 8,
                 .qname = "_25._tcp.mx.example",
                 .qtype = RrType::Tlsa,
                 .answer = {"_25._tcp.mx.example. 60 IN CNAME tlsa.hoster.example.",
                            "tlsa.hoster.example. 600 IN TLSA 3 0 1 " + kSha256Hex}}),
      q);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->tlsa.size(), 1u);
  EXPECT_EQ(a->tlsa[0].ttl, 60u);  // the chain's smallest TTL
  EXPECT_EQ(a->canonical_name, "tlsa.hoster.example");
}

// A TLSA answer whose record's RDATA is cut to `keep` octets (RDLENGTH rewritten): what a
// hostile server could send.
std::string short_tlsa(std::size_t keep) {
  std::string wire = make_wire({.id = 9,
                                .qname = "_25._tcp.mx.example",
                                .qtype = RrType::Tlsa,
                                .answer = {"_25._tcp.mx.example. 60 IN TLSA 3 1 1 " + kSha256Hex}});
  const std::size_t rdlen = 3 + 32;  // the record is the last thing in the packet
  const std::size_t at = wire.size() - rdlen;
  wire.resize(at + keep);
  wire[at - 2] = static_cast<char>(keep >> 8);
  wire[at - 1] = static_cast<char>(keep & 0xff);
  return wire;
}

TEST(DecodeResponse, MalformedTlsaIsAnErrorNotACrash) {
  const Question q{"_25._tcp.mx.example", RrType::Tlsa, 9};
  ASSERT_TRUE(decode_response(short_tlsa(35), q));  // the untouched record decodes
  for (std::size_t keep : {0u, 1u, 2u, 3u}) {
    auto a = decode_response(short_tlsa(keep), q);
    ASSERT_FALSE(a) << keep;
    EXPECT_EQ(a.error(), errc::malformed) << keep;
  }
  // Any shorter association data still decodes: its length is judged by the DANE matcher.
  auto four = decode_response(short_tlsa(4), q);
  ASSERT_TRUE(four);
  ASSERT_EQ(four->tlsa.size(), 1u);
  EXPECT_EQ(four->tlsa[0].tlsa.data.size(), 1u);
}

TEST(NormalizeName, LowerCaseNoFinalDot) {
  EXPECT_EQ(normalize_name("MX.Example.COM."), "mx.example.com");
  EXPECT_EQ(normalize_name("a"), "a");
}

}  // namespace
}  // namespace salvo::dns::test
