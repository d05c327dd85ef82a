// SPDX-License-Identifier: Apache-2.0
// SigningPace: the signing stage's part of a shard's time — the whole budget while the
// loop is idle, a fixed share of the loop's busy time under load or while mail comes in,
// bounded debt.
#include <gtest/gtest.h>

#include "outbound/signing_pace.h"

namespace salvo::outbound {
namespace {

using namespace std::chrono_literals;

constexpr SigningPace::Params kParams{0.25, 500us, 30us};

struct Loop {
  SigningPace pace{kParams};
  TimePoint now{std::chrono::seconds(100)};
  Duration signing{};
  Duration other{};

  // One turn: the stage signs (each signature taking `sig`) as the pace allows, at most
  // `batch`; then the rest of the loop takes `io`. Returns the signatures made.
  int turn(Duration sig, Duration io, int batch = 8, bool intake = false) {
    pace.begin(now, intake);
    int n = 0;
    while (n < batch && pace.may_sign()) {
      now += sig;
      signing += sig;
      pace.signed_at(now);
      ++n;
    }
    pace.end(now);
    now += io;
    other += io;
    return n;
  }
};

TEST(SigningPace, AnIdleLoopSignsAWholeBudgetEveryTurn) {
  Loop l;
  // RSA-sized signatures, nothing else to do: two per turn (the second starts at 400 us,
  // inside the 500 us budget), every turn.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(l.turn(400us, 5us), 2) << "turn " << i;
  // Ed25519-sized ones: the batch bound.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(l.turn(50us, 5us), 8) << "turn " << i;
}

TEST(SigningPace, ABusyLoopKeepsItsShareOfTheCore) {
  for (Duration io : {Duration(200us), Duration(500us), Duration(1ms)}) {
    Loop l;
    int made = 0;
    for (int i = 0; i < 5000; ++i) made += l.turn(400us, io);
    const double fraction = static_cast<double>(l.signing.count()) /
                            static_cast<double>((l.signing + l.other).count());
    // share / (1 + share) = 0.2 of the time signs. (Turns longer than budget / share = 2 ms
    // earn more than the cap: signing then gets less.)
    EXPECT_NEAR(fraction, 0.2, 0.01) << "io per turn " << io.count() << " ns";
    EXPECT_GT(made, 0);
  }
}

// Intake in many short turns (a burst of small reads): each used to look idle and give
// signing a whole budget, so intake got 5 us for every 800 us signed. Now intake keeps its
// share however short its turns, and short turns without intake still look idle.
TEST(SigningPace, IntakeKeepsItsShareInShortTurns) {
  Loop l;
  int made = 0;
  for (int i = 0; i < 20000; ++i) made += l.turn(400us, 5us, 8, /*intake=*/true);
  const double fraction = static_cast<double>(l.signing.count()) /
                          static_cast<double>((l.signing + l.other).count());
  EXPECT_NEAR(fraction, 0.2, 0.01);
  EXPECT_GT(made, 0);
  // The burst ends: short turns without intake sign at the idle rate again.
  l.turn(400us, 5us);
  EXPECT_EQ(l.turn(400us, 5us), 2);
}

TEST(SigningPace, SigningGoesOnUnderLoadAndCatchesUpWhenIdle) {
  Loop l;
  int busy = 0;
  for (int i = 0; i < 100; ++i) busy += l.turn(400us, 1ms);
  // 100 turns of 1 ms IO earn 25 ms of credit: about 62 signatures of 0.4 ms.
  EXPECT_GE(busy, 55);
  EXPECT_LE(busy, 70);
  // The load stops: the next turns sign at the idle rate.
  l.turn(400us, 5us);
  EXPECT_EQ(l.turn(400us, 5us), 2);
}

TEST(SigningPace, DebtIsBoundedByOneBudget) {
  Loop l;
  l.turn(400us, 3ms);  // 3 ms of IO after it: credit for the next signature
  // A signature that looked 50 ms long (the thread was preempted during it).
  l.pace.begin(l.now);
  ASSERT_TRUE(l.pace.may_sign());
  l.now += 50ms;
  l.pace.signed_at(l.now);
  EXPECT_EQ(l.pace.credit(), -500us);
  l.pace.end(l.now);
  // 2 ms of busy loop earn it back (0.25 x 2 ms = 500 us) and 0.2 ms more starts one.
  l.now += 2ms;
  EXPECT_EQ(l.turn(400us, 200us), 0);
  EXPECT_EQ(l.turn(400us, 1ms), 1);
}

}  // namespace
}  // namespace salvo::outbound
