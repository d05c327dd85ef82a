// SPDX-License-Identifier: Apache-2.0
// The FakeEngine used by other modules' unit tests: defaults, scripted errors, timers on
// a TestClock, multishot delivery with a fake buffer ring, send_zc notification, cancel.
#include "support/fake_engine.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace salvo::test {
namespace {

using namespace std::chrono_literals;
using io::test::Recorder;

TEST(FakeEngine, AutoSendAndScriptedError) {
  TestClock clock;
  FakeEngine e(clock);
  Recorder a, b;
  e.send(5, std::string_view("HELO x\r\n"), &a);
  e.script(OpKind::Send, -ECONNRESET);
  e.send(5, std::string_view("QUIT\r\n"), &b);
  EXPECT_TRUE(a.calls.empty());  // never from inside the submitting call
  EXPECT_EQ(e.run_once(0ms), 2);
  EXPECT_EQ(a.calls.at(0).res, 8);
  EXPECT_EQ(b.calls.at(0).res, -ECONNRESET);
  EXPECT_EQ(e.sent(5), "HELO x\r\n");
}

TEST(FakeEngine, TimersFollowTheTestClock) {
  TestClock clock;
  FakeEngine e(clock);
  Recorder t1, t2;
  e.timeout(2s, &t1);
  e.timeout(1s, &t2);
  e.run_once(0ms);
  EXPECT_TRUE(t1.calls.empty());
  clock.advance(1500ms);
  e.run_once(0ms);
  ASSERT_EQ(t2.calls.size(), 1u);
  EXPECT_EQ(t2.calls[0].res, -ETIME);
  e.cancel(&t1);
  e.run_once(0ms);
  EXPECT_EQ(t1.calls.at(0).res, -ECANCELED);
}

TEST(FakeEngine, MultishotRecvWithBufferRing) {
  TestClock clock;
  FakeEngine e(clock);
  auto ring = e.create_buffer_ring(2, 4);
  ASSERT_TRUE(ring);
  Recorder rx;
  e.recv_multishot(7, **ring, &rx);
  EXPECT_EQ(e.deliver(7, "abcdef"), 4u);
  EXPECT_EQ(e.deliver(7, "ef"), 2u);
  EXPECT_EQ(e.deliver(7, "gh"), 0u);  // ring empty: -ENOBUFS ends the multishot
  e.run_once(0ms);
  ASSERT_EQ(rx.calls.size(), 3u);
  EXPECT_EQ(rx.calls[0].res, 4);
  EXPECT_NE(rx.calls[0].flags & io::kMore, 0u);
  auto b = (*ring)->buffer(io::buffer_id(rx.calls[0].flags));
  EXPECT_EQ(std::string(b.data(), 4), "abcd");
  EXPECT_EQ(rx.calls[2].res, -ENOBUFS);
  EXPECT_EQ(e.pending_count(OpKind::RecvMultishot), 0u);
}

TEST(FakeEngine, SendZcNotifiesAfterResult) {
  TestClock clock;
  FakeEngine e(clock);
  Recorder tx;
  e.send_zc(3, std::string_view("data"), &tx);
  e.run_once(0ms);
  ASSERT_EQ(tx.calls.size(), 2u);
  EXPECT_EQ(tx.calls[0].res, 4);
  EXPECT_NE(tx.calls[0].flags & io::kMore, 0u);
  EXPECT_NE(tx.calls[1].flags & io::kNotification, 0u);
}

TEST(FakeEngine, ManualModeAndAccept) {
  TestClock clock;
  FakeEngine e(clock, FakeMode::Manual);
  Recorder acc, conn;
  e.accept_multishot(10, &acc);
  e.connect(11, reinterpret_cast<const sockaddr*>(&clock), 0, &conn);
  EXPECT_TRUE(e.deliver_accept(10, 42));
  EXPECT_TRUE(e.complete_next(OpKind::Connect, -ETIMEDOUT));
  e.run_once(0ms);
  EXPECT_EQ(acc.calls.at(0).res, 42);
  EXPECT_EQ(conn.calls.at(0).res, -ETIMEDOUT);
  EXPECT_EQ(e.pending_count(OpKind::AcceptMultishot), 1u);
}

}  // namespace
}  // namespace salvo::test
