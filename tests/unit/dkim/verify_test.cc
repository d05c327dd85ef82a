// SPDX-License-Identifier: Apache-2.0
// Signatures checked by an independent verifier: Debian's python3-dkim (dkim.verify), run
// as a child process, with the key record from Signer::public_key_record() served by its
// dnsfunc. Both algorithms; awkward messages; and tampering that must FAIL, so the check
// is known to be able to fail.
#include <filesystem>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include <salvo/dkim/signer.h>

#include "dkim_test_util.h"

namespace salvo::dkim {
namespace {

using test::keys;
using test::python_verify;

constexpr std::int64_t kTime = 1700000000;  // t= in the past: the verifier rejects future t=

struct Case {
  const char* name;
  Algorithm algorithm;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class VerifyTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    // tools/install_deps.sh installs both: missing means a broken machine, not a skip.
    ASSERT_TRUE(std::filesystem::exists(test::kPython) && std::filesystem::exists(test::kOpenssl))
        << "needs /usr/bin/python3 with python3-dkim and /usr/bin/openssl";
  }

  void SetUp() override {
    SignerOptions o;
    o.domain = "example.com";
    o.selector = GetParam().algorithm == Algorithm::RsaSha256 ? "rsa2024" : "ed2024";
    o.algorithm = GetParam().algorithm;
    o.private_key_pem = o.algorithm == Algorithm::RsaSha256 ? keys().rsa2048 : keys().ed25519;
    auto s = Signer::create(o);
    ASSERT_TRUE(s.has_value()) << s.error().message();
    signer_ = std::make_unique<Signer>(std::move(*s));
  }

  Signer& signer() { return *signer_; }

  std::string signed_message(std::string_view msg) {
    auto field = signer_->sign(msg, kTime);
    EXPECT_TRUE(field.has_value()) << field.error().message();
    std::string out = field.value_or("");
    field_size_ = out.size();
    out += msg;
    return out;
  }

  test::Verification verify(std::string_view signed_msg) {
    return python_verify(signed_msg, signer_->public_key_record(), signer_->record_name());
  }

  void expect_pass(std::string_view msg) {
    const std::string s = signed_message(msg);
    const auto v = verify(s);
    EXPECT_TRUE(v.pass) << "message:\n" << s << "\nverifier:\n" << v.log;
  }

  // Signs `msg`, replaces `from` with `to` in the signed text, expects FAIL.
  void expect_fail_after_edit(std::string_view msg, std::string_view from, std::string_view to) {
    std::string s = signed_message(msg);
    const std::size_t at = s.find(from, field_size_);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    const auto v = verify(s);
    EXPECT_FALSE(v.pass) << "edit '" << from << "' -> '" << to << "' still verifies\n" << v.log;
  }

  std::unique_ptr<Signer> signer_;
  std::size_t field_size_ = 0;
};

const std::string kPlain =
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    "Subject: Quarterly report\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <20231114221320.1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "List-Unsubscribe: <mailto:unsub@example.com?subject=u>,\r\n"
    " <https://example.com/u/1>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    "X-Mailer: salvo\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "\r\n"
    "the numbers  are\tin.   \r\n"
    "  Indented line\r\n"
    "-- \r\n"
    "Alice\r\n";

TEST_P(VerifyTest, PlainMessage) { expect_pass(kPlain); }

TEST_P(VerifyTest, EightBitContent) {
  expect_pass(
      "From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>\r\n"
      "To: \xc3\xa9lodie@example.org\r\n"
      "Subject: Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
      "e \xe2\x98\x95\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: 8bit\r\n"
      "\r\n"
      "Gr\xc3\xbc\xc3\x9f"
      "e aus M\xc3\xbcnchen \xe2\x80\x94 \xf0\x9f\x8d\xba\r\n"
      "Latin-1 byte: \xe9\xff\x80\r\n");
}

TEST_P(VerifyTest, LongFoldedHeaders) {
  std::string to = "To: ";
  for (int i = 0; i < 30; ++i) {
    if (i > 0) to += ",\r\n\t";
    to += "recipient-number-";
    to += std::to_string(i);
    to += "@example.org";
  }
  to += "\r\n";
  std::string msg = "From: a@example.com\r\n";
  msg += to;
  msg +=
      "Subject: a subject that goes on and on and on well past the seventy-eight\r\n"
      "  character line   length \t limit\t \r\n"
      "\t   and is folded twice   \r\n"
      "Content-Type: multipart/alternative;\r\n"
      "\tboundary=\"b1\"\r\n"
      "\r\n"
      "--b1\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "part\r\n"
      "--b1--\r\n";
  expect_pass(msg);
}

TEST_P(VerifyTest, NoBody) {
  expect_pass("From: a@example.com\r\nTo: b@example.org\r\nSubject: header only\r\n");
  expect_pass("From: a@example.com\r\nTo: b@example.org\r\nSubject: empty body\r\n\r\n");
}

TEST_P(VerifyTest, TrailingBlankLines) {
  expect_pass("From: a@example.com\r\nSubject: t\r\n\r\ntext\r\n\r\n\r\n   \r\n\t\r\n\r\n");
  expect_pass("From: a@example.com\r\nSubject: t\r\n\r\n\r\n\r\n\r\n");  // only blank lines
}

TEST_P(VerifyTest, LastLineWithoutCrlf) {
  expect_pass("From: a@example.com\r\nSubject: t\r\n\r\nline one\r\nno final CRLF");
}

TEST_P(VerifyTest, LongLinesAndLargeBody) {
  std::string msg = "From: a@example.com\r\nSubject: big\r\n\r\n";
  msg += std::string(10000, 'x');  // one run longer than the hashing buffer
  msg += "\r\n";
  for (int i = 0; i < 20000; ++i) {
    msg += "line ";
    msg += std::to_string(i);
    msg += (i % 7 == 0) ? "  \t trailing \r\n" : " of a larger body\r\n";
  }
  expect_pass(msg);
}

TEST_P(VerifyTest, MultipleInstancesBottomUp) {
  SignerOptions o;
  o.domain = "example.com";
  o.selector = signer().selector();
  o.algorithm = GetParam().algorithm;
  o.private_key_pem = o.algorithm == Algorithm::RsaSha256 ? keys().rsa2048 : keys().ed25519;
  o.headers = {"from", "subject", "x-trace"};
  auto s = Signer::create(o);
  ASSERT_TRUE(s.has_value());
  signer_ = std::make_unique<Signer>(std::move(*s));
  const std::string msg =
      "X-Trace: first\r\n"
      "From: a@example.com\r\n"
      "X-Trace: second\r\n"
      "Subject: s\r\n"
      "X-Trace: third\r\n"
      "\r\n"
      "body\r\n";
  expect_pass(msg);
  // Order matters: swapping two instances breaks the signature.
  expect_fail_after_edit(msg, "X-Trace: first", "X-Trace: third");
  expect_fail_after_edit(msg, "X-Trace: second\r\nSubject: s\r\nX-Trace: third",
                         "X-Trace: third\r\nSubject: s\r\nX-Trace: second");
}

TEST_P(VerifyTest, TamperingFails) {
  expect_fail_after_edit(kPlain, "Alice\r\n", "Alicf\r\n");                   // body byte
  expect_fail_after_edit(kPlain, "Alice\r\n", "Alice\r\nP.S. more\r\n");      // body appended
  expect_fail_after_edit(kPlain, "Subject: Quarterly", "Subject: Quarterl");  // signed header
  expect_fail_after_edit(kPlain, "To: bob@", "To: eve@");                     // signed header
  // A second From (over-signed): the extra instance is hashed where a null one was.
  expect_fail_after_edit(kPlain, "X-Mailer: salvo\r\n",
                         "X-Mailer: salvo\r\nFrom: Mallory <m@evil.example>\r\n");
  // Adding a header that was absent at signing and is in the default set is NOT caught:
  // only present headers are signed (the documented choice).
}

TEST_P(VerifyTest, RelaxedToleratesWhitespaceAndUnsignedHeaders) {
  std::string s = signed_message(kPlain);
  // Whitespace changes inside lines and at line ends, a header unsigned and re-folded.
  s.replace(s.find("the numbers  are"), 16, "the numbers \t are");
  s.replace(s.find("X-Mailer: salvo"), 15, "X-Mailer: other");
  s.replace(s.find("Subject: Quarterly report"), 25, "subject:   Quarterly\r\n report  ");
  const auto v = verify(s);
  EXPECT_TRUE(v.pass) << v.log;
}

TEST_P(VerifyTest, WrongKeyFails) {
  const std::string s = signed_message(kPlain);
  auto other = public_key_record(
      GetParam().algorithm == Algorithm::RsaSha256 ? keys().rsa2048_other : keys().ed25519,
      GetParam().algorithm);
  ASSERT_TRUE(other.has_value());
  if (GetParam().algorithm == Algorithm::Ed25519Sha256) {
    // A different Ed25519 key: flip one character of p= instead of making a second key.
    std::string rec = *other;
    char& c = rec[rec.size() - 3];
    c = c == 'A' ? 'B' : 'A';
    other = rec;
  }
  const auto v = python_verify(s, *other, signer().record_name());
  EXPECT_FALSE(v.pass) << v.log;
}

INSTANTIATE_TEST_SUITE_P(Algorithms, VerifyTest,
                         ::testing::Values(Case{"RsaSha256", Algorithm::RsaSha256},
                                           Case{"Ed25519Sha256", Algorithm::Ed25519Sha256}),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

}  // namespace
}  // namespace salvo::dkim
