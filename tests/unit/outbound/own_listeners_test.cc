// SPDX-License-Identifier: Apache-2.0
// OwnListeners: which next-hop addresses reach this node's own listeners — specific and
// wildcard listeners, IPv4 and IPv6, IPv4-mapped and unspecified targets, other ports.
#include <salvo/outbound/own_listeners.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace salvo::outbound {
namespace {

OwnListeners own(std::vector<std::string_view> listeners,
                 std::vector<std::string_view> interfaces) {
  std::vector<net::SocketAddress> l;
  for (auto a : listeners) l.push_back(*net::SocketAddress::parse(a));
  std::vector<config::IpAddress> i;
  for (auto a : interfaces) i.push_back(*config::IpAddress::parse(a));
  return OwnListeners(l, std::move(i));
}

bool reached(const OwnListeners& o, std::string_view target) {
  return o.reached_by(*net::SocketAddress::parse(target));
}

TEST(OwnListeners, ASpecificListenerIsReachedAtItsAddressAndPortOnly) {
  const OwnListeners o = own({"127.0.0.1:2525"}, {"10.1.2.3"});
  EXPECT_TRUE(reached(o, "127.0.0.1:2525"));
  EXPECT_FALSE(reached(o, "127.0.0.1:25")) << "another port: another server";
  EXPECT_FALSE(reached(o, "127.0.0.2:2525")) << "nothing of ours listens on that address";
  EXPECT_FALSE(reached(o, "10.1.2.3:2525")) << "the listener is not a wildcard";
  EXPECT_FALSE(reached(o, "[::1]:2525"));
  EXPECT_TRUE(reached(o, "[::ffff:127.0.0.1]:2525")) << "IPv4-mapped is the IPv4 address";
  EXPECT_TRUE(reached(o, "0.0.0.0:2525")) << "Linux connects 0.0.0.0 to 127.0.0.1";
}

TEST(OwnListeners, AnIpv4WildcardCoversLoopbackAndTheInterfacesOnItsPortOnly) {
  const OwnListeners o = own({"0.0.0.0:25"}, {"192.0.2.7", "2001:db8::7"});
  EXPECT_TRUE(reached(o, "127.0.0.1:25"));
  EXPECT_TRUE(reached(o, "127.8.9.10:25")) << "all of 127.0.0.0/8 is this host";
  EXPECT_TRUE(reached(o, "192.0.2.7:25"));
  EXPECT_TRUE(reached(o, "[::ffff:192.0.2.7]:25"));
  EXPECT_TRUE(reached(o, "0.0.0.0:25"));
  EXPECT_FALSE(reached(o, "192.0.2.8:25")) << "another host";
  EXPECT_FALSE(reached(o, "192.0.2.7:2525")) << "another port";
  EXPECT_FALSE(reached(o, "[::1]:25")) << "0.0.0.0 takes IPv4 connections only";
  EXPECT_FALSE(reached(o, "[2001:db8::7]:25"));
}

TEST(OwnListeners, AnIpv6WildcardCoversBothFamilies) {
  const OwnListeners o = own({"[::]:587"}, {"192.0.2.7", "2001:db8::7"});
  EXPECT_TRUE(reached(o, "[::1]:587"));
  EXPECT_TRUE(reached(o, "[2001:db8::7]:587"));
  EXPECT_TRUE(reached(o, "[::]:587")) << "Linux connects :: to ::1";
  EXPECT_TRUE(reached(o, "192.0.2.7:587")) << "a dual-stack socket takes IPv4 too";
  EXPECT_TRUE(reached(o, "127.0.0.1:587"));
  EXPECT_FALSE(reached(o, "[2001:db8::8]:587"));
  EXPECT_FALSE(reached(o, "[::1]:25"));
  EXPECT_FALSE(reached(o, "192.0.2.7:25"));
}

TEST(OwnListeners, ASpecificIpv6Listener) {
  const OwnListeners o = own({"[2001:db8::7]:25", "127.0.0.1:0"}, {});
  EXPECT_TRUE(reached(o, "[2001:db8::7]:25"));
  EXPECT_TRUE(reached(o, "[2001:DB8:0:0::7]:25")) << "the address, however it is written";
  EXPECT_FALSE(reached(o, "[2001:db8::7]:26"));
  EXPECT_FALSE(reached(o, "[::1]:25"));
  EXPECT_FALSE(reached(o, "[2001:db8::8]:25"));
}

TEST(OwnListeners, NoListenersReachNothing) {
  const OwnListeners none;
  EXPECT_FALSE(reached(none, "127.0.0.1:25"));
  EXPECT_FALSE(reached(none, "[::1]:25"));
  EXPECT_FALSE(reached(none, "0.0.0.0:25"));
}

TEST(OwnListeners, InterfaceAddressesIncludeLoopback) {
  auto a = OwnListeners::interface_addresses();
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_NE(std::find(a->begin(), a->end(), *config::IpAddress::parse("127.0.0.1")), a->end());
}

}  // namespace
}  // namespace salvo::outbound
