// SPDX-License-Identifier: Apache-2.0
// inbound's pure parts: AuthUsers (file format, check), ClientLimiter (node-wide count),
// the Received: header and the envelope -> spool record mapping.
#include <gtest/gtest.h>

#include <salvo/inbound/auth_users.h>
#include <salvo/inbound/intake_budget.h>
#include <salvo/inbound/client_limiter.h>

#include "inbound/message_builder.h"

namespace salvo::inbound {
namespace {

TEST(AuthUsers, ParsesFileAndChecks) {
  AuthUsers u = AuthUsers::parse_file_text("# comment\n\nalice:pw:with:colons\r\nbob:\n", "f");
  EXPECT_EQ(u.size(), 2u);
  EXPECT_TRUE(u.check("alice", "pw:with:colons"));
  EXPECT_FALSE(u.check("alice", "pw:with:colon"));
  EXPECT_FALSE(u.check("alice", ""));
  EXPECT_TRUE(u.check("bob", ""));
  EXPECT_FALSE(u.check("carol", "salvo-no-such-user-placeholder-secret"));
  EXPECT_FALSE(u.check("", ""));
}

TEST(AuthUsers, BadLineNamesFileAndLine) {
  try {
    (void)AuthUsers::parse_file_text("ok:1\nnocolon\n", "/etc/users");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "auth_users_file /etc/users: line 2: expected user:password");
  }
}

TEST(ClientLimiter, CountsPerAddress) {
  ClientLimiter lim(2);
  auto a = *config::IpAddress::parse("192.0.2.1");
  auto b = *config::IpAddress::parse("2001:db8::1");
  auto mapped = *config::IpAddress::parse("::ffff:192.0.2.1");
  EXPECT_TRUE(lim.try_acquire(a));
  EXPECT_TRUE(lim.try_acquire(mapped));  // the same client as a
  EXPECT_FALSE(lim.try_acquire(a));
  EXPECT_TRUE(lim.try_acquire(b));
  EXPECT_EQ(lim.open(a), 2u);
  lim.release(a);
  EXPECT_TRUE(lim.try_acquire(a));
  lim.release(a);
  lim.release(a);
  lim.release(a);  // extra release is harmless
  EXPECT_EQ(lim.open(a), 0u);
}

TEST(ConnectionBudget, CapsAndFreesAndZeroIsNoCap) {
  ConnectionBudget b(2);
  EXPECT_TRUE(b.try_acquire());
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
  EXPECT_EQ(b.open(), 2u);
  b.release();
  EXPECT_TRUE(b.try_acquire());
  ConnectionBudget none(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(none.try_acquire());
  EXPECT_EQ(none.open(), 100u);
}

TEST(ClientLimiter, CountsIpv6ByItsSlash64) {
  ClientLimiter lim(2);
  auto one = *config::IpAddress::parse("2001:db8:0:7::1");
  auto other_host = *config::IpAddress::parse("2001:db8:0:7:ffff:1:2:3");  // same /64
  auto next_net = *config::IpAddress::parse("2001:db8:0:8::1");          // the next /64
  EXPECT_TRUE(lim.try_acquire(one));
  EXPECT_TRUE(lim.try_acquire(other_host));
  EXPECT_FALSE(lim.try_acquire(*config::IpAddress::parse("2001:db8:0:7::99")))
      << "a third address of the same /64 is over the cap";
  EXPECT_EQ(lim.open(other_host), 2u);
  EXPECT_TRUE(lim.try_acquire(next_net));
  lim.release(one);
  EXPECT_TRUE(lim.try_acquire(*config::IpAddress::parse("2001:db8:0:7::99")));
}

struct BudgetWaiter final : IntakeBudget::Waiter {
  void on_budget() noexcept override { ++woken; }
  int woken = 0;
};

TEST(IntakeBudget, PausesAtTheLimitAndWakesOldestFirstAsCommitsFreeRoom) {
  std::uint64_t committing = 0;
  IntakeBudget b(1000, [&] { return committing; });
  BudgetWaiter w1, w2;
  b.add(600);
  EXPECT_TRUE(b.may_read(&w1));
  committing = 400;  // 600 being received + 400 waiting for the fsync
  EXPECT_TRUE(b.over());
  EXPECT_FALSE(b.may_read(&w1));
  b.wait(&w1);
  b.wait(&w2);
  b.wait(&w1);  // once only
  EXPECT_EQ(b.waiting(), 2u);
  EXPECT_FALSE(b.poll());  // the commit is still in flight: nobody woken
  committing = 0;          // it landed
  EXPECT_TRUE(b.poll());   // one per loop turn, oldest first
  EXPECT_EQ(w1.woken, 1);
  EXPECT_EQ(w2.woken, 0);
  b.add(300);  // w1 read what it had buffered: 900 held
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(w2.woken, 1);
  EXPECT_EQ(b.waiting(), 0u);
  EXPECT_EQ(b.pauses(), 2u);
  EXPECT_EQ(b.peak(), 900);  // as seen at the reports: 600, then 600 + 300
}

TEST(IntakeBudget, SpentOnPartialBodiesLetsOneFinishAtATime) {
  std::uint64_t committing = 0;
  IntakeBudget b(1000, [&] { return committing; });
  BudgetWaiter w1, w2;
  b.add(1200);  // bodies still arriving, nothing to commit: only finishing one frees room
  b.wait(&w1);
  b.wait(&w2);
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(w1.woken, 1);
  EXPECT_EQ(w2.woken, 0);
  EXPECT_TRUE(b.may_read(&w1));  // let through past the cap
  EXPECT_FALSE(b.may_read(&w2));
  EXPECT_FALSE(b.poll());  // one at a time
  // w1's message went to the writer: its bytes are committing now.
  b.add(-700);
  committing = 700;
  b.cancel(&w1);
  EXPECT_FALSE(b.may_read(&w1));
  EXPECT_FALSE(b.poll());
  committing = 0;
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(w2.woken, 1);
}

TEST(IntakeBudget, ZeroIsNoCapAndCancelForgetsAWaiter) {
  IntakeBudget none(0, [] { return std::uint64_t{1} << 40; });
  none.add(std::int64_t{1} << 40);
  EXPECT_FALSE(none.over());
  std::uint64_t committing = 5000;
  IntakeBudget b(1000, [&] { return committing; });
  BudgetWaiter w;
  b.wait(&w);
  b.cancel(&w);
  committing = 0;
  EXPECT_FALSE(b.poll());
  EXPECT_EQ(w.woken, 0);
}

TEST(MessageBuilder, ReceivedHeader) {
  TraceInfo t;
  t.helo = "client.example (evil)\r\nX-Injected: 1";
  t.client_ip = "192.0.2.7";
  t.hostname = "mx.salvo.test";
  t.tls = true;
  t.authenticated = true;
  t.id = 0xabc;
  t.unix_seconds = 0;
  std::string h;
  append_received(t, h);
  EXPECT_EQ(h,
            "Received: from client.example??evil???X-Injected:?1 ([192.0.2.7])\r\n"
            "\tby mx.salvo.test (salvo) with ESMTPSA id 0000000000000abc;\r\n"
            "\tThu, 1 Jan 1970 00:00:00 +0000\r\n");
  t.tls = false;
  t.authenticated = false;
  t.esmtp = false;
  h.clear();
  append_received(t, h);
  EXPECT_NE(h.find("with SMTP id"), std::string::npos);
  EXPECT_EQ(client_info(t, "bob"), "helo=client.example??evil???X-Injected:?1 addr=192.0.2.7 "
                                   "tls=no auth=bob");
}

TEST(MessageBuilder, RecordFromEnvelope) {
  smtp::Envelope env;
  env.reverse_path = "s@example.com";
  env.envid = "ENV+2B1";
  env.ret = smtp::DsnRet::Hdrs;
  env.body_type = smtp::BodyType::EightBitMime;
  env.smtputf8 = true;
  smtp::NotifyFlags nf;
  nf.add(smtp::Notify::Success);
  nf.add(smtp::Notify::Failure);
  env.recipients.push_back({"a@example.org", nf, "rfc822;a@example.org"});
  env.recipients.push_back({"b@example.org", smtp::NotifyFlags{}, ""});
  spool::MessageRecord m;
  fill_record(env, m);
  EXPECT_EQ(m.source, spool::Source::Smtp);
  EXPECT_EQ(m.flags, spool::kFlagSmtpUtf8 | spool::kFlag8BitMime);
  EXPECT_EQ(m.ret, spool::Ret::Headers);
  EXPECT_EQ(m.reverse_path, "s@example.com");
  EXPECT_EQ(m.envid, "ENV+2B1");
  ASSERT_EQ(m.recipients.size(), 2u);
  EXPECT_EQ(m.recipients[0].notify, spool::kNotifySuccess | spool::kNotifyFailure);
  EXPECT_EQ(m.recipients[0].orcpt, "rfc822;a@example.org");
  EXPECT_EQ(m.recipients[1].notify, 0);
  EXPECT_EQ(format_id(255), "00000000000000ff");
}

}  // namespace
}  // namespace salvo::inbound
