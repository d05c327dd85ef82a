// SPDX-License-Identifier: Apache-2.0
// HttpAccess and TokenSet: the token file's syntax and permissions, the constant-time
// membership test, and each check (Host, Origin, Content-Type, bearer token) in its order.
#include <salvo/admin/http_access.h>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

namespace salvo::admin {
namespace {

namespace fs = std::filesystem;

const std::string kA = "token-a-0123456789abcdef";
const std::string kB = "dG9rZW4tYi0wMTIzNDU2Nzg5/+=";

std::string thrown(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenSet, OneALineWithCommentsBlanksCrlfAndSpaces) {
  TokenSet t = TokenSet::parse("# operators\n\n  " + kA + " \t\r\n#" + kB + "\n" + kB, "f");
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.contains(kA));
  EXPECT_TRUE(t.contains(kB));
  EXPECT_FALSE(t.contains("#" + kB));
  EXPECT_FALSE(t.contains(""));
  EXPECT_FALSE(t.contains(kA.substr(0, kA.size() - 1)));
  EXPECT_FALSE(t.contains(kA + "0"));
  EXPECT_FALSE(t.contains(std::string(kA.size(), 'x')));
  EXPECT_FALSE(t.contains(std::string(TokenSet::kMaxLength + 1, 'a')));
  EXPECT_TRUE(TokenSet::parse("# nothing\n\n", "f").empty());
}

TEST(TokenSet, MalformedTokensNameTheLineNotTheToken) {
  const std::string e = thrown([] { TokenSet::parse("# x\n" + kA + "\nshort-token\n", "/etc/t"); });
  EXPECT_EQ(e.find("http.token_file /etc/t: line 3: a token is 16 to 256 characters"), 0u) << e;
  EXPECT_EQ(e.find("short-token"), std::string::npos) << e;
  EXPECT_NE(thrown([] { TokenSet::parse("has a space in it 0123456789\n", "f"); }), "");
  EXPECT_NE(thrown([] { TokenSet::parse("=0123456789abcdef0123\n", "f"); }), "");
  EXPECT_NE(thrown([] { TokenSet::parse("0123456789abcdef=0123\n", "f"); }), "");
  EXPECT_NE(thrown([] { TokenSet::parse(std::string(TokenSet::kMaxLength + 1, 'a'), "f"); }), "");
  EXPECT_EQ(TokenSet::parse(std::string(TokenSet::kMaxLength, 'a'), "f").size(), 1u);
  EXPECT_EQ(TokenSet::parse(std::string(TokenSet::kMinLength, 'a') + "==", "f").size(), 1u);
}

class TokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("salvo-token-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text, unsigned mode) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), static_cast<mode_t>(mode)), 0);
    return path;
  }
  fs::path dir_;
};

TEST_F(TokenFile, OwnerOrGroupReadableOnly) {
  for (unsigned mode : {0600u, 0640u, 0400u, 0440u}) {
    EXPECT_EQ(TokenSet::load(write("ok", kA + "\n", mode)).size(), 1u) << std::oct << mode;
  }
  for (unsigned mode : {0644u, 0604u, 0660u, 0620u, 0601u, 0666u}) {
    const std::string path = write("bad", kA + "\n", mode);
    const std::string e = thrown([&] { TokenSet::load(path); });
    EXPECT_EQ(e.find("http.token_file " + path + ": mode 0"), 0u) << e;
    EXPECT_NE(e.find("chmod 0600"), std::string::npos) << e;
  }
}

TEST_F(TokenFile, UnreadableEmptyOrNotAFileIsRefused) {
  const std::string missing = (dir_ / "missing").string();
  EXPECT_EQ(thrown([&] { TokenSet::load(missing); }),
            "http.token_file " + missing + ": cannot be read: No such file or directory");
  const std::string empty = write("empty", "# later\n\n", 0600);
  EXPECT_NE(thrown([&] { TokenSet::load(empty); }).find("holds no token"), std::string::npos);
  EXPECT_NE(thrown([&] { TokenSet::load(dir_.string()); }).find("not a regular file"),
            std::string::npos);
  const std::string big = write("big", std::string(2 << 20, '#'), 0600);
  EXPECT_NE(thrown([&] { TokenSet::load(big); }).find("larger than 1 MiB"), std::string::npos);
}

TEST(HttpAccess, LoopbackHostNames) {
  for (const char* h : {"localhost", "LOCALHOST:8080", "localhost.", "127.0.0.1", "127.0.0.1:80",
                        "127.9.9.9:65535", "[::1]", "[::1]:8080", "localhost:"}) {
    EXPECT_TRUE(HttpAccess::is_loopback_host(h)) << h;
  }
  for (const char* h : {"", "evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                        "localhost.evil.example", "10.0.0.1:80", "[::2]:80", "[::1", "::1",
                        "127.0.0.1:80:80", "127.0.0.1:8o", "127.1", "0.0.0.0", "[::]:80",
                        "127.0.0.1:1234567"}) {
    EXPECT_FALSE(HttpAccess::is_loopback_host(h)) << h;
  }
}

TEST(HttpAccess, BearerCredentialsAndJson) {
  EXPECT_EQ(HttpAccess::bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(HttpAccess::bearer_token("bEaReR   abc  "), "abc");
  EXPECT_EQ(HttpAccess::bearer_token("Bearer"), "");
  EXPECT_EQ(HttpAccess::bearer_token("Bearer "), "");
  EXPECT_EQ(HttpAccess::bearer_token("Bearerabc"), "");
  EXPECT_EQ(HttpAccess::bearer_token("Basic abc"), "");
  EXPECT_EQ(HttpAccess::bearer_token("Bearer a b"), "");
  EXPECT_TRUE(HttpAccess::is_json("application/json"));
  EXPECT_TRUE(HttpAccess::is_json("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(HttpAccess::is_json(" application/json ;x=y"));
  EXPECT_FALSE(HttpAccess::is_json("application/jsonp"));
  EXPECT_FALSE(HttpAccess::is_json("text/plain"));
  EXPECT_FALSE(HttpAccess::is_json("application/x-www-form-urlencoded"));
  EXPECT_FALSE(HttpAccess::is_json(""));
}

HttpAccess access(HttpAccess::Listener listener, std::vector<std::string> origins = {}) {
  return HttpAccess(TokenSet::parse(kA + "\n" + kB + "\n", "t"), std::move(origins), listener);
}

RequestHead status(std::optional<std::string_view> token = kA) {
  RequestHead r;
  r.path = "/api/v1/status";
  r.host = "127.0.0.1:8080";
  static std::deque<std::string> headers;  // the views stay valid for the whole test run
  if (token) r.authorization = headers.emplace_back("Bearer " + std::string(*token));
  return r;
}

TEST(HttpAccess, TokenRequiredAndCompared) {
  const HttpAccess a = access(HttpAccess::Listener::Loopback);
  EXPECT_EQ(a.check(status()), Access::Allowed);
  EXPECT_EQ(a.check(status(kB)), Access::Allowed);
  EXPECT_EQ(a.check(status(std::nullopt)), Access::MissingToken);
  EXPECT_EQ(a.check(status("wrong-wrong-wrong-wrong")), Access::InvalidToken);
  RequestHead basic = status(std::nullopt);
  const std::string basic_header = "Basic " + kA;  // outlives the view
  basic.authorization = basic_header;
  EXPECT_EQ(a.check(basic), Access::InvalidToken);
  const HttpAccess none(TokenSet{}, {}, HttpAccess::Listener::Loopback);
  EXPECT_EQ(none.check(status()), Access::NoTokens);
  RequestHead twice = status();
  twice.duplicate = true;
  EXPECT_EQ(a.check(twice), Access::Ambiguous);
}

TEST(HttpAccess, HostIsCheckedOnLoopbackListenersOnly) {
  RequestHead r = status();
  r.host = "evil.example:8080";
  EXPECT_EQ(access(HttpAccess::Listener::Loopback).check(r), Access::ForbiddenHost);
  EXPECT_EQ(access(HttpAccess::Listener::Other).check(r), Access::Allowed);
  r.host = std::nullopt;  // HTTP/1.0: a program, not a browser
  EXPECT_EQ(access(HttpAccess::Listener::Loopback).check(r), Access::Allowed);
  // Checked before the token: a rebound page is told nothing about tokens.
  RequestHead anon = status(std::nullopt);
  anon.host = "evil.example";
  EXPECT_EQ(access(HttpAccess::Listener::Loopback).check(anon), Access::ForbiddenHost);
}

TEST(HttpAccess, OriginMustBeTheServersOwnOrAllowed) {
  const HttpAccess a = access(HttpAccess::Listener::Other, {"https://ops.example.com"});
  RequestHead r = status();
  r.host = "mta1.example.net:8080";
  for (const char* ok : {"http://mta1.example.net:8080", "HTTPS://MTA1.example.net:8080",
                         "https://ops.example.com", "https://OPS.example.com"}) {
    r.origin = ok;
    EXPECT_EQ(a.check(r), Access::Allowed) << ok;
  }
  for (const char* bad : {"http://evil.example", "null", "", "http://mta1.example.net",
                          "http://mta1.example.net:8080/", "https://ops.example.com:8443",
                          "http://ops.example.com", "mta1.example.net:8080"}) {
    r.origin = bad;
    EXPECT_EQ(a.check(r), Access::ForbiddenOrigin) << bad;
  }
  r.host = std::nullopt;  // no Host to be the origin of
  r.origin = "http://mta1.example.net:8080";
  EXPECT_EQ(a.check(r), Access::ForbiddenOrigin);
  // Even with a valid token; and before the token is looked at.
  RequestHead anon = status(std::nullopt);
  anon.origin = "http://evil.example";
  EXPECT_EQ(a.check(anon), Access::ForbiddenOrigin);
}

TEST(HttpAccess, InjectTakesJsonOnlyCheckedBeforeTheToken) {
  const HttpAccess a = access(HttpAccess::Listener::Loopback);
  RequestHead r = status();
  r.post = true;
  r.path = "/api/v1/inject";
  EXPECT_EQ(a.check(r), Access::UnsupportedMedia);  // no Content-Type
  r.content_type = "text/plain";
  EXPECT_EQ(a.check(r), Access::UnsupportedMedia);
  r.authorization = std::nullopt;
  EXPECT_EQ(a.check(r), Access::UnsupportedMedia);
  r.content_type = "application/json; charset=utf-8";
  EXPECT_EQ(a.check(r), Access::MissingToken);
  r = status();
  r.post = true;
  r.path = "/api/v1/inject";
  r.content_type = "application/json";
  EXPECT_EQ(a.check(r), Access::Allowed);
  // Other paths and methods are not held to it.
  RequestHead get = status();
  get.path = "/api/v1/inject";
  EXPECT_EQ(a.check(get), Access::Allowed);
}

TEST(HttpAccess, FromConfigReadsTheFileAndTheListener) {
  config::Http h;
  h.address = config::HostPort{"127.0.0.1", 8080};
  const HttpAccess none = HttpAccess::from_config(h);
  EXPECT_EQ(none.token_count(), 0u);
  RequestHead r = status();
  r.host = "evil.example";
  EXPECT_EQ(none.check(r), Access::ForbiddenHost);
  h.address = config::HostPort{"192.0.2.1", 8080};
  h.token_file = "/nonexistent/salvo-tokens";
  EXPECT_NE(thrown([&] { (void)HttpAccess::from_config(h); }).find("http.token_file"),
            std::string::npos);
}

}  // namespace
}  // namespace salvo::admin
