// SPDX-License-Identifier: Apache-2.0
// A destination whose queue does not fit its RAM share ([delivery] queue_in_memory) or is
// deferred past queue_horizon, on the fake env with a real SpillStore in a temporary
// directory: the operator's verbs (bounce, bounce --id, flush) and the counts see the
// recipients on disk, and everything queued reaches the origin exactly once.
#include <map>

#include "unit/outbound/destination_fixture.h"
#include "support/process.h"

namespace salvo::outbound {
namespace {

class DestinationSpillTest : public DestinationTest {
 protected:
  DestinationSpillTest() { spill_dir_ = tmp_.file("spill"); }
  // Connections come up and every transaction is answered `reply`, tick by tick, until
  // nothing is ready (in RAM or on disk) or in flight (bounded).
  void deliver_all(const smtp::Reply& reply) {
    Destination& d = dest("a.test");
    for (int i = 0; i < 2000 && (d.backlog().queued_ready() != 0 || d.slots() != 0); ++i) {
      for (ScriptedChannel* c : open_channels()) {
        if (!c->is_ready) c->up();
        c->answer_all(reply);
      }
      tick_for(10ms);
    }
  }
  // The final or deferred states reported per message.
  std::map<std::uint64_t, std::vector<spool::RecipientState>> all_states() const {
    std::map<std::uint64_t, std::vector<spool::RecipientState>> out;
    for (const auto& [origin, o] : env_.outcomes) {
      for (const auto& r : o.recipients) out[o.message].push_back(r.state);
    }
    return out;
  }
  const SpillStore& store() const { return *side_->spill_store(); }

  test::TempDir tmp_;
};

TEST_F(DestinationSpillTest, AHeldDestinationKeepsItsShareInRamAndCountsTheRest) {
  start("[delivery]\nqueue_in_memory = 8\n[[shaping]]\ndomain = \"a.test\"\n"
        "max_connections = 0\n");
  for (int i = 0; i < 50; ++i) message("a.test");
  tick_for(50ms);
  EXPECT_EQ(dest("a.test").info().ready, 50u);
  EXPECT_EQ(dest("a.test").backlog().ready(), 8u);
  EXPECT_EQ(dest("a.test").backlog().messages(), 8u);
  EXPECT_EQ(store().recipients(), 42u);
  metrics::Snapshot m;
  side_->report(m);
  EXPECT_EQ(m.value("salvo_queue_spilled_recipients"), 42.0);
  EXPECT_EQ(m.value("salvo_queue_recipients", "state=\"ready\""), 50.0);
  EXPECT_GT(m.value("salvo_queue_spill_bytes"), 0.0);
}

TEST_F(DestinationSpillTest, BounceFailsWhatIsOnDiskToo) {
  start("[delivery]\nqueue_in_memory = 8\n[[shaping]]\ndomain = \"a.test\"\n"
        "max_connections = 0\n");
  for (int i = 0; i < 50; ++i) message("a.test");
  tick_for(50ms);
  EXPECT_EQ(side_->bounce("a.test"), 1u);
  tick_for(500ms);
  const auto states = all_states();
  ASSERT_EQ(states.size(), 50u);
  for (const auto& [id, s] : states) {
    EXPECT_EQ(s, std::vector{spool::RecipientState::Bounced}) << id;
  }
  EXPECT_FALSE(dest("a.test").active());
  EXPECT_EQ(store().recipients(), 0u);
}

TEST_F(DestinationSpillTest, AMessageCancelledOnDiskIsFailedNotSent) {
  start("[delivery]\nqueue_in_memory = 8\n");
  side_->pause("a.test", 0, 1);
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(message("a.test"));
  tick_for(50ms);
  const std::uint64_t victim = ids[30];
  EXPECT_EQ(side_->bounce_message(victim), 0u) << "on disk: failed when read back";
  side_->resume("a.test");
  deliver_all(kOk);
  const auto states = all_states();
  ASSERT_EQ(states.size(), 40u);
  for (const auto& [id, s] : states) {
    EXPECT_EQ(s, std::vector{id == victim ? spool::RecipientState::Bounced
                                          : spool::RecipientState::Delivered})
        << id;
  }
  EXPECT_EQ(count_events(accounting::EventType::Delivered), 39u);
}

TEST_F(DestinationSpillTest, FlushBringsDeferralsBackFromDisk) {
  start("[delivery]\nqueue_in_memory = 8\nretry_schedule = [\"1h\"]\n");
  for (int i = 0; i < 20; ++i) message("a.test");
  env_.run();
  deliver_all(kTempFail);
  EXPECT_EQ(dest("a.test").info().deferred, 20u);
  EXPECT_GE(store().recipients(), 18u) << "due in an hour: on disk";
  EXPECT_EQ(dest("a.test").backlog().messages(), 0u);
  side_->flush("a.test");
  deliver_all(kOk);
  const auto states = all_states();
  ASSERT_EQ(states.size(), 20u);
  for (const auto& [id, s] : states) {
    EXPECT_EQ(s, (std::vector{spool::RecipientState::Deferred, spool::RecipientState::Delivered}))
        << id;
  }
  EXPECT_EQ(store().recipients(), 0u);
}

}  // namespace
}  // namespace salvo::outbound
