// SPDX-License-Identifier: Apache-2.0
// Independent parse: Python's stdlib email package (not our code) reads each built DSN back
// as multipart/report and its message/delivery-status fields. Skipped if python3 is missing.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/dsn/dsn.h>

#include "dsn_test_util.h"
#include "support/process.h"

namespace salvo::dsn {
namespace {

using nlohmann::json;

constexpr const char* kPython = "/usr/bin/python3";

constexpr const char* kScript = R"PY(
import json, sys, email

raw = open(sys.argv[1], 'rb').read()
m = email.message_from_bytes(raw)

def fields(block):
    # Unfold (RFC 5322 2.2.3) and normalise whitespace before comparing.
    return {k: ' '.join(str(v).split()) for k, v in block.items()}

out = {
    'content_type': m.get_content_type(),
    'report_type': m.get_param('report-type'),
    'defects': [type(d).__name__ for d in m.defects],
    'headers': fields(m),
    'is_multipart': m.is_multipart(),
}
parts = m.get_payload() if m.is_multipart() else []
out['part_types'] = [p.get_content_type() for p in parts]
out['part_defects'] = [[type(d).__name__ for d in p.defects] for p in parts]
if len(parts) >= 3:
    out['text'] = parts[0].get_payload(decode=True).decode('utf-8', 'replace')
    blocks = parts[1].get_payload()
    if isinstance(blocks, list):
        out['per_message'] = fields(blocks[0])
        out['recipients'] = [fields(b) for b in blocks[1:]]
    ret = parts[2]
    if ret.get_content_type() == 'message/rfc822':
        inner = ret.get_payload()[0]
        out['returned'] = {'headers': fields(inner), 'body': inner.get_payload()}
    else:
        payload = ret.get_payload()
        if isinstance(payload, list):  # message/global-headers is parsed as a message
            payload = ''.join(p.as_string() for p in payload)
        out['returned'] = {'text': payload}
print(json.dumps(out))
)PY";

class PythonParse : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(kPython, X_OK), 0)
        << "no " << kPython << ": tools/install_deps.sh installs it";
  }

  json parse(const std::string& message) {
    const std::string script = dir_.file("parse.py");
    const std::string eml = dir_.file("dsn.eml");
    std::ofstream(script) << kScript;
    std::ofstream(eml, std::ios::binary) << message;
    salvo::test::Process p({kPython, script, eml}, dir_.path());
    const auto rc = p.wait(std::chrono::seconds(60));
    EXPECT_TRUE(rc.has_value());
    EXPECT_EQ(rc.value_or(-1), 0) << p.stderr_text();
    const std::string out = p.stdout_text();
    return json::parse(out, nullptr, /*allow_exceptions=*/false);
  }

  static void expect_clean(const json& j) {
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["content_type"], "multipart/report");
    EXPECT_EQ(j["report_type"], "delivery-status");
    EXPECT_TRUE(j["defects"].empty()) << j["defects"].dump();
    for (const auto& d : j["part_defects"]) EXPECT_TRUE(d.empty()) << d.dump();
    ASSERT_EQ(j["part_types"].size(), 3u);
    EXPECT_EQ(j["part_types"][0], "text/plain");
    EXPECT_EQ(j["part_types"][1], "message/delivery-status");
  }

  salvo::test::TempDir dir_;
};

TEST_F(PythonParse, FailedDsnReadsBack) {
  DsnInput in = fixture::base_input();
  RecipientReport second = fixture::failed_recipient();
  second.final_recipient = "other@example.com";
  second.original_recipient_xtext.clear();
  second.status = "5.2.2";
  second.diagnostic = "552 5.2.2 Mailbox full";
  in.recipients.push_back(second);
  const json j = parse(fixture::build_ok(in));
  expect_clean(j);
  EXPECT_EQ(j["headers"]["From"], "Mail Delivery System <MAILER-DAEMON@mx1.salvo.test>");
  EXPECT_EQ(j["headers"]["To"], "<sender@example.org>");
  EXPECT_EQ(j["headers"]["Auto-Submitted"], "auto-replied");
  EXPECT_EQ(j["part_types"][2], "text/rfc822-headers");
  EXPECT_EQ(j["per_message"]["Reporting-MTA"], "dns; mx1.salvo.test");
  EXPECT_EQ(j["per_message"]["Original-Envelope-Id"], "batch+42");
  EXPECT_EQ(j["per_message"]["Arrival-Date"], "Sun, 22 Nov 2026 22:38:47 +0000");
  ASSERT_EQ(j["recipients"].size(), 2u);
  const json& r0 = j["recipients"][0];
  EXPECT_EQ(r0["Original-Recipient"], "rfc822; Nobody+x@example.net");
  EXPECT_EQ(r0["Final-Recipient"], "rfc822; nobody@example.net");
  EXPECT_EQ(r0["Action"], "failed");
  EXPECT_EQ(r0["Status"], "5.1.1");
  EXPECT_EQ(r0["Remote-MTA"], "dns; mx.example.net");
  EXPECT_EQ(r0["Diagnostic-Code"], "smtp; 550 5.1.1 <nobody@example.net>: No such user");
  EXPECT_EQ(r0["Last-Attempt-Date"], "Sun, 22 Nov 2026 22:39:47 +0000");
  const json& r1 = j["recipients"][1];
  EXPECT_FALSE(r1.contains("Original-Recipient"));
  EXPECT_EQ(r1["Final-Recipient"], "rfc822; other@example.com");
  EXPECT_EQ(r1["Status"], "5.2.2");
  const std::string returned = j["returned"]["text"];
  EXPECT_NE(returned.find("Subject: Hello there"), std::string::npos);
  EXPECT_EQ(returned.find("Body line"), std::string::npos);
  const std::string text = j["text"];
  EXPECT_NE(text.find("other@example.com"), std::string::npos);
}

TEST_F(PythonParse, DelayedAndDeliveredRead) {
  DsnInput in = fixture::base_input();
  in.recipients[0].action = Action::Delayed;
  in.recipients[0].status = "4.4.1";
  in.recipients[0].will_retry_until_unix = fixture::kArrival + 5 * 86400;
  json j = parse(fixture::build_ok(in));
  expect_clean(j);
  EXPECT_EQ(j["headers"]["Subject"], "Delayed Mail (still being retried)");
  EXPECT_EQ(j["recipients"][0]["Action"], "delayed");
  EXPECT_EQ(j["recipients"][0]["Will-Retry-Until"], "Fri, 27 Nov 2026 22:38:47 +0000");

  in.recipients[0].action = Action::Delivered;
  in.recipients[0].status = "2.0.0";
  j = parse(fixture::build_ok(in));
  expect_clean(j);
  EXPECT_EQ(j["headers"]["Subject"], "Successful Mail Delivery Report");
  EXPECT_EQ(j["recipients"][0]["Action"], "delivered");
  EXPECT_FALSE(j["recipients"][0].contains("Will-Retry-Until"));
}

TEST_F(PythonParse, RetFullReturnsAParsableMessage) {
  DsnInput in = fixture::base_input();
  in.ret = Ret::Full;
  const json j = parse(fixture::build_ok(in));
  expect_clean(j);
  EXPECT_EQ(j["part_types"][2], "message/rfc822");
  EXPECT_EQ(j["returned"]["headers"]["Subject"], "Hello there");
  EXPECT_EQ(j["returned"]["body"], "Body line 1\r\nBody line 2\r\n");
}

TEST_F(PythonParse, HostileReplyStaysInsideItsField) {
  DsnInput in = fixture::base_input();
  std::string reply = fixture::bytes(
      "550-5.1.1 first\r\n550 5.1.1 second\r\nX-Injected: yes\r\n\r\n"
      "Final-Recipient: rfc822; victim@example.com\rAction: delivered\n\0tail ");
  while (reply.size() < 100 * 1024) reply += "more-text ";
  in.recipients[0].diagnostic = reply;
  const json j = parse(fixture::build_ok(in));
  expect_clean(j);
  EXPECT_FALSE(j["headers"].contains("X-Injected"));
  ASSERT_EQ(j["recipients"].size(), 1u);
  const json& r = j["recipients"][0];
  EXPECT_EQ(r["Action"], "failed");
  EXPECT_EQ(r["Final-Recipient"], "rfc822; nobody@example.net");
  EXPECT_FALSE(r.contains("X-Injected"));
  const std::string diag = r["Diagnostic-Code"];
  EXPECT_EQ(diag.rfind("smtp; 550-5.1.1 first 550 5.1.1 second X-Injected: yes", 0), 0u) << diag;
}

TEST_F(PythonParse, Smtputf8GlobalReport) {
  DsnInput in = fixture::base_input();
  in.smtputf8 = true;
  in.recipients[0].final_recipient = "j\xc3\xbcrgen@example.net";
  const json j = parse(fixture::build_ok(in));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["content_type"], "multipart/report");
  EXPECT_EQ(j["report_type"], "global-delivery-status");
  ASSERT_EQ(j["part_types"].size(), 3u);
  EXPECT_EQ(j["part_types"][1], "message/global-delivery-status");
  EXPECT_EQ(j["part_types"][2], "message/global-headers");
}

}  // namespace
}  // namespace salvo::dsn
