// SPDX-License-Identifier: Apache-2.0
// IpAddress / Cidr: parsing, IPv4-mapped addresses, and contains() at the prefix edges.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <salvo/config/cidr.h>

namespace salvo::config {
namespace {

Cidr cidr(std::string_view text) {
  auto c = Cidr::parse(text);
  EXPECT_TRUE(c.has_value()) << text;
  return c.value_or(Cidr{});
}

TEST(IpAddress, Parse) {
  EXPECT_EQ(IpAddress::parse("192.0.2.1")->to_string(), "192.0.2.1");
  EXPECT_EQ(IpAddress::parse("2001:DB8::1")->to_string(), "2001:db8::1");
  EXPECT_EQ(IpAddress::parse("::1")->family(), IpAddress::Family::V6);
  // IPv4-mapped IPv6 is stored as IPv4.
  auto mapped = IpAddress::parse("::ffff:10.1.2.3");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->family(), IpAddress::Family::V4);
  EXPECT_EQ(*mapped, *IpAddress::parse("10.1.2.3"));
  for (auto bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4x", "example.com", "[::1]",
                   "::1%lo", "1.2.3.4 ", "::g"}) {
    EXPECT_FALSE(IpAddress::parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(IpAddress::v4(0x7f000001), *IpAddress::parse("127.0.0.1"));
}

TEST(IpAddress, FromSockaddr) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "198.51.100.7", &in.sin_addr);
  EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in))->to_string(),
            "198.51.100.7");
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:198.51.100.7", &in6.sin6_addr);
  auto a = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), IpAddress::Family::V4);
  EXPECT_TRUE(cidr("198.51.100.0/24").contains(*a));
  inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
  EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6))->to_string(),
            "2001:db8::5");
  sockaddr un{};
  un.sa_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::from_sockaddr(&un));
  EXPECT_FALSE(IpAddress::from_sockaddr(nullptr));
}

TEST(Cidr, ParseForms) {
  EXPECT_EQ(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
  EXPECT_EQ(cidr("192.0.2.1").prefix_length(), 32);
  EXPECT_EQ(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
  EXPECT_EQ(cidr("::1").prefix_length(), 128);
  EXPECT_EQ(cidr("0.0.0.0/0").prefix_length(), 0);
  EXPECT_EQ(cidr("::/0").prefix_length(), 0);
  // An IPv4-mapped network becomes the IPv4 network.
  EXPECT_EQ(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
}

TEST(Cidr, ParseErrors) {
  std::string why;
  EXPECT_FALSE(Cidr::parse("10.0.0.1/8", &why));
  EXPECT_EQ(why, "host bits set after the prefix length");
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33", &why));
  EXPECT_EQ(why, "prefix length must be 0-32");
  EXPECT_FALSE(Cidr::parse("::/129", &why));
  EXPECT_EQ(why, "prefix length must be 0-128");
  EXPECT_FALSE(Cidr::parse("example.com/8", &why));
  EXPECT_EQ(why, "not an IPv4 or IPv6 address");
  EXPECT_FALSE(Cidr::parse("::ffff:0.0.0.0/95", &why));
  for (auto bad : {"", "/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/08 ",
                   "10.0.0.0//8", "2001:db8::1/64", "10.0.0.0/ 8"}) {
    EXPECT_FALSE(Cidr::parse(bad).has_value()) << bad;
  }
}

TEST(Cidr, ContainsV4Edges) {
  auto net = cidr("192.168.4.0/22");
  EXPECT_FALSE(net.contains("192.168.3.255"));
  EXPECT_TRUE(net.contains("192.168.4.0"));
  EXPECT_TRUE(net.contains("192.168.7.255"));
  EXPECT_FALSE(net.contains("192.168.8.0"));
  EXPECT_TRUE(net.contains("::ffff:192.168.5.1"));  // dual-stack listener's peer
  EXPECT_FALSE(net.contains("::192.168.5.1"));      // IPv4-compatible is not mapped
  EXPECT_FALSE(net.contains("not an address"));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains("255.255.255.255"));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains("::1"));
  EXPECT_TRUE(cidr("10.0.0.7/32").contains("10.0.0.7"));
  EXPECT_FALSE(cidr("10.0.0.7/32").contains("10.0.0.6"));
  EXPECT_TRUE(cidr("128.0.0.0/1").contains("200.1.1.1"));
  EXPECT_FALSE(cidr("128.0.0.0/1").contains("127.255.255.255"));
}

TEST(Cidr, ContainsV6Edges) {
  auto net = cidr("2001:db8:abcd:12::/63");
  EXPECT_TRUE(net.contains("2001:db8:abcd:12::"));
  EXPECT_TRUE(net.contains("2001:db8:abcd:13:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(net.contains("2001:db8:abcd:14::"));
  EXPECT_FALSE(net.contains("2001:db8:abcd:11:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(net.contains("10.0.0.1"));
  EXPECT_TRUE(cidr("::/0").contains("2001:db8::1"));
  EXPECT_FALSE(cidr("::/0").contains("10.0.0.1"));
  EXPECT_TRUE(cidr("::1/128").contains("::1"));
  EXPECT_FALSE(cidr("::1/128").contains("::2"));
  auto odd = cidr("fe80::/10");
  EXPECT_TRUE(odd.contains("febf:ffff::1"));
  EXPECT_FALSE(odd.contains("fec0::1"));
}

}  // namespace
}  // namespace salvo::config
