// SPDX-License-Identifier: Apache-2.0
// wants_dsn: the RFC 3461 NOTIFY matrix and the null-sender rule.
#include <cstdint>

#include <gtest/gtest.h>

#include <salvo/dsn/dsn.h>

namespace salvo::dsn {
namespace {

constexpr std::uint8_t kNone = 0;

TEST(WantsDsn, NullSenderNeverGetsOne) {
  for (Action a : {Action::Failed, Action::Delayed, Action::Delivered, Action::Expanded,
                   Action::Relayed}) {
    for (int bits = 0; bits < 16; ++bits) {
      EXPECT_FALSE(wants_dsn(a, static_cast<std::uint8_t>(bits), NullSender::kYes));
    }
  }
}

TEST(WantsDsn, NotifyNotGivenMeansFailureOnly) {
  EXPECT_TRUE(wants_dsn(Action::Failed, kNone, NullSender::kNo));
  EXPECT_FALSE(wants_dsn(Action::Delayed, kNone, NullSender::kNo));
  EXPECT_FALSE(wants_dsn(Action::Delivered, kNone, NullSender::kNo));
  EXPECT_FALSE(wants_dsn(Action::Relayed, kNone, NullSender::kNo));
  EXPECT_FALSE(wants_dsn(Action::Expanded, kNone, NullSender::kNo));
}

TEST(WantsDsn, NeverMeansNone) {
  for (Action a : {Action::Failed, Action::Delayed, Action::Delivered, Action::Expanded,
                   Action::Relayed}) {
    EXPECT_FALSE(wants_dsn(a, kNotifyNever, NullSender::kNo));
    // NEVER with others is refused at RCPT (501); if it is ever stored, NEVER wins.
    EXPECT_FALSE(wants_dsn(a, kNotifyNever | kNotifyFailure | kNotifySuccess | kNotifyDelay,
                           NullSender::kNo));
  }
}

struct Row {
  std::uint8_t notify;
  bool failed, delayed, delivered;
};

TEST(WantsDsn, ExplicitNotifyMatrix) {
  const Row rows[] = {
      {kNotifySuccess, false, false, true},
      {kNotifyFailure, true, false, false},
      {kNotifyDelay, false, true, false},
      {kNotifySuccess | kNotifyFailure, true, false, true},
      {kNotifyFailure | kNotifyDelay, true, true, false},
      {kNotifySuccess | kNotifyDelay, false, true, true},
      {kNotifySuccess | kNotifyFailure | kNotifyDelay, true, true, true},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(static_cast<int>(r.notify));
    EXPECT_EQ(wants_dsn(Action::Failed, r.notify, NullSender::kNo), r.failed);
    EXPECT_EQ(wants_dsn(Action::Delayed, r.notify, NullSender::kNo), r.delayed);
    EXPECT_EQ(wants_dsn(Action::Delivered, r.notify, NullSender::kNo), r.delivered);
    EXPECT_EQ(wants_dsn(Action::Relayed, r.notify, NullSender::kNo), r.delivered);
    EXPECT_EQ(wants_dsn(Action::Expanded, r.notify, NullSender::kNo), r.delivered);
  }
}

TEST(WantsDsn, ActionNames) {
  EXPECT_EQ(action_name(Action::Failed), "failed");
  EXPECT_EQ(action_name(Action::Delayed), "delayed");
  EXPECT_EQ(action_name(Action::Delivered), "delivered");
  EXPECT_EQ(action_name(Action::Expanded), "expanded");
  EXPECT_EQ(action_name(Action::Relayed), "relayed");
}

}  // namespace
}  // namespace salvo::dsn
