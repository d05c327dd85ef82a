// SPDX-License-Identifier: Apache-2.0
#include <salvo/base/byte_buffer.h>

#include <gtest/gtest.h>

#include <string>

namespace salvo {
namespace {

TEST(ByteBuffer, AppendConsumeKeepsOrder) {
  ByteBuffer b(8);
  b.append("hello ");
  b.append("world");
  EXPECT_EQ(b.view(), "hello world");
  b.consume(6);
  EXPECT_EQ(b.view(), "world");
  b.consume(5);
  EXPECT_TRUE(b.empty());
}

TEST(ByteBuffer, CompactsBeforeGrowing) {
  ByteBuffer b(16);
  b.append("0123456789abcd");
  b.consume(12);
  auto w = b.prepare(10);
  EXPECT_GE(w.size(), 10u);
  EXPECT_EQ(b.capacity(), 16u);  // compacted in place, not grown
  EXPECT_EQ(b.view(), "cd");
}

TEST(ByteBuffer, GrowsForLargeAppends) {
  ByteBuffer b(4);
  std::string big(100000, 'x');
  b.append(big);
  EXPECT_EQ(b.size(), big.size());
  EXPECT_EQ(b.view(), big);
}

TEST(ByteBuffer, PrepareCommit) {
  ByteBuffer b(4);
  auto w = b.prepare(3);
  w[0] = 'a';
  w[1] = 'b';
  w[2] = 'c';
  b.commit(3);
  EXPECT_EQ(b.view(), "abc");
}

TEST(ByteBuffer, ShrinkIfEmpty) {
  ByteBuffer b(1 << 20);
  b.shrink_if_empty(4096);
  EXPECT_EQ(b.capacity(), 4096u);
  b.append("x");
  b.shrink_if_empty(16);
  EXPECT_EQ(b.capacity(), 4096u);  // not empty: untouched
}

}  // namespace
}  // namespace salvo
