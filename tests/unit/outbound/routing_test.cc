// SPDX-License-Identifier: Apache-2.0
// The pure helpers of outbound: which shard owns a domain, and the From: domain that picks
// the DKIM key.
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <salvo/outbound/outbound.h>

#include "outbound/types.h"

namespace salvo::outbound {
namespace {

TEST(ShardFor, StableInRangeAndSpread) {
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    std::string d = fmt::format("d{}.example", i);
    std::uint32_t s = shard_for(d, 4);
    EXPECT_LT(s, 4u);
    EXPECT_EQ(s, shard_for(d, 4)) << "the same domain always maps to the same shard";
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 4u) << "200 domains reach every shard";
  EXPECT_EQ(shard_for("gmail.com", 1), 0u);
}

TEST(FromDomain, FindsTheAddressInFromWhateverItsForm) {
  EXPECT_EQ(from_domain("From: a@Example.COM\r\nTo: b@c\r\n\r\nbody"), "example.com");
  EXPECT_EQ(from_domain("Subject: x\r\nfrom: Shop <news@shop.example>\r\n\r\n"), "shop.example");
  EXPECT_EQ(from_domain("FROM:\r\n \"Shop, Inc.\"\r\n <x@folded.example>\r\n\r\n"),
            "folded.example");
  EXPECT_EQ(from_domain("To: a@b\r\n\r\nFrom: body@not.header\r\n"), "")
      << "only the header section counts";
  EXPECT_EQ(from_domain("From: no-at-sign\r\n\r\n"), "");
  EXPECT_EQ(from_domain(""), "");
  EXPECT_EQ(from_domain("From: x@a.example (comment)\r\n\r\n"), "a.example");
}

TEST(FormatId, SixteenHexDigitsLikeTheListener) {
  EXPECT_EQ(spool::format_id(0x1000000000002ull), "0001000000000002");
}

}  // namespace
}  // namespace salvo::outbound
