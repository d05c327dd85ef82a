// SPDX-License-Identifier: Apache-2.0
// DataDecoder / BdatDecoder / dot_stuff: framing at every split, smuggling variants, limits.
#include <salvo/smtp/data_codec.h>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace salvo::smtp {
namespace {

struct Decoded {
  bool done = false;
  std::size_t consumed = 0;
  std::string body;
  ContentError error = ContentError::None;
};

// Feeds `wire` in pieces cut at `cuts` (ascending offsets).
Decoded decode_split(std::string_view wire, std::initializer_list<std::size_t> cuts,
                     ContentLimits limits = {}) {
  DataDecoder d(limits);
  ByteBuffer body;
  Decoded r;
  std::size_t pos = 0;
  std::vector<std::size_t> ends(cuts);
  ends.push_back(wire.size());
  for (std::size_t end : ends) {
    while (pos < end) {
      std::size_t used = 0;
      auto st = d.decode(wire.substr(pos, end - pos), &used, &body);
      pos += used;
      r.consumed = pos;
      if (st == DataDecoder::Status::Done) {
        r.done = true;
        r.body = std::string(body.view());
        r.error = d.error();
        return r;
      }
    }
  }
  r.body = std::string(body.view());
  r.error = d.error();
  return r;
}

TEST(DataDecoder, Basic) {
  auto r = decode_split("Subject: x\r\n\r\nhello\r\n.\r\nMAIL", {});
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.body, "Subject: x\r\n\r\nhello\r\n");
  EXPECT_EQ(r.consumed, 24u);
  EXPECT_EQ(r.error, ContentError::None);
}

TEST(DataDecoder, EmptyMessage) {
  auto r = decode_split(".\r\n", {});
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.body, "");
}

TEST(DataDecoder, C6_DotUnstuffing) {
  auto r = decode_split(".\r\n", {});
  EXPECT_TRUE(r.done);
  r = decode_split("..\r\n...\r\n.x\r\na.b\r\n.\r\n", {});
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.body, ".\r\n..\r\nx\r\na.b\r\n");
}

TEST(DataDecoder, C5_EndOfDataAtEverySplit) {
  const std::string wire = "a\r\n..b\r\n.\r\n\r\n.\r\n.\r\n";  // ends after the first ".\r\n"
  const std::string expect_body = "a\r\n.b\r\n";
  for (std::size_t i = 0; i <= wire.size(); ++i) {
    for (std::size_t j = i; j <= wire.size(); ++j) {
      auto r = decode_split(wire, {i, j});
      ASSERT_TRUE(r.done) << i << "," << j;
      EXPECT_EQ(r.body, expect_body) << i << "," << j;
      EXPECT_EQ(r.consumed, 11u) << i << "," << j;
      EXPECT_EQ(r.error, ContentError::None);
    }
  }
}

TEST(DataDecoder, C5_ByteByByte) {
  const std::string wire = "x\r\n.\r\n";
  DataDecoder d;
  ByteBuffer body;
  int done = 0;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    std::size_t used = 0;
    if (d.decode(wire.substr(i, 1), &used, &body) == DataDecoder::Status::Done) ++done;
    EXPECT_EQ(used, 1u);
  }
  EXPECT_EQ(done, 1);
  EXPECT_EQ(body.view(), "x\r\n");
}

TEST(DataDecoder, C4_SmugglingVariantsNeverEnd) {
  const std::string variants[] = {"\n.\n",   "\r.\r",   "\r.\n",   "\n.\r",   "\n.\r\n",
                                  "\r\n.\n", "\r.\r\n", "\r\n.\r", std::string("\r\n\0.\r\n", 6)};
  for (const auto& v : variants) {
    std::string wire = "hello" + v + "MAIL FROM:<x@y>\r\n";
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
      auto r = decode_split(wire, {cut});
      EXPECT_FALSE(r.done) << "variant ends data at cut " << cut;
    }
    auto r = decode_split(wire + ".\r\n", {});
    ASSERT_TRUE(r.done);
    EXPECT_NE(r.error, ContentError::None);
  }
}

TEST(DataDecoder, BareLfAndCrFlagged) {
  EXPECT_EQ(decode_split("a\nb\r\n.\r\n", {}).error, ContentError::BareLf);
  EXPECT_EQ(decode_split("a\rb\r\n.\r\n", {}).error, ContentError::BareCr);
  EXPECT_EQ(decode_split("a\r\r\n.\r\n", {}).error, ContentError::BareCr);
  EXPECT_EQ(decode_split(".\rx\r\n.\r\n", {}).error, ContentError::BareCr);
  EXPECT_EQ(decode_split(std::string_view("a\0\r\n.\r\n", 6), {}).error, ContentError::Nul);
}

TEST(DataDecoder, C7_LineLimit) {
  EXPECT_EQ(decode_split(std::string(998, 'x') + "\r\n.\r\n", {}).error, ContentError::None);
  EXPECT_EQ(decode_split(std::string(999, 'x') + "\r\n.\r\n", {}).error,
            ContentError::LineTooLong);
  EXPECT_EQ(decode_split("." + std::string(998, 'x') + "\r\n.\r\n", {}).error,
            ContentError::LineTooLong);  // the limit is on the wire line
  for (std::size_t cut = 990; cut < 1003; ++cut)
    EXPECT_EQ(decode_split(std::string(998, 'x') + "\r\n.\r\n", {cut}).error, ContentError::None);
}

TEST(DataDecoder, SizeLimitBoundsBody) {
  ContentLimits l{10, kMaxTextLine};
  auto r = decode_split("0123456789\r\n.\r\n", {}, l);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.error, ContentError::TooBig);
  EXPECT_EQ(r.body.size(), 10u);
  r = decode_split("01234567\r\n.\r\n", {}, l);
  EXPECT_EQ(r.error, ContentError::None);
}

TEST(BdatDecoder, ExactCountsNoDotProcessing) {
  BdatDecoder b;
  ByteBuffer body;
  std::string chunk = "a\r\n.\r\n..\r\nMAIL";
  EXPECT_EQ(b.take(chunk, 10, &body), 10u);
  EXPECT_EQ(body.view(), "a\r\n.\r\n..\r\n");
  b.finish();
  EXPECT_EQ(b.error(), ContentError::None);
}

TEST(BdatDecoder, CrLfAcrossChunks) {
  BdatDecoder b;
  b.take("abc\r", 4, nullptr);
  b.take("\ndef\r\n", 6, nullptr);
  b.finish();
  EXPECT_EQ(b.error(), ContentError::None);
  BdatDecoder c;
  c.take("abc\r", 4, nullptr);
  c.finish();
  EXPECT_EQ(c.error(), ContentError::BareCr);
  BdatDecoder d;
  d.take("a\nb", 3, nullptr);
  EXPECT_EQ(d.error(), ContentError::BareLf);
}

TEST(DotStuff, RoundTrip) {
  const std::string bodies[] = {"", ".\r\n", "..\r\n", "a\r\n.\r\nb\r\n", ".x\r\n..\r\n...\r\n",
                                "no final crlf", "line\r\n.", std::string(5000, '.') + "\r\n"};
  for (const auto& b : bodies) {
    ByteBuffer out;
    std::size_t n = dot_stuff(b, out);
    EXPECT_EQ(n, out.size());
    EXPECT_EQ(dot_stuffed_size(b), out.size()) << b;
    auto r = decode_split(out.view(), {});
    ASSERT_TRUE(r.done) << b;
    EXPECT_EQ(r.consumed, out.size());
    std::string expect = b;
    if (!expect.empty() && !expect.ends_with("\r\n")) expect += "\r\n";
    EXPECT_EQ(r.body, expect);
  }
  ByteBuffer out;
  dot_stuff("..\r\n", out);
  EXPECT_EQ(out.view(), "...\r\n.\r\n");
}

TEST(DotStuff, BareLineEndings) {
  EXPECT_EQ(find_bare_line_ending("a\r\nb\r\n"), std::string_view::npos);
  EXPECT_EQ(find_bare_line_ending("a\nb"), 1u);
  EXPECT_EQ(find_bare_line_ending("ab\r"), 2u);
  EXPECT_EQ(find_bare_line_ending("a\r\rb"), 1u);
}

TEST(CountReceived, CountsTraceFieldsOfTheHeaderSectionOnly) {
  EXPECT_EQ(count_received("", 100), 0u);
  EXPECT_EQ(count_received("Subject: x\r\n\r\nReceived: body\r\n", 100), 0u);
  const std::string three =
      "Received: from a by b;\r\n\tSat, 5 Dec 2026 09:00:00 +0000\r\n"
      "X-Received: not a hop\r\n"
      "received:from c by d; Sat, 5 Dec 2026\r\n"
      "ReceivedX: no\r\n"
      "Received : obsolete form, a space before the colon\r\n"
      " Received: a continuation line, not a field\r\n"
      "Subject: x\r\n"
      "\r\n"
      "Received: in the body\r\n";
  EXPECT_EQ(count_received(three, 100), 3u);
  EXPECT_EQ(count_received(three, 2), 2u) << "counting stops at the limit";
  EXPECT_EQ(count_received("Received: a\nReceived: b\n\nReceived: c\n", 100), 2u) << "bare LF";
  EXPECT_EQ(count_received("Received: unterminated", 100), 1u);
}

// --- the scans against plain byte-at-a-time references ----------------------------------
// The scanners look at sixteen bytes a step; these inputs put CR, LF, NUL and dots at every
// offset of those steps, in bodies of 0 to 300 bytes.

std::string random_body(std::mt19937& rng) {
  std::uniform_int_distribution<int> len(0, 300), pick(0, 99);
  std::string s;
  const int n = len(rng);
  while (static_cast<int>(s.size()) < n) {
    const int k = pick(rng);
    if (k < 80) {
      s += 'a';
    } else if (k < 88) {
      s += "\r\n";
    } else if (k < 92) {
      s += '\r';
    } else if (k < 95) {
      s += '\n';
    } else if (k < 97) {
      s += '\0';
    } else {
      s += '.';
    }
  }
  return s;
}

ContentError reference_check(std::string_view s, std::size_t max_line) {
  ContentError e = ContentError::None;
  auto note = [&](ContentError x) {
    if (e == ContentError::None) e = x;
  };
  std::size_t line = 0;
  bool cr = false;
  for (char c : s) {
    if (cr) {
      cr = false;
      if (c == '\n') {
        if (++line > max_line) note(ContentError::LineTooLong);
        line = 0;
        continue;
      }
      if (line > max_line) note(ContentError::LineTooLong);
      note(ContentError::BareCr);
    }
    ++line;
    if (c != '\r' && c != '\n' && c != '\0' && line > max_line) note(ContentError::LineTooLong);
    if (c == '\r') {
      cr = true;
    } else if (c == '\n') {
      note(ContentError::BareLf);
    } else if (c == '\0') {
      note(ContentError::Nul);
    }
  }
  if (line > max_line) note(ContentError::LineTooLong);
  if (cr) note(ContentError::BareCr);
  return e;
}

std::size_t reference_bare(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      if (i + 1 >= s.size() || s[i + 1] != '\n') return i;
      ++i;
    } else if (s[i] == '\n') {
      return i;
    }
  }
  return std::string_view::npos;
}

TEST(Scan, ContentCheckerAndBareLineEndingsMatchByteAtATime) {
  // The first problem by position, whatever the split: a whole update, and byte by byte.
  std::mt19937 rng(20261205);
  for (int round = 0; round < 20000; ++round) {
    const std::string body = random_body(rng);
    const std::size_t max_line = 20 + static_cast<std::size_t>(round % 60);
    ContentChecker c({.max_size = 0, .max_line = max_line});
    c.update(body);
    c.finish();
    ASSERT_EQ(c.error(), reference_check(body, max_line)) << "round " << round;
    ContentChecker bytes({.max_size = 0, .max_line = max_line});
    for (char ch : body) bytes.update(std::string_view(&ch, 1));
    bytes.finish();
    ASSERT_EQ(bytes.error(), c.error()) << "round " << round;
    ASSERT_EQ(c.size(), body.size());
    ASSERT_EQ(find_bare_line_ending(body), reference_bare(body)) << "round " << round;
  }
}

// Mostly clean mail (CRLF lines of 0 to 120 bytes, about one in three bodies with a single
// NUL, bare CR or bare LF somewhere), cut into random pieces: the sixteen-byte steps that
// only count lines must give the first problem the byte loop gives, at every limit.
TEST(Scan, CleanMailInRandomPiecesMatchesTheReference) {
  std::mt19937 rng(20261206);
  std::uniform_int_distribution<int> line_len(0, 120), pick(0, 99), cut(0, 40);
  for (int round = 0; round < 20000; ++round) {
    std::string body;
    const int lines = 1 + pick(rng) % 12;
    for (int l = 0; l < lines; ++l) body += std::string(line_len(rng), 'x') + "\r\n";
    if (pick(rng) % 5 == 0) body.pop_back();  // ends in a bare CR
    const int kind = pick(rng) % 6;
    if (kind < 3 && !body.empty()) {
      const char bad[] = {'\0', '\r', '\n'};
      body[std::uniform_int_distribution<std::size_t>(0, body.size() - 1)(rng)] = bad[kind];
    }
    const std::size_t max_line = 16 + static_cast<std::size_t>(round % 110);
    ContentChecker c({.max_size = 0, .max_line = max_line});
    for (std::size_t at = 0; at < body.size();) {
      const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(cut(rng)),
                                                  body.size() - at);
      c.update(std::string_view(body).substr(at, n));
      at += n;
    }
    c.finish();
    ASSERT_EQ(c.error(), reference_check(body, max_line)) << "round " << round;
    ASSERT_EQ(c.size(), body.size());
    ASSERT_EQ(find_bare_line_ending(body), reference_bare(body)) << "round " << round;
  }
  // Lines of the limit's length, one byte under and one over, at every alignment.
  for (std::size_t max_line : {64u, 100u, 998u}) {
    for (std::size_t len = max_line - 3; len <= max_line + 1; ++len) {
      for (std::size_t shift = 0; shift < 70; ++shift) {
        const std::string body = std::string(shift, 'a') + "\r\n" + std::string(len - 2, 'x') +
                                 "\r\n" + std::string(200, 'b') + "\r\n";
        ContentChecker c({.max_size = 0, .max_line = max_line});
        c.update(body);
        c.finish();
        ASSERT_EQ(c.error(), reference_check(body, max_line)) << max_line << " " << len << " "
                                                              << shift;
      }
    }
  }
}

TEST(Scan, DataDecoderWholeEqualsByteByByte) {
  std::mt19937 rng(7);
  for (int round = 0; round < 5000; ++round) {
    const std::string wire = random_body(rng) + "\r\n.\r\n";
    const ContentLimits limits{.max_size = 0, .max_line = 40};
    const Decoded whole = decode_split(wire, {}, limits);
    DataDecoder d(limits);
    ByteBuffer body;
    std::size_t pos = 0;
    bool done = false;
    while (pos < wire.size() && !done) {
      std::size_t used = 0;
      done = d.decode(std::string_view(wire).substr(pos, 1), &used, &body) ==
             DataDecoder::Status::Done;
      pos += used;
    }
    ASSERT_TRUE(whole.done);
    ASSERT_TRUE(done);
    ASSERT_EQ(whole.consumed, pos) << "round " << round;
    ASSERT_EQ(whole.body, body.view()) << "round " << round;
    ASSERT_EQ(whole.error, d.error()) << "round " << round;
  }
}

}  // namespace
}  // namespace salvo::smtp
