// SPDX-License-Identifier: Apache-2.0
// SocketAddress: parsing of IPv4/IPv6 literals with and without ports, formatting,
// round trips through sockaddr.
#include <salvo/net/socket_address.h>

#include <arpa/inet.h>

#include <gtest/gtest.h>

namespace salvo::net {
namespace {

TEST(SocketAddress, ParsesIpv4WithPort) {
  auto a = SocketAddress::parse("127.0.0.1:25");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 25);
  EXPECT_EQ(a->ip(), "127.0.0.1");
  EXPECT_EQ(a->to_string(), "127.0.0.1:25");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in));
}

TEST(SocketAddress, ParsesBracketedIpv6WithPort) {
  auto a = SocketAddress::parse("[::1]:2525");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 2525);
  EXPECT_EQ(a->ip(), "::1");
  EXPECT_EQ(a->to_string(), "[::1]:2525");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in6));
}

TEST(SocketAddress, BareAddressesTakeTheDefaultPort) {
  auto v4 = SocketAddress::parse("10.1.2.3", 25);
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->to_string(), "10.1.2.3:25");
  auto v6 = SocketAddress::parse("2001:db8::5", 587);
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->to_string(), "[2001:db8::5]:587");
  auto bracketed = SocketAddress::parse("[fe80::1]", 26);
  ASSERT_TRUE(bracketed.has_value());
  EXPECT_EQ(bracketed->port(), 26);
  auto zero = SocketAddress::parse("0.0.0.0");
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(zero->port(), 0);
}

TEST(SocketAddress, RejectsMalformedInput) {
  for (const char* bad : {"", ":", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:2x", "localhost:25", "256.1.1.1:25", "[::1", "[::1]x",
                          "[::1]:", "[127.0.0.1]:25", "1.2.3.4:25:26", "[]:25",
                          "127.0.0.1:123456", "::1::2"}) {
    EXPECT_FALSE(SocketAddress::parse(bad).has_value()) << bad;
  }
  std::string huge(200, '1');
  EXPECT_FALSE(SocketAddress::parse(huge).has_value());
}

TEST(SocketAddress, SetPortAndSockaddrRoundTrip) {
  auto a = SocketAddress::parse("127.0.0.2:0");
  ASSERT_TRUE(a.has_value());
  a->set_port(40000);
  EXPECT_EQ(a->port(), 40000);
  auto b = SocketAddress::from_sockaddr(a->sa(), a->len());
  EXPECT_EQ(b.to_string(), "127.0.0.2:40000");
  EXPECT_TRUE(*a == b);

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(9);
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:1.2.3.4", &sin6.sin6_addr), 1);
  auto c = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
  EXPECT_EQ(c.to_string(), "[::ffff:1.2.3.4]:9");
}

TEST(SocketAddress, FromSockaddrRejectsShortOrUnknown) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  auto short_len = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), 4);
  EXPECT_TRUE(short_len.empty());
  sockaddr un{};
  un.sa_family = AF_UNIX;
  EXPECT_TRUE(SocketAddress::from_sockaddr(&un, sizeof un).empty());
  EXPECT_TRUE(SocketAddress::from_sockaddr(nullptr, 0).empty());
  EXPECT_TRUE(SocketAddress().empty());
  EXPECT_EQ(SocketAddress().port(), 0);
}

}  // namespace
}  // namespace salvo::net
