// SPDX-License-Identifier: Apache-2.0
// Signer: options and key errors, the shape of the DKIM-Signature field (tags, h= selection,
// folding), body hashes of known bodies. Verification by python3-dkim is in verify_test.cc.
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/dkim/signer.h>

#include "dkim_test_util.h"

namespace salvo::dkim {
namespace {

using test::keys;

constexpr std::int64_t kTime = 1700000000;

SignerOptions rsa_options() {
  SignerOptions o;
  o.domain = "example.com";
  o.selector = "s2024";
  o.algorithm = Algorithm::RsaSha256;
  o.private_key_pem = keys().rsa2048;
  return o;
}

SignerOptions ed_options() {
  SignerOptions o = rsa_options();
  o.selector = "ed";
  o.algorithm = Algorithm::Ed25519Sha256;
  o.private_key_pem = keys().ed25519;
  return o;
}

Signer make(SignerOptions o) {
  auto s = Signer::create(std::move(o));
  if (!s) ADD_FAILURE() << s.error().message();
  return std::move(*s);
}

// Tags of a signature field: unfolded, split at ';', whitespace trimmed (RFC 6376 §3.2).
std::map<std::string, std::string> tags_of(const std::string& field) {
  std::string v = field.substr(field.find(':') + 1);
  std::string flat;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') {
      ++i;
      continue;
    }
    flat += v[i];
  }
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < flat.size()) {
    std::size_t semi = flat.find(';', pos);
    if (semi == std::string::npos) semi = flat.size();
    std::string spec = flat.substr(pos, semi - pos);
    pos = semi + 1;
    const std::size_t eq = spec.find('=');
    if (eq == std::string::npos) continue;
    auto trim = [](std::string s) {
      std::string r;
      for (char c : s) {
        if (c != ' ' && c != '\t') r += c;
      }
      return r;
    };
    out[trim(spec.substr(0, eq))] = trim(spec.substr(eq + 1));
  }
  return out;
}

std::string sign_ok(const Signer& s, std::string_view msg) {
  auto r = s.sign(msg, kTime);
  if (!r) {
    ADD_FAILURE() << r.error().message();
    return {};
  }
  return *r;
}

const std::string kMessage =
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    "Subject: hello\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "X-Mailer: salvo\r\n"
    "\r\n"
    "Hello\r\n";

TEST(Signer, FieldShape) {
  const Signer s = make(rsa_options());
  const std::string f = sign_ok(s, kMessage);
  ASSERT_TRUE(f.starts_with("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;"));
  ASSERT_TRUE(f.ends_with("\r\n"));
  EXPECT_EQ(f.find("\r\n"), f.find("\r\n\t")) << "every line break is a fold";
  // Every line under 78 characters with its CRLF.
  std::size_t start = 0;
  while (start < f.size()) {
    const std::size_t end = f.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start, 76u) << f;
    start = end + 2;
  }
  const auto t = tags_of(f);
  EXPECT_EQ(t.at("v"), "1");
  EXPECT_EQ(t.at("d"), "example.com");
  EXPECT_EQ(t.at("s"), "s2024");
  EXPECT_EQ(t.at("t"), "1700000000");
  EXPECT_EQ(t.at("h"), "from:from:to:subject:date:message-id");
  EXPECT_EQ(t.at("bh"), "Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=");  // sha256("Hello\r\n")
  EXPECT_EQ(t.at("b").size(), 344u);                                      // 256 bytes in base64
  EXPECT_EQ(t.count("l"), 0u);
  EXPECT_EQ(t.count("x"), 0u);
}

TEST(Signer, Ed25519FieldShape) {
  const Signer s = make(ed_options());
  const auto t = tags_of(sign_ok(s, kMessage));
  EXPECT_EQ(t.at("a"), "ed25519-sha256");
  EXPECT_EQ(t.at("b").size(), 88u);  // 64 bytes in base64
  EXPECT_TRUE(s.public_key_record().starts_with("v=DKIM1; k=ed25519; p="));
  EXPECT_EQ(s.public_key_record().size(), std::string("v=DKIM1; k=ed25519; p=").size() + 44);
}

TEST(Signer, Ed25519IsDeterministic) {
  const Signer s = make(ed_options());
  EXPECT_EQ(sign_ok(s, kMessage), sign_ok(s, kMessage));
}

TEST(Signer, EmptyBodyHashesNothing) {
  // Relaxed: an empty body canonicalizes to the empty string (RFC 6376 §3.4.4), so bh= is
  // SHA-256 of nothing. (The CRLF hash, frcCV1k9..., belongs to "simple".)
  const Signer s = make(rsa_options());
  const char* kEmpty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  EXPECT_EQ(tags_of(sign_ok(s, "From: a@example.com\r\n\r\n")).at("bh"), kEmpty);
  EXPECT_EQ(tags_of(sign_ok(s, "From: a@example.com\r\n")).at("bh"), kEmpty);
  EXPECT_EQ(tags_of(sign_ok(s, "From: a@example.com\r\n\r\n\r\n \r\n\r\n")).at("bh"), kEmpty);
}

TEST(Signer, Rfc6376ExampleBodyHash) {
  const Signer s = make(rsa_options());
  const auto t = tags_of(sign_ok(s, "From: a@example.com\r\n\r\n C \r\nD \t E\r\n\r\n\r\n"));
  EXPECT_EQ(t.at("bh"), "unak6JHq0wL+Q1HP7dW1tjBx9FLA6DffoZ0qrLwbbpo=");  // sha256(" C\r\nD E\r\n")
}

TEST(Signer, HeaderSelection) {
  SignerOptions o = rsa_options();
  o.headers = {"Subject", "TO", "x-tag", "subject", "not-present"};
  const Signer s = make(o);
  const std::string msg =
      "X-Tag: one\r\n"
      "From: a@example.com\r\n"
      "to: b@example.org\r\n"
      "X-TAG: two\r\n"
      "Subject: s\r\n"
      "x-tag: three\r\n"
      "\r\n"
      "body\r\n";
  // Configured order, lower-cased, duplicates dropped, From put first; one entry per
  // instance present, absent names left out, From once more than it occurs.
  EXPECT_EQ(tags_of(sign_ok(s, msg)).at("h"), "from:from:subject:to:x-tag:x-tag:x-tag");
  o.oversign_from = false;
  const Signer plain = make(o);
  EXPECT_EQ(tags_of(sign_ok(plain, msg)).at("h"), "from:subject:to:x-tag:x-tag:x-tag");
}

TEST(Signer, LongHeaderListFolds) {
  SignerOptions o = rsa_options();
  o.headers.clear();
  std::string msg = "From: a@example.com\r\n";
  for (int i = 0; i < 40; ++i) {
    std::string name = "x-some-longish-header-name-";
    name += std::to_string(i);
    o.headers.push_back(name);
    msg += name;
    msg += ": v\r\n";
  }
  msg += "\r\nb\r\n";
  std::string want_h = "from:from";
  for (const std::string& name : o.headers) {
    want_h += ':';
    want_h += name;
  }
  const std::string f = sign_ok(make(o), msg);
  std::size_t start = 0;
  while (start < f.size()) {
    const std::size_t end = f.find("\r\n", start);
    EXPECT_LE(end - start, 76u);
    start = end + 2;
  }
  EXPECT_EQ(tags_of(f).at("h"), want_h);
}

TEST(Signer, PublicKeyRecord) {
  const Signer s = make(rsa_options());
  EXPECT_EQ(s.record_name(), "s2024._domainkey.example.com");
  EXPECT_TRUE(s.public_key_record().starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"))
      << s.public_key_record();
  auto r = public_key_record(keys().rsa2048, Algorithm::RsaSha256);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, s.public_key_record());
  // PKCS#1 and PKCS#8 forms of one key give one record.
  auto r1 = public_key_record(keys().rsa2048_pkcs1, Algorithm::RsaSha256);
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(*r1, *r);
  auto other = public_key_record(keys().rsa2048_other, Algorithm::RsaSha256);
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(*other, *r);
  EXPECT_EQ(to_string(Algorithm::RsaSha256), "rsa-sha256");
  EXPECT_EQ(to_string(Algorithm::Ed25519Sha256), "ed25519-sha256");
}

// Shards share one Signer: signatures made on several threads at once are the ones made
// alone (RSASSA-PKCS1-v1_5 and Ed25519 are deterministic; blinding does not change them).
TEST(Signer, ManyThreadsSignWithOneSigner) {
  for (const SignerOptions& o : {rsa_options(), ed_options()}) {
    const Signer s = make(o);
    const std::string alone = sign_ok(s, kMessage);
    std::vector<std::vector<std::string>> got(4);
    std::vector<std::thread> threads;
    for (auto& g : got) {
      threads.emplace_back([&s, &g] {
        for (int i = 0; i < 40; ++i) {
          auto r = s.sign(kMessage, kTime);
          g.push_back(r ? *r : std::string("error: ") + r.error().message());
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& g : got) {
      ASSERT_EQ(g.size(), 40u);
      for (const auto& f : g) EXPECT_EQ(f, alone) << to_string(o.algorithm);
    }
  }
}

TEST(Signer, SignerIsMovable) {
  Signer a = make(rsa_options());
  Signer b = std::move(a);
  EXPECT_EQ(b.domain(), "example.com");
  EXPECT_EQ(b.selector(), "s2024");
  EXPECT_EQ(b.algorithm(), Algorithm::RsaSha256);
  EXPECT_TRUE(b.sign(kMessage, kTime).has_value());
}

errc create_error(SignerOptions o) {
  auto s = Signer::create(std::move(o));
  EXPECT_FALSE(s.has_value());
  if (s) return errc{};
  EXPECT_EQ(&s.error().category(), &error_category());
  EXPECT_FALSE(s.error().message().empty());
  return static_cast<errc>(s.error().value());
}

TEST(SignerErrors, BadKeys) {
  SignerOptions o = rsa_options();
  o.private_key_pem = "garbage";
  EXPECT_EQ(create_error(o), errc::bad_pem);
  o.private_key_pem = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
  EXPECT_EQ(create_error(o), errc::unsupported_key);  // PEM armour around no key
  o.private_key_pem = "";
  EXPECT_EQ(create_error(o), errc::bad_pem);
  o.private_key_pem = keys().ed25519;  // Ed25519 key, rsa-sha256
  EXPECT_EQ(create_error(o), errc::wrong_key_type);
  o.private_key_pem = keys().rsa512;
  EXPECT_EQ(create_error(o), errc::rsa_key_too_small);
  o.private_key_pem = keys().rsa_encrypted;
  EXPECT_EQ(create_error(o), errc::encrypted_key);
  o.private_key_pem = keys().ec_p256;
  EXPECT_EQ(create_error(o), errc::unsupported_key);

  SignerOptions e = ed_options();
  e.private_key_pem = keys().rsa2048;  // RSA key, ed25519-sha256
  EXPECT_EQ(create_error(e), errc::wrong_key_type);
  e.private_key_pem = keys().ec_p256;
  EXPECT_EQ(create_error(e), errc::unsupported_key);
  e.private_key_pem = "garbage";
  EXPECT_EQ(create_error(e), errc::bad_pem);
  EXPECT_EQ(public_key_record("garbage", Algorithm::RsaSha256).error(),
            make_error_code(errc::bad_pem));

  EXPECT_EQ(make_error_code(errc::wrong_key_type).message(),
            "DKIM private key type does not match the algorithm");
}

TEST(SignerErrors, BadOptions) {
  SignerOptions o = rsa_options();
  o.domain = "";
  EXPECT_EQ(create_error(o), errc::bad_domain);
  o.domain = "exa mple.com";
  EXPECT_EQ(create_error(o), errc::bad_domain);
  o.domain = "example..com";
  EXPECT_EQ(create_error(o), errc::bad_domain);
  o.domain = "example.com;";
  EXPECT_EQ(create_error(o), errc::bad_domain);
  o = rsa_options();
  o.selector = "";
  EXPECT_EQ(create_error(o), errc::bad_selector);
  o.selector = "a=b";
  EXPECT_EQ(create_error(o), errc::bad_selector);
  o = rsa_options();
  o.headers = {"from", ""};
  EXPECT_EQ(create_error(o), errc::bad_header_name);
  o.headers = {"sub:ject"};
  EXPECT_EQ(create_error(o), errc::bad_header_name);
  o.headers = {"sub ject"};
  EXPECT_EQ(create_error(o), errc::bad_header_name);
}

TEST(SignerErrors, BadMessages) {
  const Signer s = make(rsa_options());
  auto r = s.sign("To: b@example.org\r\nSubject: no from\r\n\r\nbody\r\n", kTime);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), make_error_code(errc::no_from_header));
  r = s.sign("", kTime);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), make_error_code(errc::no_from_header));
  r = s.sign("From: a@example.com\nTo: b@example.org\n\nbody\n", kTime);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), make_error_code(errc::bare_lf));
  // A bare LF in the body is content, not an error.
  EXPECT_TRUE(s.sign("From: a@example.com\r\n\r\nline\nline\r\n", kTime).has_value());
}

}  // namespace
}  // namespace salvo::dkim
