// SPDX-License-Identifier: Apache-2.0
// Record codec: CRC32C vectors, round trips of every record type with hostile strings,
// framing checks and decoder robustness on truncated and random input.
#include <random>
#include <string>

#include <gtest/gtest.h>

#include <salvo/spool/errc.h>
#include <salvo/spool/records.h>

#include "spool_test_util.h"

namespace salvo::spool {
std::uint32_t crc32c_portable_for_test(std::string_view data) noexcept;
}

namespace salvo::spool {
namespace {

using test::legacy_frame;

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4
  std::mt19937 rng(7);
  for (int len = 0; len < 300; ++len) {
    std::string s(static_cast<std::size_t>(len), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    EXPECT_EQ(crc32c(s), crc32c_portable_for_test(s)) << len;
    // Incremental equals one-shot.
    std::size_t cut = s.size() / 3;
    EXPECT_EQ(crc32c(s.substr(cut), crc32c(s.substr(0, cut))), crc32c(s));
  }
}

TEST(Crc32c, LongInputsMatchThePortablePath) {
  // Around the three-stream block sizes (3 x 256 and 3 x 8192 bytes) and past them, at odd
  // offsets and split anywhere.
  std::mt19937 rng(11);
  std::string big(200'000, '\0');
  for (char& c : big) c = static_cast<char>(rng());
  for (std::size_t len : {767u, 768u, 769u, 1536u, 2000u, 24575u, 24576u, 24577u, 49152u,
                          100'000u, 199'000u}) {
    for (std::size_t off : {0u, 1u, 7u}) {
      std::string_view s(big.data() + off, len);
      ASSERT_EQ(crc32c(s), crc32c_portable_for_test(s)) << len << " at " << off;
      const std::size_t cut = len / 3 + off;
      ASSERT_EQ(crc32c(s.substr(cut), crc32c(s.substr(0, cut))), crc32c(s)) << len;
    }
  }
  EXPECT_EQ(crc32c(std::string(100'000, '\0')), crc32c_portable_for_test(std::string(100'000, '\0')));
}

std::string hostile(std::size_t n) {
  std::string s;
  const char pattern[] = "\r\n.\r\nMAIL FROM:<x>\0\xff";
  while (s.size() < n) s.append(pattern, sizeof(pattern) - 1);
  s.resize(n);
  return s;
}

TEST(Records, MessageRoundTripHostile) {
  std::string big = hostile(64 * 1024);
  std::string crlf =
      "evil\r\n\x01\x00"
      "E"
      "\r\n";
  MessageRecord m;
  m.id = MessageId(42);
  m.received_unix_ns = -5;
  m.source = Source::Http;
  m.flags = kFlagSmtpUtf8 | kFlag8BitMime;
  m.ret = Ret::Headers;
  m.job = crlf;
  m.reverse_path = big;
  m.envid = crlf;
  m.client_info = big;
  m.recipients.push_back({big, kNotifySuccess | kNotifyDelay, crlf});
  m.recipients.push_back({"", 0, ""});
  m.pickup = PickupIdentity{std::string("a\nb\0c", 5), std::string("00000000000000ff-a\n\0", 20)};
  m.body = big;
  std::string payload;
  encode(m, payload);
  auto d = decode_message(payload);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->id, m.id);
  EXPECT_EQ(d->received_unix_ns, -5);
  EXPECT_EQ(d->source, Source::Http);
  EXPECT_EQ(d->flags, m.flags);
  EXPECT_EQ(d->ret, Ret::Headers);
  EXPECT_EQ(d->job, crlf);
  EXPECT_EQ(d->reverse_path, big);
  EXPECT_EQ(d->client_info, big);
  ASSERT_EQ(d->recipients.size(), 2u);
  EXPECT_EQ(d->recipients[0].address, big);
  EXPECT_EQ(d->recipients[0].notify, kNotifySuccess | kNotifyDelay);
  EXPECT_EQ(d->recipients[0].orcpt, crlf);
  EXPECT_EQ(d->pickup, m.pickup);
  EXPECT_EQ(d->body, big);
  // Every strict prefix fails cleanly, as does a trailing byte.
  for (std::size_t n = 0; n < payload.size(); n += (n < 200 ? 1 : 997)) {
    EXPECT_FALSE(decode_message(std::string_view(payload).substr(0, n))) << n;
  }
  EXPECT_FALSE(decode_message(payload + "x"));
}

// The writer frames a message straight into its batch from encoded_size() and encode(): the
// size must be exact for every shape, and the head and body are stored as one string.
TEST(Records, MessageEncodedSizeIsExactAndHeadJoinsBody) {
  std::string big = hostile(3000);
  for (int shape = 0; shape < 16; ++shape) {
    MessageRecord m;
    m.id = MessageId(7 + shape);
    m.job = (shape & 1) ? std::string_view(big).substr(0, 17) : "";
    m.reverse_path = "a@b.example";
    m.envid = (shape & 2) ? "envid" : "";
    m.client_info = "helo=x";
    for (int r = 0; r < shape; ++r) {
      m.recipients.push_back({std::string_view(big).substr(0, 10 + r), 1, "o"});
    }
    if (shape & 4) m.pickup = PickupIdentity{"name.eml", (shape & 8) ? "claim" : ""};
    m.body_head = (shape & 2) ? std::string_view("Received: by x\r\n") : "";
    m.body = std::string_view(big).substr(0, 100 * shape);
    std::string payload;
    encode(m, payload);
    EXPECT_EQ(payload.size(), encoded_size(m)) << shape;
    auto d = decode_message(payload);
    ASSERT_TRUE(d) << shape;
    EXPECT_EQ(d->body_head, "");
    EXPECT_EQ(d->body, std::string(m.body_head) + std::string(m.body)) << shape;
    // Framing from the size and a writer gives the same bytes as framing the payload.
    std::string a, b;
    frame(RecordType::Message, payload, SegmentSeq(2), 64, a);
    frame(RecordType::Message, encoded_size(m), [&m](std::string& out) { encode(m, out); },
          SegmentSeq(2), 64, b);
    EXPECT_EQ(a, b) << shape;
  }
}

TEST(Records, JobRecordsRoundTrip) {
  std::string content = hostile(70000);
  JobTemplateRecord t{.job_id = MessageId(7),
                      .received_unix_ns = 9,
                      .source = Source::Pickup,
                      .flags = kFlag8BitMime,
                      .ret = Ret::Full,
                      .job = "spring\r\nsale",
                      .from = "<>",
                      .envid = "E1",
                      .content = content};
  std::string p;
  encode(t, p);
  auto dt = decode_job_template(p);
  ASSERT_TRUE(dt);
  EXPECT_EQ(dt->job_id, t.job_id);
  EXPECT_EQ(dt->content, content);
  EXPECT_EQ(dt->job, t.job);
  EXPECT_EQ(dt->ret, Ret::Full);

  JobRecipientsRecord b{.job_id = MessageId(7), .first_index = 100};
  b.recipients.push_back(
      {"x@y", kNotifyNever, "rfc822;x@y", {{"name", std::string_view("A\0B", 3)}, {"", ""}}});
  b.recipients.push_back({"z@y", 0, "", {}});
  p.clear();
  encode(b, p);
  auto db = decode_job_recipients(p);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->first_index, 100u);
  ASSERT_EQ(db->recipients.size(), 2u);
  EXPECT_EQ(db->recipients[0].vars.size(), 2u);
  EXPECT_EQ(db->recipients[0].vars[0].second, std::string_view("A\0B", 3));
  EXPECT_EQ(db->recipients[0].orcpt, "rfc822;x@y");

  JobCommitRecord c{.job_id = MessageId(7),
                    .recipient_count = 102,
                    .pickup = PickupIdentity{"job.json", "0001000000000063-job.json"}};
  p.clear();
  encode(c, p);
  auto dc = decode_job_commit(p);
  ASSERT_TRUE(dc);
  EXPECT_EQ(dc->recipient_count, 102u);
  EXPECT_EQ(dc->pickup, c.pickup);

  RecipientStateRecord s;
  s.updates.push_back({MessageId(7), RecipientIndex(3), RecipientState::Deferred, 2, 77});
  s.updates.push_back({MessageId(8), RecipientIndex(0), RecipientState::Bounced, 1, 0});
  p.clear();
  encode(s, p);
  auto ds = decode_recipient_state(p);
  ASSERT_TRUE(ds);
  EXPECT_EQ(ds->updates, s.updates);

  SegmentHeaderRecord h{.shard = 3, .seq = SegmentSeq(9), .created_unix_ns = 1, .capacity = 4096};
  p.clear();
  encode(h, p);
  auto dh = decode_segment_header(p);
  ASSERT_TRUE(dh);
  EXPECT_EQ(dh->seq, SegmentSeq(9));
  EXPECT_EQ(dh->shard, 3u);
}

// Identities as salvo wrote them before claims (kind 1: name, device, inode, size, mtime)
// still decode, for their name only: spools written then stay readable.
TEST(Records, PickupIdentityWrittenBeforeClaimsStillDecodes) {
  constexpr char kOldCommit[] =
      "\x07\0\0\0\0\0\0\0"                       // job id 7
      "\x66\0\0\0"                               // 102 recipients
      "\x01"                                     // identity kind 1
      "\x08\0\0\0job.json"                       // name
      "\x01\0\0\0\0\0\0\0\x63\0\0\0\0\0\0\0"     // device 1, inode 99
      "\x88\x13\0\0\0\0\0\0\x7b\0\0\0\0\0\0\0";  // size 5000, mtime 123
  const std::string_view old_commit(kOldCommit, sizeof kOldCommit - 1);
  auto c = decode_job_commit(old_commit);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->job_id, MessageId(7));
  EXPECT_EQ(c->recipient_count, 102u);
  EXPECT_EQ(c->pickup, (PickupIdentity{"job.json", ""}));

  // A message: the identity sits between the recipients and the body.
  test::MessageFixture fx;
  const std::string old_message = test::encode_with_stat_identity(fx.record(), "a.eml", 99);
  auto d = decode_message(old_message);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->pickup, (PickupIdentity{"a.eml", ""}));
  EXPECT_EQ(d->body, fx.body);
  EXPECT_EQ(d->recipients.size(), 2u);

  // No other kind exists.
  std::string unknown(old_commit);
  unknown[12] = 3;
  EXPECT_FALSE(decode_job_commit(unknown));
}

TEST(Records, BadEnumsAndForgedCountsRejected) {
  RecipientStateRecord s;
  s.updates.push_back({MessageId(1), RecipientIndex(0), RecipientState::Delivered, 0, 0});
  std::string p;
  encode(s, p);
  p[4 + 8 + 4] = 9;  // state byte out of range
  EXPECT_FALSE(decode_recipient_state(p));
  std::string forged = "\xff\xff\xff\x7f";  // 2^31 updates in 4 bytes
  EXPECT_FALSE(decode_recipient_state(forged));
}

TEST(Records, FramingVerifies) {
  std::string payload = "payload\r\n\0x";
  std::string framed;
  std::size_t n = frame(RecordType::Message, payload, SegmentSeq(3), 100, framed);
  EXPECT_EQ(n, payload.size() + kFrameOverhead);
  auto raw = parse_framed(framed, SegmentSeq(3), 100);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->type, RecordType::Message);
  EXPECT_EQ(raw->payload, payload);
  EXPECT_EQ(raw->offset, 100u);
  EXPECT_EQ(raw->length, n);
  EXPECT_TRUE(raw->bound);
  for (std::size_t i = 0; i < framed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = framed;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      EXPECT_FALSE(parse_framed(bad, SegmentSeq(3), 100)) << i << ":" << bit;
    }
  }
  for (std::size_t cut = 0; cut < framed.size(); ++cut) {
    EXPECT_FALSE(parse_framed(std::string_view(framed).substr(0, cut), SegmentSeq(3), 100));
  }
}

// A record verifies only at the place it was framed for: the same bytes in another segment
// or at another offset are stale, not a record. rebind() moves it.
TEST(Records, FramesAreBoundToTheirPlace) {
  std::string framed;
  frame(RecordType::RecipientState, "state", SegmentSeq(7), 4096, framed);
  EXPECT_TRUE(parse_framed(framed, SegmentSeq(7), 4096));
  EXPECT_EQ(parse_framed(framed, SegmentSeq(8), 4096).error(), errc::bad_checksum);
  EXPECT_EQ(parse_framed(framed, SegmentSeq(7), 4097).error(), errc::bad_checksum);
  rebind(framed, SegmentSeq(9), 12);
  EXPECT_TRUE(parse_framed(framed, SegmentSeq(9), 12));
  EXPECT_FALSE(parse_framed(framed, SegmentSeq(7), 4096));
  std::string again;
  frame(RecordType::RecipientState, "state", SegmentSeq(9), 12, again);
  EXPECT_EQ(framed, again);
}

// Version-1 segments (written before frames were bound) still read: flags 0, CRC over the
// frame alone, wherever it is.
TEST(Records, UnboundVersionOneFramesStillVerify) {
  std::string framed = legacy_frame(RecordType::Message, "old payload");
  for (std::uint64_t at : {0, 12, 4096}) {
    auto raw = parse_framed(framed, SegmentSeq(1), at);
    ASSERT_TRUE(raw) << at;
    EXPECT_FALSE(raw->bound);
    EXPECT_EQ(raw->payload, "old payload");
  }
  framed[5] = 2;  // an unknown flag
  EXPECT_FALSE(parse_framed(framed, SegmentSeq(1), 0));
}

TEST(Records, RandomPayloadsNeverCrashDecoders) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 96, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() : rng() % 3);
    (void)decode_message(s);
    (void)decode_job_template(s);
    (void)decode_job_recipients(s);
    (void)decode_job_commit(s);
    (void)decode_recipient_state(s);
    (void)decode_segment_header(s);
  }
}

TEST(MessageIdText, FormatsSixteenHexDigitsAndParsesThemBack) {
  EXPECT_EQ(format_id(0xabcdef), "0000000000abcdef");
  EXPECT_EQ(format_id(UINT64_MAX), "ffffffffffffffff");
  EXPECT_EQ(parse_id("0000000000abcdef"), 0xabcdefu);
  EXPECT_EQ(parse_id("ABC"), 0xabcu);
  EXPECT_EQ(parse_id(format_id(0x123456789abcdef0)), 0x123456789abcdef0u);
  EXPECT_FALSE(parse_id(""));
  EXPECT_FALSE(parse_id("0"));                  // never an id
  EXPECT_FALSE(parse_id("xyz"));
  EXPECT_FALSE(parse_id("12 "));
  EXPECT_FALSE(parse_id("10000000000000000"));  // 17 digits
}

}  // namespace
}  // namespace salvo::spool
