// SPDX-License-Identifier: Apache-2.0
// The spool on real files with the io_uring engine: round trip through recovery, group
// commit, async read-back, reclamation with consistent recovery, a 100k-recipient job with
// bounded writer buffers, and pickup identities across recovery.
#include <stdio.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <salvo/base/clock.h>
#include <salvo/spool/errc.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

#include "spool/segment_file.h"
#include "spool_test_util.h"

namespace salvo::spool::test {
namespace {

using namespace std::chrono_literals;

class SpoolUring : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = make_uring();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    shard_dir_ = dir_.sub("shard-0");
  }
  void TearDown() override { close_writer(); }
  // Destroys the writer, then lets its cancelled timer's final call arrive.
  void close_writer() {
    writer_.reset();
    for (int i = 0; engine_ && i < 5; ++i) engine_->run_once(std::chrono::milliseconds(1));
  }
  // Recovers the directory and opens a writer on it (replacing any previous one).
  void reopen(WriterOptions o = {}) {
    close_writer();
    auto r = recover(shard_dir_, 0);
    ASSERT_TRUE(r) << r.error().message();
    rec_ = std::make_unique<RecoveryResult>(std::move(*r));
    o.dir = shard_dir_;
    if (o.segment_size == (64ull << 20)) o.segment_size = 1u << 20;
    writer_ = std::make_unique<SpoolWriter>(*engine_, clock_, o, rec_->index, rec_->next_segment,
                                            rec_->next_id);
  }
  void drain() {
    writer_->flush();
    ASSERT_TRUE(run_until(*engine_, [&] { return writer_->idle(); }));
  }
  MessageId add(Waiter& w, const MessageFixture& fx) {
    MessageRecord m = fx.record();
    auto id = writer_->append_message(m, &w);
    EXPECT_TRUE(id);
    return id ? *id : MessageId{};
  }
  std::vector<PendingRecipient> pending() const {
    std::vector<PendingRecipient> out;
    for_each_pending(*rec_, [&](const PendingRecipient& p) { out.push_back(p); });
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
      return std::pair(a.message, a.recipient) < std::pair(b.message, b.recipient);
    });
    return out;
  }
  std::size_t segment_files() const {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(shard_dir_)) {
      n += e.path().extension() == ".spool" ? 1 : 0;
    }
    return n;
  }

  TempDir dir_;
  std::string shard_dir_;
  SystemClock clock_;
  std::unique_ptr<io::Engine> engine_;
  std::unique_ptr<RecoveryResult> rec_;
  std::unique_ptr<SpoolWriter> writer_;
};

TEST_F(SpoolUring, MessageRoundTripThroughRecovery) {
  reopen();
  MessageFixture fx;
  fx.body = std::string(70000, '\n') + "\r\n.\r\n\0";
  fx.rcpts = {"x@a", "y@b", "z@c"};
  Waiter w;
  MessageId id = add(w, fx);
  drain();
  ASSERT_EQ(w.ok, 1);
  StateUpdate u[] = {{id, RecipientIndex(0), RecipientState::Delivered, 1, 0},
                     {id, RecipientIndex(1), RecipientState::Deferred, 2, 12345}};
  ASSERT_TRUE(writer_->append_states(u, &w));
  drain();
  ASSERT_EQ(w.ok, 2);

  reopen();
  EXPECT_EQ(rec_->report.messages, 1u);
  EXPECT_EQ(rec_->report.torn_segments, 0u);
  auto p = pending();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].recipient, RecipientIndex(1));
  EXPECT_EQ(p[0].attempts, 2u);
  EXPECT_EQ(p[0].next_attempt_unix_ns, 12345);
  EXPECT_EQ(p[1].recipient, RecipientIndex(2));
  EXPECT_GT(rec_->next_id, id);
  const auto e = rec_->index.find(id);
  ASSERT_TRUE(e.has_value());
  auto bytes = read_record(shard_dir_, e->loc);
  ASSERT_TRUE(bytes) << bytes.error().message();
  auto m = decode_message(bytes->raw.payload);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, fx.body);
  EXPECT_EQ(m->recipients[2].address, "z@c");

  // Async read-back through the engine.
  struct Reader final : ReadWaiter {
    void on_read(Result<RawRecord> r) noexcept override {
      done = true;
      if (r) body = std::string(decode_message(r->payload)->body);
    }
    bool done = false;
    std::string body;
  } rw;
  SpoolReader reader(*engine_, shard_dir_);
  reader.read(e->loc, &rw);
  ASSERT_TRUE(run_until(*engine_, [&] { return rw.done; }));
  EXPECT_EQ(rw.body, fx.body);
}

// Errors found before any IO (no such segment, a location too short) still come from the
// engine, never from inside read(): a caller may start the next read from on_read.
TEST_F(SpoolUring, ReaderErrorsArriveFromTheEngine) {
  struct Errors final : ReadWaiter {
    void on_read(Result<RawRecord> r) noexcept override {
      ++calls;
      if (!r) last = r.error();
    }
    int calls = 0;
    std::error_code last;
  } rw;
  SpoolReader reader(*engine_, shard_dir_);
  reader.read(Location{SegmentSeq(999), 0, 64}, &rw);
  reader.read(Location{SegmentSeq(1), 0, 3}, &rw);
  EXPECT_EQ(rw.calls, 0) << "answered inside read()";
  ASSERT_TRUE(run_until(*engine_, [&] { return rw.calls == 2; }));
  EXPECT_EQ(rw.last, make_error_code(errc::malformed_record));
}

TEST_F(SpoolUring, GroupCommitManyMessagesFewFsyncs) {
  reopen(WriterOptions{.batch_max_records = 256});
  MessageFixture fx;
  Waiter w;
  for (int i = 0; i < 2000; ++i) add(w, fx);
  drain();
  EXPECT_EQ(w.ok, 2000);
  EXPECT_LE(writer_->stats().commits, 10u);
  EXPECT_EQ(writer_->stats().fsync_latency_ns.count(), writer_->stats().commits);
  reopen();
  EXPECT_EQ(rec_->report.messages, 2000u);
  EXPECT_EQ(pending().size(), 4000u);
}

TEST_F(SpoolUring, ReclaimsFullyFinalSegmentsAndRecoveryAgrees) {
  reopen(WriterOptions{.segment_size = 64 * 1024, .batch_max_records = 16});
  MessageFixture fx;
  fx.body.assign(2000, 'b');
  Waiter w;
  std::vector<MessageId> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(add(w, fx));
  drain();
  ASSERT_EQ(w.ok, 200);
  std::size_t files_before = segment_files();
  ASSERT_GE(files_before, 6u);
  // Everything final except message 0 (first segment) recipient 1.
  std::vector<StateUpdate> ups;
  for (MessageId id : ids) {
    for (std::uint32_t r = 0; r < 2; ++r) {
      if (id == ids[0] && r == 1) continue;
      ups.push_back({id, RecipientIndex(r), RecipientState::Delivered, 1, 0});
    }
  }
  for (std::size_t i = 0; i < ups.size(); i += 50) {
    std::size_t n = std::min<std::size_t>(50, ups.size() - i);
    ASSERT_TRUE(writer_->append_states(std::span(ups).subspan(i, n), &w));
  }
  drain();
  EXPECT_GT(writer_->stats().segments_deleted, 0u);
  EXPECT_LT(segment_files(), files_before);
  EXPECT_TRUE(std::filesystem::exists(shard_dir_ + "/seg-0000000000000001.spool"));
  reopen(WriterOptions{.segment_size = 64 * 1024});
  auto p = pending();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].message, ids[0]);
  EXPECT_EQ(p[0].recipient, RecipientIndex(1));
  // The last recipient goes final: after it, recovery finds nothing to deliver and the
  // old segments go away.
  StateUpdate last{ids[0], RecipientIndex(1), RecipientState::Bounced, 3, 0};
  ASSERT_TRUE(writer_->append_states(std::span(&last, 1), &w));
  drain();
  EXPECT_FALSE(std::filesystem::exists(shard_dir_ + "/seg-0000000000000001.spool"));
  reopen(WriterOptions{.segment_size = 64 * 1024});
  EXPECT_TRUE(pending().empty());
  EXPECT_EQ(rec_->index.message_count(), 0u);
}

TEST_F(SpoolUring, HundredThousandRecipientJobWithBoundedBuffers) {
  reopen(WriterOptions{.segment_size = 8u << 20, .batch_max_bytes = 1u << 20});
  std::string content = "Subject: {{name}}\r\n\r\n" + std::string(5000, 'c');
  JobTemplateRecord t{.source = Source::Pickup, .job = "big", .from = "f@x", .content = content};
  Waiter w;
  auto id = writer_->append_job_template(t, &w);
  ASSERT_TRUE(id);
  constexpr std::uint32_t kTotal = 100000, kBatch = 1000;
  std::vector<std::string> addrs(kBatch), names(kBatch);
  std::uint64_t max_buffered = 0;
  for (std::uint32_t first = 0; first < kTotal; first += kBatch) {
    JobRecipientsRecord b{.job_id = *id, .first_index = first};
    for (std::uint32_t i = 0; i < kBatch; ++i) {
      addrs[i] = "user" + std::to_string(first + i) + "@example.com";
      names[i] = "Name " + std::to_string(first + i);
      b.recipients.push_back({addrs[i], 0, "", {{"name", names[i]}}});
    }
    ASSERT_TRUE(writer_->append_job_recipients(b, &w));
    max_buffered = std::max(max_buffered, writer_->buffered_bytes());
    // The producer's back-pressure: at most ~2 MiB buffered.
    ASSERT_TRUE(run_until(*engine_, [&] { return writer_->buffered_bytes() < (2u << 20); }));
  }
  PickupIdentity pid{"big.json", "000000000000004d-big.json"};
  ASSERT_TRUE(
      writer_->append_job_commit({.job_id = *id, .recipient_count = kTotal, .pickup = pid}, &w));
  drain();
  EXPECT_EQ(w.ok, 1 + kTotal / kBatch + 1);
  EXPECT_LT(max_buffered, 3u << 20);  // independent of the job's size
  reopen();
  const auto e = rec_->index.find(*id);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->state.size(), kTotal);  // one byte per recipient in RAM
  EXPECT_EQ(e->batches.size(), kTotal / kBatch);
  EXPECT_EQ(pending().size(), kTotal);
  EXPECT_EQ(rec_->pickup_claims, std::vector<std::string>{pid.claim});
  auto ref = rec_->index.recipient(*id, RecipientIndex(54321));
  ASSERT_TRUE(ref);
  auto bytes = read_record(shard_dir_, ref->record);
  ASSERT_TRUE(bytes);
  auto batch = decode_job_recipients(bytes->raw.payload);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->recipients[ref->index_in_record].address, "user54321@example.com");
  EXPECT_EQ(batch->recipients[ref->index_in_record].vars[0].second, "Name 54321");
  ASSERT_TRUE(ref->job_template);
  auto tb = read_record(shard_dir_, *ref->job_template);
  ASSERT_TRUE(tb);
  EXPECT_EQ(decode_job_template(tb->raw.payload)->content, content);
}

TEST_F(SpoolUring, JobBatchSegmentsReclaimedWhileJobLives) {
  reopen(WriterOptions{.segment_size = 64 * 1024, .batch_max_records = 4});
  JobTemplateRecord t{.job = "j", .from = "f@x", .content = "template"};
  Waiter w;
  auto id = writer_->append_job_template(t, &w);
  ASSERT_TRUE(id);
  constexpr std::uint32_t kBatches = 40, kPer = 100;
  std::vector<std::string> addrs(kPer);
  for (std::uint32_t i = 0; i < kPer; ++i) {
    addrs[i] = std::string(150, 's') + std::to_string(i) + "@x";  // ~17 KiB batches
  }
  for (std::uint32_t bi = 0; bi < kBatches; ++bi) {
    JobRecipientsRecord b{.job_id = *id, .first_index = bi * kPer};
    for (std::uint32_t i = 0; i < kPer; ++i) b.recipients.push_back({addrs[i], 0, "", {}});
    ASSERT_TRUE(writer_->append_job_recipients(b, &w));
  }
  ASSERT_TRUE(writer_->append_job_commit({.job_id = *id, .recipient_count = kBatches * kPer}, &w));
  drain();
  ASSERT_EQ(w.ok, static_cast<int>(kBatches) + 2);
  // The first half of the recipients go final.
  std::vector<StateUpdate> ups;
  for (std::uint32_t r = 0; r < kBatches * kPer / 2; ++r) {
    ups.push_back({*id, RecipientIndex(r), RecipientState::Delivered, 1, 0});
  }
  for (std::size_t i = 0; i < ups.size(); i += 200) {
    ASSERT_TRUE(writer_->append_states(std::span(ups).subspan(i, 200), &w));
  }
  drain();
  EXPECT_GT(writer_->stats().segments_deleted, 0u);
  EXPECT_TRUE(std::filesystem::exists(shard_dir_ + "/seg-0000000000000001.spool"));  // template
  reopen(WriterOptions{.segment_size = 64 * 1024});
  auto p = pending();
  ASSERT_EQ(p.size(), kBatches * kPer / 2);
  EXPECT_EQ(p.front().recipient, RecipientIndex(kBatches * kPer / 2));
  auto ref = rec_->index.recipient(*id, RecipientIndex(kBatches * kPer - 1));
  ASSERT_TRUE(ref);
  auto bytes = read_record(shard_dir_, ref->record);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(decode_job_recipients(bytes->raw.payload)->recipients[ref->index_in_record].address,
            addrs[kPer - 1]);
}

TEST_F(SpoolUring, UncommittedJobIsDroppedByRecovery) {
  reopen();
  JobTemplateRecord t{.job = "j", .from = "f@x", .content = "c"};
  Waiter w;
  auto id = writer_->append_job_template(t, &w);
  ASSERT_TRUE(id);
  JobRecipientsRecord b{.job_id = *id, .first_index = 0};
  b.recipients.push_back({"a@x", 0, "", {}});
  ASSERT_TRUE(writer_->append_job_recipients(b, &w));
  drain();  // killed before the commit record
  reopen();
  EXPECT_EQ(rec_->report.uncommitted_jobs, 1u);
  EXPECT_FALSE(rec_->index.contains(*id));
  EXPECT_TRUE(pending().empty());
}

// docs/spool-format.md §8: recovery reports the claims of the pickup files queued (a claimed
// file found at start under one of them was queued before a crash and is removed), and
// drops a message only for a repeated claim.
TEST_F(SpoolUring, PickupClaimsSurviveRecoveryAndOnlyARepeatedClaimIsDeduplicated) {
  reopen();
  MessageFixture fx;
  Waiter w;
  auto add_pickup = [&](const PickupIdentity& pid) {
    MessageRecord m = fx.record();
    m.source = Source::Pickup;
    m.pickup = pid;
    auto id = writer_->append_message(m, &w);
    EXPECT_TRUE(id);
    drain();
    return id ? *id : MessageId{};
  };
  const PickupIdentity first{"a.eml", "0000000000000001-a.eml"};
  const PickupIdentity second{"a.eml", "0000000000000005-a.eml"};
  MessageId id1 = add_pickup(first);
  // A later file by the same name: another claim, another message. (Identities of name,
  // device, inode, size and mtime could be equal here, and recovery dropped the first.)
  MessageId id2 = add_pickup(second);
  // The first claim again: a commit that reported failure reached the disk anyway, and the
  // claimed file was retried. One copy stays, the latest.
  MessageId id3 = add_pickup(first);
  reopen();
  EXPECT_FALSE(rec_->index.contains(id1));
  EXPECT_TRUE(rec_->index.contains(id2));
  EXPECT_TRUE(rec_->index.contains(id3));
  EXPECT_EQ(rec_->report.duplicate_pickups, 1u);
  EXPECT_EQ(rec_->pickup_claims, (std::vector<std::string>{first.claim, second.claim}));
}

// A spool written before claims: its identities (kind 1) cannot tell two files apart, so
// recovery keeps every message and reports no claim (nothing is removed at start for them).
TEST(RecoveryPickup, IdentitiesWrittenBeforeClaimsAreKeptAndIgnored) {
  TempDir dir;
  const std::string shard = dir.sub("shard-0");
  std::filesystem::create_directories(shard);
  // Kind-1 identities were written in version-1 segments (frames not bound to a place).
  std::string seg, payload;
  encode(SegmentHeaderRecord{.version = 1, .seq = SegmentSeq(1), .capacity = 1 << 20}, payload);
  seg += legacy_frame(RecordType::SegmentHeader, payload);
  MessageFixture fx;
  for (std::uint64_t id : {1u, 2u}) {  // one name, device, inode, size and mtime
    MessageRecord m = fx.record();
    m.id = MessageId(id);
    m.source = Source::Pickup;
    seg += legacy_frame(RecordType::Message, encode_with_stat_identity(m, "a.eml", 99));
  }
  std::ofstream(detail::segment_path(shard, SegmentSeq(1)), std::ios::binary) << seg;
  auto r = recover(shard, 0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->report.undecodable, 0u);
  EXPECT_EQ(r->index.message_count(), 2u);
  EXPECT_EQ(r->report.duplicate_pickups, 0u);
  EXPECT_TRUE(r->pickup_claims.empty());
}

// With segments made ahead (as salvod runs), every roll-over after the first takes a
// segment that is already durable; what a crash leaves (the spare, empty) is read back as
// nothing, and the records come back in order.
TEST_F(SpoolUring, SegmentsMadeAheadHoldTheMailInOrderAndTheSpareRecoversEmpty) {
  const WriterOptions o{.segment_size = 64 * 1024, .batch_max_records = 16,
                        .make_segments_ahead = true};
  reopen(o);
  MessageFixture fx;
  fx.body.assign(2000, 'b');
  Waiter w;
  std::vector<MessageId> ids;
  for (int i = 0; i < 20; ++i) {
    for (int j = 0; j < 10; ++j) ids.push_back(add(w, fx));
    drain();  // idle only once the next segment is ready too
  }
  ASSERT_EQ(w.ok, 200);
  const auto& st = writer_->stats();
  ASSERT_GE(st.segments_created, 6u);
  EXPECT_EQ(st.segments_ahead, st.segments_created - 1);  // all but the first
  EXPECT_EQ(st.spare_failures, 0u);
  const SegmentSeq spare(writer_->current_segment().value() + 1);
  EXPECT_TRUE(std::filesystem::exists(detail::segment_path(shard_dir_, spare)));
  for (const auto& e : std::filesystem::directory_iterator(shard_dir_)) {
    EXPECT_NE(e.path().extension(), ".new") << e.path();
  }
  // The writer goes without discarding its spare, as a crash would leave it.
  reopen(o);
  EXPECT_EQ(rec_->report.messages, 200u);
  EXPECT_EQ(rec_->report.torn_segments, 0u);
  EXPECT_EQ(pending().size(), 400u);
  EXPECT_GT(rec_->next_segment, spare);
  for (std::size_t i = 1; i < ids.size(); ++i) {
    const auto a = rec_->index.find(ids[i - 1]);
    const auto b = rec_->index.find(ids[i]);
    ASSERT_TRUE(a && b);
    EXPECT_LT(std::pair(a->loc.segment, a->loc.offset), std::pair(b->loc.segment, b->loc.offset));
  }
  // The next commit reclaims it like any segment without live mail.
  add(w, fx);
  drain();
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(shard_dir_, spare)));
  // A stop discards the new spare: the name goes at once.
  const SegmentSeq next(writer_->current_segment().value() + 1);
  ASSERT_TRUE(std::filesystem::exists(detail::segment_path(shard_dir_, next)));
  writer_->discard_spare();
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(shard_dir_, next)));
  EXPECT_TRUE(writer_->idle());
}

TEST_F(SpoolUring, OversizedMessageGetsItsOwnSegment) {
  reopen(WriterOptions{.segment_size = 64 * 1024});
  MessageFixture fx;
  fx.body.assign(300 * 1024, 'L');
  Waiter w;
  MessageId id = add(w, fx);
  MessageFixture small;
  add(w, small);
  drain();
  ASSERT_EQ(w.ok, 2);
  reopen(WriterOptions{.segment_size = 64 * 1024});
  const auto e = rec_->index.find(id);
  ASSERT_TRUE(e.has_value());
  auto bytes = read_record(shard_dir_, e->loc);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(decode_message(bytes->raw.payload)->body.size(), 300u * 1024);
  EXPECT_EQ(rec_->index.message_count(), 2u);
}

std::pair<int, std::string> run_tool(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return {-1, out};
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof(buf), f)) out.append(buf, n);
  int st = ::pclose(f);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST_F(SpoolUring, SpoolDumpPrintsQueue) {
  std::string tool = std::string(SALVO_BINARY_DIR) + "/spool-dump";
  if (!std::filesystem::exists(tool)) GTEST_SKIP() << "spool-dump not built";
  reopen();
  MessageFixture fx;
  fx.rcpts = {"x@a", "y@b"};
  fx.from = "evil\r\nX-Injected: 1";
  Waiter w;
  MessageId id = add(w, fx);
  drain();
  StateUpdate u{id, RecipientIndex(0), RecipientState::Delivered, 1, 0};
  ASSERT_TRUE(writer_->append_states(std::span(&u, 1), &w));
  drain();
  close_writer();
  auto [rc, text] = run_tool(tool + " " + dir_.path());
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("to: <x@a> delivered"), std::string::npos) << text;
  EXPECT_NE(text.find("to: <y@b> pending"), std::string::npos) << text;
  EXPECT_NE(text.find("evil\\x0d\\x0aX-Injected"), std::string::npos) << text;
  auto [jrc, json] = run_tool(tool + " " + shard_dir_ + " --json");
  EXPECT_EQ(jrc, 0);
  EXPECT_NE(json.find("\"state\": \"pending\""), std::string::npos) << json;
  auto [brc, bad] = run_tool(tool + " " + dir_.sub("nope"));
  EXPECT_EQ(brc, 2);
  EXPECT_EQ(std::count(bad.begin(), bad.end(), '\n'), 1) << bad;
  EXPECT_EQ(run_tool(tool).first, 2);
  EXPECT_EQ(run_tool(tool + " " + dir_.path() + " --bogus").first, 2);
}

}  // namespace
}  // namespace salvo::spool::test
