// SPDX-License-Identifier: Apache-2.0
// Process-crash trials (docs/reliability.md E1/E2 at unit scale): a child process appends messages
// from 32 concurrent "transactions" and reports each id over a pipe only when its commit
// succeeded; the parent kills it with SIGKILL at a random moment, recovers, and checks that
// every acknowledged message is there and every recovered record verifies. (kill -9 keeps
// the page cache: power loss needs a device that drops unsynced writes, not tested here.)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>

#include <gtest/gtest.h>

#include <salvo/base/clock.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

#include "spool_test_util.h"

namespace salvo::spool::test {
namespace {

class AckingClient final : public CommitWaiter {
 public:
  void on_committed(Status st) noexcept override {
    if (st) {
      std::uint64_t v = id.value();
      if (::write(fd, &v, sizeof(v)) != sizeof(v)) ::_exit(3);
    }
    send();
  }
  void send() {
    MessageRecord m = fx->record();
    auto r = writer->append_message(m, this);
    if (!r) ::_exit(4);
    id = *r;
  }
  SpoolWriter* writer = nullptr;
  const MessageFixture* fx = nullptr;
  MessageId id{};
  int fd = -1;
};

[[noreturn]] void child_main(const std::string& dir, int fd) {
  auto engine = make_uring();
  auto r = recover(dir, 0);
  if (!engine || !r) ::_exit(2);
  SystemClock clock;
  SpoolWriter w(*engine, clock,
                WriterOptions{.dir = dir, .segment_size = 256 * 1024, .batch_max_records = 8},
                r->index, r->next_segment, r->next_id);
  MessageFixture fx;
  fx.body.assign(3000, 'm');
  std::vector<AckingClient> clients(32);
  for (auto& c : clients) {
    c.writer = &w;
    c.fx = &fx;
    c.fd = fd;
    c.send();
  }
  for (;;) engine->run_once(std::chrono::milliseconds(1));
}

TEST(SpoolCrash, KilledWriterLosesNoAcknowledgedMessage) {
  if (!make_uring()) GTEST_SKIP() << "io_uring unavailable";
  TempDir tmp;
  std::string dir = tmp.sub("shard-0");
  std::mt19937 rng(4242);
  std::set<std::uint64_t> acked;
  for (int trial = 0; trial < 12; ++trial) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(p[0]);
      child_main(dir, p[1]);
    }
    ::close(p[1]);
    ::usleep(static_cast<useconds_t>(5000 + rng() % 60000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early: " << WEXITSTATUS(status);
    std::uint64_t v;
    while (::read(p[0], &v, sizeof(v)) == sizeof(v)) acked.insert(v);
    ::close(p[0]);
    auto r = recover(dir, 0);
    ASSERT_TRUE(r);
    for (std::uint64_t id : acked) {
      const auto e = r->index.find(MessageId(id));
      ASSERT_TRUE(e.has_value()) << "trial " << trial << ": acknowledged message " << id << " lost";
      auto b = read_record(dir, e->loc);
      ASSERT_TRUE(b);
      ASSERT_TRUE(decode_message(b->raw.payload));
    }
  }
  EXPECT_GT(acked.size(), 100u);
}

}  // namespace
}  // namespace salvo::spool::test
