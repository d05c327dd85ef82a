// SPDX-License-Identifier: Apache-2.0
// The pickup file formats: .eml envelope lines and message normalisation, and the
// two-pass streaming .json job reader fed in chunks of every size.
#include <salvo/inbound/pickup_format.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/spool/records.h>

namespace salvo::inbound {
namespace {

// ---- .eml ---------------------------------------------------------------------------

struct Eml {
  std::optional<PickupError> error;
  EmlEnvelope env;
  std::string body;
};

Eml eml(std::string_view file) {
  Eml r;
  r.error = parse_eml(file, PickupLimits{}, &r.env, r.body);
  return r;
}

TEST(PickupEml, EnvelopeLinesThenMessageWithLfBecomingCrlf) {
  auto r = eml("X-Sender: bounces@esp.example\nx-receiver: a@one.example\n"
               "X-RECEIVER: <b@two.example>\nX-Envid: campaign 7\nX-Job: spring-sale\n"
               "From: News <news@esp.example>\nSubject: hi\n\nbody line\n");
  ASSERT_FALSE(r.error) << r.error->describe();
  EXPECT_EQ(r.env.sender, "bounces@esp.example");
  EXPECT_EQ(r.env.receivers, (std::vector<std::string>{"a@one.example", "b@two.example"}));
  EXPECT_EQ(r.env.envid, "campaign+207");  // stored as xtext, as an SMTP ENVID would be
  EXPECT_EQ(r.env.job, "spring-sale");
  EXPECT_EQ(r.body, "From: News <news@esp.example>\r\nSubject: hi\r\n\r\nbody line\r\n");
  EXPECT_FALSE(r.env.eight_bit);
  EXPECT_FALSE(r.env.smtputf8);
}

TEST(PickupEml, CrlfFileAndNoFinalNewlineAndNullSender) {
  auto r = eml("X-Sender: <>\r\nX-Receiver: a@one.example\r\nSubject: x\r\n\r\nlast");
  ASSERT_FALSE(r.error) << r.error->describe();
  EXPECT_EQ(r.env.sender, "");
  EXPECT_EQ(r.body, "Subject: x\r\n\r\nlast\r\n");
}

TEST(PickupEml, EightBitAndUtf8Addresses) {
  auto r = eml("X-Sender: s@esp.example\nX-Receiver: j\xC3\xB6rg@m\xC3\xBCnchen.example\n"
               "Subject: caf\xC3\xA9\n\nx\n");
  ASSERT_FALSE(r.error) << r.error->describe();
  EXPECT_TRUE(r.env.smtputf8);
  EXPECT_TRUE(r.env.eight_bit);
}

struct BadEml {
  const char* name;
  const char* file;
  std::uint64_t line;
  const char* field;
  const char* reason_part;
};

class PickupEmlBad : public ::testing::TestWithParam<BadEml> {};

TEST_P(PickupEmlBad, NamesLineFieldAndReason) {
  const BadEml& c = GetParam();
  auto r = eml(c.file);
  ASSERT_TRUE(r.error) << c.name;
  EXPECT_EQ(r.error->line, c.line) << r.error->describe();
  EXPECT_EQ(r.error->field, c.field) << r.error->describe();
  EXPECT_NE(r.error->describe().find(c.reason_part), std::string::npos) << r.error->describe();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PickupEmlBad,
    ::testing::Values(
        BadEml{"NoSender", "X-Receiver: a@b.example\nSubject: x\n\nb\n", 1, "X-Sender",
               "no X-Sender"},
        BadEml{"NoReceiver", "X-Sender: a@b.example\nSubject: x\n\nb\n", 1, "X-Receiver",
               "no X-Receiver"},
        BadEml{"BadReceiver", "X-Sender: a@b.example\nX-Receiver: a@b.example\nX-Receiver: "
               "not an address\nSubject: x\n\nb\n", 3, "X-Receiver", "not a valid mailbox"},
        BadEml{"ReceiverWithoutDomain", "X-Sender: a@b.example\nX-Receiver: postmaster\n"
               "Subject: x\n\nb\n", 2, "X-Receiver", ""},
        BadEml{"TwoSenders", "X-Sender: a@b.example\nX-Sender: c@b.example\n", 2, "X-Sender",
               "more than one"},
        BadEml{"BareCr", "X-Sender: a@b.example\nX-Receiver: r@b.example\nSubject: x\n\nab\rc\n",
               5, "", "bare CR"},
        BadEml{"NoHeader", "X-Sender: a@b.example\nX-Receiver: r@b.example\n\nbody only\n", 3,
               "", "header field"},
        BadEml{"NothingAfterEnvelope", "X-Sender: a@b.example\nX-Receiver: r@b.example\n", 3, "",
               "no message"},
        BadEml{"Bom", "\xEF\xBB\xBFX-Sender: a@b.example\n", 1, "", "byte order mark"}),
    [](const auto& p) { return std::string(p.param.name); });

// Cases that need built strings.
TEST(PickupEml, LongLineAndNul) {
  std::string f = "X-Sender: a@b.example\nX-Receiver: r@b.example\nSubject: x\n" +
                  std::string(999, 'x') + "\n";
  auto r = eml(f);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->line, 4u);
  EXPECT_NE(r.error->reason.find("998"), std::string::npos);
  std::string n = std::string("X-Sender: a@b.example\nX-Receiver: r@b.example\nSubject: x\n\na") +
                  '\0' + "b\n";
  r = eml(n);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->line, 5u);
  EXPECT_NE(r.error->reason.find("NUL"), std::string::npos);
  std::string ok = "X-Sender: a@b.example\nX-Receiver: r@b.example\nSubject: x\n" +
                   std::string(998, 'x') + "\n";
  EXPECT_FALSE(eml(ok).error);
}

// ---- .json --------------------------------------------------------------------------

struct Job {
  std::optional<PickupError> error;
  JobHeader header;
  std::vector<JobRecipientData> recipients;
  std::uint64_t counted = 0;
};

// Runs both passes, feeding `chunk` bytes at a time (0 = all at once).
Job run_job(const std::string& file, std::size_t chunk = 0, PickupLimits limits = {}) {
  Job j;
  JobReader reader(limits);
  std::size_t step = chunk == 0 ? file.size() : chunk;
  for (std::size_t i = 0; i < file.size() && !j.error; i += step) {
    j.error = reader.scan(std::string_view(file).substr(i, step));
  }
  if (!j.error) j.error = reader.finish_scan();
  if (j.error) return j;
  j.header = reader.header();
  j.counted = reader.recipient_count();
  for (std::size_t i = reader.recipients_offset(); i < file.size() && !reader.recipients_done();
       i += step) {
    j.error = reader.feed_recipients(std::string_view(file).substr(i, step),
                                     [&](JobRecipientData&& r) { j.recipients.push_back(std::move(r)); });
    if (j.error) return j;
  }
  if (!reader.recipients_done()) j.error = PickupError{"not done", 0, 0, {}};
  return j;
}

const std::string kJob = R"({
  "from": "bounces@esp.example",
  "job": "welcome-42",
  "envid": "w 42",
  "ret": "HDRS",
  "notify": "FAILURE,DELAY",
  "content": "From: Shop <shop@esp.example>\nSubject: Hello {{name}}\n\nDear {{ name }}, code {{code}}.\n",
  "recipients": [
    {"email": "ann@one.example", "vars": {"name": "Ann", "code": 17}},
    {"email": "<bob@two.example>", "vars": {"name": "Bob \"B\" \u00e9", "code": "x,]}"}, "notify": "SUCCESS"},
    {"email": "cy@three.example", "orcpt": "rfc822;cy@old.example", "vars": {}}
  ]
}
)";

TEST(PickupJob, HeaderAndRecipientsWithVariables) {
  auto j = run_job(kJob);
  ASSERT_FALSE(j.error) << j.error->describe();
  EXPECT_EQ(j.header.from, "bounces@esp.example");
  EXPECT_EQ(j.header.job, "welcome-42");
  EXPECT_EQ(j.header.envid, "w+2042");
  EXPECT_EQ(j.header.ret, static_cast<std::uint8_t>(spool::Ret::Headers));
  EXPECT_EQ(j.header.content,
            "From: Shop <shop@esp.example>\r\nSubject: Hello {{name}}\r\n\r\nDear {{ name }}, "
            "code {{code}}.\r\n");
  EXPECT_EQ(j.counted, 3u);
  ASSERT_EQ(j.recipients.size(), 3u);
  EXPECT_EQ(j.recipients[0].email, "ann@one.example");
  EXPECT_EQ(j.recipients[0].notify, spool::kNotifyFailure | spool::kNotifyDelay);
  ASSERT_EQ(j.recipients[0].vars.size(), 2u);
  EXPECT_EQ(j.recipients[0].vars[0], (std::pair<std::string, std::string>{"code", "17"}));
  EXPECT_EQ(j.recipients[0].vars[1], (std::pair<std::string, std::string>{"name", "Ann"}));
  EXPECT_EQ(j.recipients[1].email, "bob@two.example");
  EXPECT_EQ(j.recipients[1].notify, spool::kNotifySuccess);
  EXPECT_EQ(j.recipients[1].vars[1].second, "Bob \"B\" \xC3\xA9");
  EXPECT_EQ(j.recipients[1].vars[0].second, "x,]}");
  EXPECT_EQ(j.recipients[2].orcpt, "rfc822;cy@old.example");
}

// The framing must not depend on where chunks end: every chunk size gives the same job.
TEST(PickupJob, EveryChunkSizeGivesTheSameResult) {
  auto whole = run_job(kJob);
  ASSERT_FALSE(whole.error);
  for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
    auto j = run_job(kJob, chunk);
    ASSERT_FALSE(j.error) << "chunk " << chunk << ": " << j.error->describe();
    EXPECT_EQ(j.header.content, whole.header.content) << chunk;
    ASSERT_EQ(j.recipients.size(), whole.recipients.size()) << chunk;
    for (std::size_t i = 0; i < j.recipients.size(); ++i) {
      EXPECT_EQ(j.recipients[i].email, whole.recipients[i].email);
      EXPECT_EQ(j.recipients[i].vars, whole.recipients[i].vars);
    }
  }
}

TEST(PickupJob, RecipientsBeforeTheContentAreFine) {
  std::string f = R"({"recipients": [{"email": "a@x.example"}, {"email": "b@x.example"}],
                      "content": "Subject: s\n\nb\n", "from": ""})";
  auto j = run_job(f, 7);
  ASSERT_FALSE(j.error) << j.error->describe();
  EXPECT_EQ(j.header.from, "");
  ASSERT_EQ(j.recipients.size(), 2u);
  EXPECT_EQ(j.recipients[1].email, "b@x.example");
}

TEST(PickupJob, ManyRecipientsStreamWithBoundedState) {
  std::string f = R"({"from": "s@esp.example", "content": "Subject: {{n}}\n\nx\n", "recipients": [)";
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    if (i != 0) f += ",\n";
    f += R"({"email": "user)" + std::to_string(i) + R"(@d)" + std::to_string(i % 97) +
         R"(.example", "vars": {"n": ")" + std::to_string(i) + "\"}}";
  }
  f += "]}";
  auto j = run_job(f, 4096);
  ASSERT_FALSE(j.error) << j.error->describe();
  ASSERT_EQ(j.recipients.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(j.counted, static_cast<std::uint64_t>(n));
  EXPECT_EQ(j.recipients[12345].email, "user12345@d26.example");
  EXPECT_EQ(j.recipients[12345].vars[0].second, "12345");
}

struct BadJob {
  const char* name;
  const char* file;
  std::uint64_t line;
  const char* field;
  const char* reason_part;
};

class PickupJobBad : public ::testing::TestWithParam<BadJob> {};

TEST_P(PickupJobBad, NamesLineFieldAndReason) {
  const BadJob& c = GetParam();
  for (std::size_t chunk : {0, 1, 5}) {
    auto j = run_job(c.file, chunk);
    ASSERT_TRUE(j.error) << c.name << " chunk " << chunk;
    EXPECT_EQ(j.error->line, c.line) << j.error->describe();
    EXPECT_EQ(j.error->field, c.field) << j.error->describe();
    EXPECT_NE(j.error->describe().find(c.reason_part), std::string::npos) << j.error->describe();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PickupJobBad,
    ::testing::Values(
        BadJob{"Empty", "", 1, "", "empty file"},
        BadJob{"NotAnObject", "[1,2]", 1, "", "one JSON object"},
        BadJob{"UnknownKey", "{\"from\": \"a@b.example\",\n\"recipient\": []}", 2, "recipient",
               "unknown key"},
        BadJob{"MissingFrom", "{\"content\": \"S: x\\n\\nb\", \"recipients\": [{\"email\": "
               "\"a@b.example\"}]}", 0, "from", "missing"},
        BadJob{"MissingContent", "{\"from\": \"\", \"recipients\": [{\"email\": \"a@b.example\"}]}",
               0, "content", "missing"},
        BadJob{"NoRecipients", "{\"from\": \"\", \"content\": \"S: x\\n\", \"recipients\": []}", 1,
               "recipients", "no recipients"},
        BadJob{"BadFrom", "{\n\"from\": \"nobody\"}", 2, "from", "domain"},
        BadJob{"FromNotString", "{\"from\": 7}", 1, "from", "must be a string"},
        BadJob{"Truncated", "{\"from\": \"a@b.example\", \"content\": \"S: x", 1, "",
               "ends inside"},
        BadJob{"TrailingComma", "{\"from\": \"a@b.example\",}", 1, "", "key in double quotes"},
        BadJob{"TextAfter", "{\"from\": \"\", \"content\": \"S: x\\n\", \"recipients\": "
               "[{\"email\": \"a@b.example\"}]} x", 1, "", "after the end"},
        BadJob{"BadEmail", "{\"from\": \"\", \"content\": \"S: x\\n\", \"recipients\": [\n"
               "{\"email\": \"a@b.example\"},\n{\"email\": \"@@\"}]}", 3, "recipients[1].email",
               "mailbox"},
        BadJob{"VarInjection", "{\"from\": \"\", \"content\": \"S: {{s}}\\n\", \"recipients\": "
               "[\n{\"email\": \"a@b.example\", \"vars\": {\"s\": \"x\\r\\nBcc: v@evil.example\"}}]}",
               2, "recipients[0].vars.s", "header injection"},
        BadJob{"NestedVar", "{\"from\": \"\", \"content\": \"S: x\\n\", \"recipients\": "
               "[{\"email\": \"a@b.example\", \"vars\": {\"s\": [1]}}]}", 1,
               "recipients[0].vars.s", "string, number"},
        BadJob{"BadJsonInRecipient", "{\"from\": \"\", \"content\": \"S: x\\n\", \"recipients\": "
               "[\n{\"email\": \"a@b.example\",, }]}", 2, "recipients[0]", "invalid JSON"},
        BadJob{"ContentBareCr", "{\"from\": \"\", \"content\": \"S: x\\rY\\n\", \"recipients\": "
               "[{\"email\": \"a@b.example\"}]}", 1, "content", "bare CR"},
        BadJob{"NumberOverflow", "{\"from\": 2e522221 }", 1, "from", "must be a string"},
        BadJob{"HugeNestedContent", "{\"content\": [[[[[[[[[[[[[[[[[[[[", 1, "content",
               "must be a string"},
        BadJob{"DuplicateKey", "{\"from\": \"a@b.example\",\n\"from\": \"c@d.example\"}", 2,
               "from", "duplicate key"},
        BadJob{"BadNotify", "{\"from\": \"\", \"notify\": \"NEVER,SUCCESS\"}", 1, "notify",
               "NEVER"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(PickupJob, RecipientObjectSizeIsBounded) {
  PickupLimits lim;
  lim.max_recipient_bytes = 100;
  std::string f = "{\"from\": \"\", \"content\": \"S: x\\n\", \"recipients\": [{\"email\": "
                  "\"a@b.example\", \"vars\": {\"v\": \"" + std::string(200, 'x') + "\"}}]}";
  auto j = run_job(f, 16, lim);
  ASSERT_TRUE(j.error);
  EXPECT_NE(j.error->reason.find("larger than 100"), std::string::npos) << j.error->describe();
}

}  // namespace
}  // namespace salvo::inbound
