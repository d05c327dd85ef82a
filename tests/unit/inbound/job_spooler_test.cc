// SPDX-License-Identifier: Apache-2.0
// JobSpooler on real spool files with the io_uring engine: a job in several batches is
// committed, then handed to delivery once (delivery reads its batches itself); an abandoned
// job never commits and never reaches delivery.
#include <salvo/inbound/job_spooler.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <salvo/base/clock.h>
#include <salvo/spool/dispatch.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_index.h>
#include <salvo/spool/spool_reader.h>

#include "unit/spool/spool_test_util.h"

namespace salvo::inbound {
namespace {

using spool::test::run_until;

struct RecordingDispatch final : spool::Dispatch {
  void queued(spool::MessageId id, std::int64_t, std::uint32_t first,
              std::span<const std::string_view> addresses) noexcept override {
    last_id = id;
    firsts.push_back(first);
    for (auto a : addresses) rcpts.emplace_back(a);
  }
  void job_queued(spool::MessageId id, std::int64_t received) noexcept override {
    jobs.emplace_back(id, received);
  }
  std::vector<std::pair<spool::MessageId, std::int64_t>> jobs;
  spool::MessageId last_id{};
  std::vector<std::uint32_t> firsts;
  std::vector<std::string> rcpts;
};

struct RecordingOwner final : JobSpooler::Owner {
  void on_job_progress() noexcept override { ++progress; }
  void on_job_committed(Status st) noexcept override {
    ++committed;
    ok = st.has_value();
  }
  int progress = 0;
  int committed = 0;
  bool ok = false;
};

class JobSpoolerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = spool::test::make_uring();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    dir_ = tmp_.sub("shard-0");
    spool_ = spool::test::open_spool(*engine_, clock_, dir_);
    ASSERT_TRUE(spool_.rec);
  }
  void TearDown() override {
    spooler_.reset();
    spool_.reader.reset();
    spool_.writer.reset();
    for (int i = 0; engine_ && i < 5; ++i) engine_->run_once(std::chrono::milliseconds(1));
  }
  void make(std::uint32_t batch) {
    JobSpooler::Services svc{clock_,         *spool_.writer, spool_.rec->index,
                             *spool_.reader, nullptr,        &dispatch_};
    JobSpooler::Origin origin{spool::Source::Http, "http", "mx.test", batch};
    spooler_ = std::make_unique<JobSpooler>(svc, origin, owner_, "http test");
  }
  JobHeader header() const {
    JobHeader h;
    h.from = "s@esp.example";
    h.content = "Subject: hi {{name}}\r\n\r\nhello\r\n";
    h.job = "j1";
    return h;
  }
  // Feeds n recipients, waiting whenever the spooler wants no more (back-pressure).
  void feed(std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!spooler_->wants_more()) {
        spool_.writer->flush();
        ASSERT_TRUE(run_until(*engine_, [&] { return spooler_->wants_more(); }));
      }
      JobRecipientData r;
      r.email = fmt::format("r{}@example.com", i);
      r.vars.emplace_back("name", fmt::format("n{}", i));
      spooler_->add(std::move(r));
    }
  }

  spool::test::TempDir tmp_;
  std::string dir_;
  SystemClock clock_;
  std::unique_ptr<io::Engine> engine_;
  spool::test::OpenSpool spool_;
  RecordingDispatch dispatch_;
  RecordingOwner owner_;
  std::unique_ptr<JobSpooler> spooler_;
};

TEST_F(JobSpoolerTest, CommittedJobIsHandedToDeliveryOnceWithItsBatchesIndexed) {
  make(1000);
  JobHeader h = header();
  ASSERT_TRUE(spooler_->begin(h));
  EXPECT_TRUE(h.content.empty());  // stored: released
  feed(2500);
  ASSERT_TRUE(spooler_->finish(nullptr));
  EXPECT_FALSE(spooler_->idle());
  spool_.writer->flush();
  ASSERT_TRUE(run_until(*engine_, [&] { return owner_.committed == 1 && spooler_->idle(); }));
  EXPECT_TRUE(owner_.ok);
  EXPECT_EQ(spooler_->recipients(), 2500u);
  // Not one recipient expanded: delivery gets the job and reads the batches itself.
  EXPECT_TRUE(dispatch_.rcpts.empty());
  ASSERT_EQ(dispatch_.jobs.size(), 1u);
  EXPECT_EQ(dispatch_.jobs[0].first, spooler_->id());
  EXPECT_EQ(dispatch_.jobs[0].second, spooler_->received_unix_ns());
  const auto e = spool_.rec->index.find(spooler_->id());
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->committed);
  std::vector<std::uint32_t> firsts;
  for (const auto& b : e->batches) firsts.push_back(b.first);
  EXPECT_EQ(firsts, (std::vector<std::uint32_t>{0, 1000, 2000}));
  auto last = spool::read_record(dir_, e->batches.back().loc);
  ASSERT_TRUE(last);
  auto lb = spool::decode_job_recipients(last->raw.payload);
  ASSERT_TRUE(lb);
  EXPECT_EQ(lb->recipients.back().address, "r2499@example.com");
  // The template says where the job came from.
  auto bytes = spool::read_record(dir_, e->loc);
  ASSERT_TRUE(bytes);
  auto t = spool::decode_job_template(bytes->raw.payload);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->source, spool::Source::Http);
  EXPECT_EQ(t->from, "s@esp.example");
  EXPECT_TRUE(t->content.starts_with("Received: by mx.test (salvo http) id ")) << t->content;
  EXPECT_TRUE(t->content.ends_with("Subject: hi {{name}}\r\n\r\nhello\r\n"));
}

TEST_F(JobSpoolerTest, AbandonedJobNeverCommitsNorDispatches) {
  make(10);
  JobHeader h = header();
  ASSERT_TRUE(spooler_->begin(h));
  feed(25);
  spooler_->abandon();
  spool_.writer->flush();
  ASSERT_TRUE(run_until(*engine_, [&] { return spooler_->idle(); }));
  EXPECT_EQ(owner_.committed, 0);
  EXPECT_TRUE(dispatch_.rcpts.empty());
  EXPECT_TRUE(dispatch_.jobs.empty());
}

}  // namespace
}  // namespace salvo::inbound
