// SPDX-License-Identifier: Apache-2.0
// format_line: field order and presence, timestamps, numbers, escaping and
// invalid UTF-8. Every line is also parsed with nlohmann::json (RFC 8259).
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/accounting/accounting.h>

namespace salvo::accounting {
namespace {

using nlohmann::ordered_json;

std::string line(const Event& ev) {
  std::string out;
  format_line(ev, out);
  return out;
}

// Parses one line (which must end in exactly one '\n' and hold no other newline).
ordered_json parse(const std::string& l) {
  EXPECT_FALSE(l.empty());
  EXPECT_EQ(l.back(), '\n');
  EXPECT_EQ(l.find('\n'), l.size() - 1) << l;
  return ordered_json::parse(l.substr(0, l.size() - 1));
}

std::vector<std::string> keys(const ordered_json& j) {
  std::vector<std::string> k;
  for (auto it = j.begin(); it != j.end(); ++it) k.push_back(it.key());
  return k;
}

Event full_event() {
  Event ev;
  ev.type = EventType::Bounced;
  ev.ts_unix_ns = 1795383600123000000;  // 2026-11-22T21:40:00.123Z
  ev.id = "00000000000abcde";
  ev.from = "sender@example.org";
  ev.rcpt = "rcpt@example.com";
  ev.domain = "example.com";
  ev.mx = "mx1.example.com";
  ev.ip = "192.0.2.25";
  ev.code = 550;
  ev.enhanced = "5.1.1";
  ev.response = "user unknown";
  ev.attempt = 3;
  ev.tls = "TLSv1.3";
  ev.size = 12345;
  ev.queued_s = 61.5;
  ev.source = "smtp";
  ev.job = "job-7";
  ev.category = "bad-mailbox";
  return ev;
}

TEST(FormatLine, EveryFieldInSpecOrder) {
  std::string l = line(full_event());
  EXPECT_EQ(l,
            R"({"ts":"2026-11-22T21:40:00.123Z","type":"bounced","id":"00000000000abcde",)"
            R"("from":"sender@example.org","rcpt":"rcpt@example.com","domain":"example.com",)"
            R"("mx":"mx1.example.com","ip":"192.0.2.25","code":550,"enhanced":"5.1.1",)"
            R"("response":"user unknown","attempt":3,"tls":"TLSv1.3","size":12345,)"
            R"("queued_s":61.500,"source":"smtp","job":"job-7","category":"bad-mailbox"})"
            "\n");
  ordered_json j = parse(l);
  EXPECT_EQ(keys(j), (std::vector<std::string>{"ts", "type", "id", "from", "rcpt", "domain",
                                               "mx", "ip", "code", "enhanced", "response",
                                               "attempt", "tls", "size", "queued_s", "source",
                                               "job", "category"}));
  EXPECT_EQ(j["code"], 550);
  EXPECT_EQ(j["attempt"], 3);
  EXPECT_EQ(j["size"], 12345);
  EXPECT_DOUBLE_EQ(j["queued_s"].get<double>(), 61.5);
}

TEST(FormatLine, UnsetFieldsAreLeftOut) {
  Event ev;
  ev.type = EventType::Received;
  ev.id = "1";
  ev.from = "a@b";
  EXPECT_EQ(line(ev),
            R"({"ts":"1970-01-01T00:00:00.000Z","type":"received","id":"1","from":"a@b"})"
            "\n");
}

TEST(FormatLine, NullSenderIsWrittenAsEmptyString) {
  for (EventType t : {EventType::Received, EventType::Delivered, EventType::Bounced,
                      EventType::Expired, EventType::Dsn}) {
    Event ev;
    ev.type = t;
    ev.id = "x";
    ordered_json j = parse(line(ev));
    ASSERT_TRUE(j.contains("from")) << to_string(t);
    EXPECT_EQ(j["from"], "");
  }
  Event deferred;
  deferred.type = EventType::Deferred;
  deferred.id = "x";
  EXPECT_FALSE(parse(line(deferred)).contains("from"));
  deferred.from = "s@x";
  EXPECT_EQ(parse(line(deferred))["from"], "s@x");
}

TEST(FormatLine, EventTypeNames) {
  EXPECT_EQ(to_string(EventType::Received), "received");
  EXPECT_EQ(to_string(EventType::Delivered), "delivered");
  EXPECT_EQ(to_string(EventType::Deferred), "deferred");
  EXPECT_EQ(to_string(EventType::Bounced), "bounced");
  EXPECT_EQ(to_string(EventType::Expired), "expired");
  EXPECT_EQ(to_string(EventType::Dsn), "dsn");
}

TEST(FormatLine, Timestamps) {
  auto ts = [](std::int64_t ns) {
    Event ev;
    ev.ts_unix_ns = ns;
    return parse(line(ev))["ts"].get<std::string>();
  };
  EXPECT_EQ(ts(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(ts(1795383600123000000), "2026-11-22T21:40:00.123Z");
  EXPECT_EQ(ts(1709208000999999999), "2024-02-29T12:00:00.999Z");  // truncated, leap day
  EXPECT_EQ(ts(1767225600LL * 1000000000), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(ts(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(ts(951782400LL * 1000000000 + 7000000), "2000-02-29T00:00:00.007Z");
  EXPECT_EQ(ts(std::numeric_limits<std::int64_t>::max()), "2262-04-11T23:47:16.854Z");
}

TEST(FormatLine, Numbers) {
  Event ev;
  ev.type = EventType::Delivered;
  ev.queued_s = 1.23456;
  ev.code = 250;
  ev.attempt = 4294967295u;
  ev.size = 18446744073709551615ull;
  std::string l = line(ev);
  EXPECT_NE(l.find(R"("queued_s":1.235)"), std::string::npos) << l;
  EXPECT_NE(l.find(R"("attempt":4294967295)"), std::string::npos) << l;
  EXPECT_NE(l.find(R"("size":18446744073709551615)"), std::string::npos) << l;
  parse(l);

  ev.queued_s = 0;
  EXPECT_NE(line(ev).find(R"("queued_s":0.000)"), std::string::npos);
  ev.queued_s = -1;
  EXPECT_EQ(line(ev).find("queued_s"), std::string::npos);
  ev.queued_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(line(ev).find("queued_s"), std::string::npos);
  ev.queued_s = std::numeric_limits<double>::infinity();
  EXPECT_EQ(parse(line(ev))["queued_s"].get<double>(), 1e12);
}

TEST(FormatLine, EscapesQuotesBackslashAndControlCharacters) {
  std::string nasty = std::string("a\"b\\c\nd\re\tf\bg\fh") + '\x01' + '\x1f' + '\x7f' + "/ok";
  Event ev;
  ev.response = nasty;
  std::string l = line(ev);
  EXPECT_NE(l.find(R"("response":"a\"b\\c\nd\re\tf\bg\fh\u0001\u001f\u007f/ok")"),
            std::string::npos)
      << l;
  EXPECT_EQ(parse(l)["response"], nasty);
}

TEST(FormatLine, EmbeddedNulIsEscaped) {
  Event ev;
  ev.rcpt = std::string_view("a\0b", 3);
  std::string l = line(ev);
  EXPECT_NE(l.find(R"("rcpt":"a\u0000b")"), std::string::npos) << l;
  EXPECT_EQ(parse(l)["rcpt"], std::string("a\0b", 3));
}

TEST(FormatLine, ValidUtf8IsKept) {
  std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
  Event ev;
  ev.response = s;
  EXPECT_EQ(parse(line(ev))["response"], s);
}

TEST(FormatLine, InvalidUtf8BecomesReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  struct Case {
    std::string in;
    std::string out;
  };
  std::vector<Case> cases = {
      {"a\xFF" "b", "a" + r + "b"},
      {"end\xC3", "end" + r},                                // truncated at the end
      {"\xE2\x82", r},                                       // truncated 3-byte: one subpart
      {"\xE2\x82x", r + "x"},
      {"\xC0\xAF", r + r},                                   // overlong '/'
      {"\xE0\x80\xAF", r + r + r},                           // overlong 3-byte
      {"\xED\xA0\x80", r + r + r},                           // UTF-16 surrogate
      {"\xF4\x90\x80\x80", r + r + r + r},                   // above U+10FFFF
      {"\xF0\x9F\x98", r},                                   // truncated 4-byte
      {"\x80\x80", r + r},                                   // lone continuations
      {"\xF8\x88\x80\x80\x80", r + r + r + r + r},           // 5-byte form
      {"ok\xC3\xA9\xFFok", "ok\xC3\xA9" + r + "ok"},
  };
  for (const Case& c : cases) {
    Event ev;
    ev.response = c.in;
    std::string l = line(ev);
    ordered_json j = parse(l);
    EXPECT_EQ(j["response"], c.out) << l;
  }
}

TEST(FormatLine, AppendsToExistingBuffer) {
  std::string out = "prefix\n";
  Event ev;
  ev.id = "1";
  format_line(ev, out);
  format_line(ev, out);
  EXPECT_EQ(out.rfind("prefix\n", 0), 0u);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3);
}

// Seeded random bytes in every string field: every line must parse.
TEST(FormatLine, RandomBytesAlwaysParse) {
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 40), kind(0, 3);
  auto random_string = [&] {
    std::string s;
    int n = len(rng);
    for (int i = 0; i < n; ++i) {
      // Bias towards the interesting bytes: ASCII, control, UTF-8 leads/continuations.
      switch (kind(rng)) {
        case 0: s.push_back(static_cast<char>('a' + byte(rng) % 26)); break;
        case 1: s.push_back(static_cast<char>(byte(rng) % 0x20)); break;
        case 2: s.push_back(static_cast<char>(0x80 + byte(rng) % 0x40)); break;
        default: s.push_back(static_cast<char>(byte(rng))); break;
      }
    }
    return s;
  };
  for (int i = 0; i < 20000; ++i) {
    std::string f[10];
    for (auto& s : f) s = random_string();
    Event ev;
    ev.type = static_cast<EventType>(i % 6);
    ev.ts_unix_ns = static_cast<std::int64_t>(rng()) * 1000003;
    ev.id = f[0];
    ev.from = f[1];
    ev.rcpt = f[2];
    ev.domain = f[3];
    ev.mx = f[4];
    ev.response = f[5];
    ev.enhanced = f[6];
    ev.tls = f[7];
    ev.job = f[8];
    ev.category = f[9];
    ev.code = i % 600;
    ev.queued_s = i * 0.37;
    std::string l = line(ev);
    ASSERT_NO_THROW(parse(l)) << l;
  }
}

}  // namespace
}  // namespace salvo::accounting
