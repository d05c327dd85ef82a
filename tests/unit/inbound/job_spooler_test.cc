// SPDX-License-Identifier: Apache-2.0
// JobSpooler on real spool files with the io_uring engine: a job in several batches is
// committed, then handed to delivery batch by batch from the spool; an abandoned job never
// commits and never reaches delivery.
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
    auto r = spool::recover(dir_, 0);
    ASSERT_TRUE(r) << r.error().message();
    rec_ = std::make_unique<spool::RecoveryResult>(std::move(*r));
    spool::WriterOptions o;
    o.dir = dir_;
    o.segment_size = 1u << 20;
    writer_ = std::make_unique<spool::SpoolWriter>(*engine_, clock_, o, rec_->index,
                                                   rec_->next_segment, rec_->next_id);
    reader_ = std::make_unique<spool::SpoolReader>(*engine_, dir_);
  }
  void TearDown() override {
    spooler_.reset();
    reader_.reset();
    writer_.reset();
    for (int i = 0; engine_ && i < 5; ++i) engine_->run_once(std::chrono::milliseconds(1));
  }
  void make(std::uint32_t batch) {
    JobSpooler::Services svc{clock_, *writer_, rec_->index, *reader_, nullptr, &dispatch_};
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
        writer_->flush();
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
  std::unique_ptr<spool::RecoveryResult> rec_;
  std::unique_ptr<spool::SpoolWriter> writer_;
  std::unique_ptr<spool::SpoolReader> reader_;
  RecordingDispatch dispatch_;
  RecordingOwner owner_;
  std::unique_ptr<JobSpooler> spooler_;
};

TEST_F(JobSpoolerTest, CommittedJobIsDispatchedBatchByBatchFromTheSpool) {
  make(1000);
  JobHeader h = header();
  ASSERT_TRUE(spooler_->begin(h));
  EXPECT_TRUE(h.content.empty());  // stored: released
  feed(2500);
  ASSERT_TRUE(spooler_->finish(nullptr));
  EXPECT_FALSE(spooler_->idle());
  writer_->flush();
  ASSERT_TRUE(run_until(*engine_, [&] { return owner_.committed == 1 && spooler_->idle(); }));
  EXPECT_TRUE(owner_.ok);
  EXPECT_EQ(spooler_->recipients(), 2500u);
  EXPECT_EQ(dispatch_.last_id, spooler_->id());
  EXPECT_EQ(dispatch_.firsts, (std::vector<std::uint32_t>{0, 1000, 2000}));
  ASSERT_EQ(dispatch_.rcpts.size(), 2500u);
  EXPECT_EQ(dispatch_.rcpts.front(), "r0@example.com");
  EXPECT_EQ(dispatch_.rcpts.back(), "r2499@example.com");
  // The template says where the job came from.
  const auto e = rec_->index.find(spooler_->id());
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->committed);
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
  writer_->flush();
  ASSERT_TRUE(run_until(*engine_, [&] { return spooler_->idle(); }));
  EXPECT_EQ(owner_.committed, 0);
  EXPECT_TRUE(dispatch_.rcpts.empty());
}

}  // namespace
}  // namespace salvo::inbound
