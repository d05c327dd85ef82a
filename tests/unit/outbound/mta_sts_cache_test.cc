// SPDX-License-Identifier: Apache-2.0
// MtaStsCache on scripted DNS and HTTPS seams and a test clock: a first lookup waits, a
// cached policy answers at once, no policy is a cached negative answer, an expired policy
// is never used, a new TXT id brings a new fetch, and failures keep what is cached.
#include "outbound/mta_sts_cache.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "support/test_clock.h"

namespace salvo::outbound {
namespace {

using namespace std::chrono_literals;

class MtaStsCacheTest : public ::testing::Test {
 protected:
  MtaStsCacheTest()
      : cache_(clock_, options(),
               [this](std::string_view name, dns::Querier::Callback cb) {
                 txt_names_.emplace_back(name);
                 txt_waiting_.push_back(std::move(cb));
               },
               [this](const std::string& domain, StsFetchCallback cb) {
                 fetched_.push_back(domain);
                 fetch_waiting_.push_back(std::move(cb));
               },
               [this](const std::string& domain) {
                 EXPECT_EQ(domain, "a.test");
                 ++called_;
               }) {}

  static MtaStsCacheOptions options() {
    MtaStsCacheOptions o;
    o.min_ttl = 1s;
    o.max_ttl = 1h;
    o.negative_ttl = 5min;
    return o;
  }
  // The TXT query waiting answers with these records (TTL 60 s), or NXDOMAIN (SOA 120 s).
  void answer_txt(std::vector<std::string> records) {
    ASSERT_FALSE(txt_waiting_.empty());
    dns::Answer a;
    if (records.empty()) {
      a.rcode = dns::Rcode::NxDomain;
      a.negative_ttl = 120;
    }
    for (auto& r : records) a.txt.push_back({std::move(r), 60});
    auto cb = std::move(txt_waiting_.front());
    txt_waiting_.pop_front();
    cb(std::move(a));
  }
  void fail_txt() {
    auto cb = std::move(txt_waiting_.front());
    txt_waiting_.pop_front();
    cb(std::unexpected(make_error_code(std::errc::timed_out)));
  }
  void answer_fetch(StsFetchResult r) {
    ASSERT_FALSE(fetch_waiting_.empty());
    auto cb = std::move(fetch_waiting_.front());
    fetch_waiting_.pop_front();
    cb(std::move(r));
  }
  std::optional<StsPolicyPtr> get() {
    return cache_.get("a.test");
  }

  test::TestClock clock_;
  MtaStsCache cache_;
  std::vector<std::string> txt_names_, fetched_;
  std::deque<dns::Querier::Callback> txt_waiting_;
  std::deque<StsFetchCallback> fetch_waiting_;
  int called_ = 0;
};

constexpr char kEnforce[] = "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 600\n";

TEST_F(MtaStsCacheTest, FirstLookupWaitsThenTheCachedPolicyAnswersAtOnce) {
  EXPECT_FALSE(get().has_value());
  EXPECT_FALSE(get().has_value());  // a second caller joins the same lookup
  ASSERT_EQ(txt_names_, std::vector<std::string>{"_mta-sts.a.test"});
  answer_txt({"v=spf1 -all", "v=STSv1; id=1;"});
  ASSERT_EQ(fetched_, std::vector<std::string>{"a.test"});
  EXPECT_EQ(called_, 0);
  answer_fetch(std::string(kEnforce));
  EXPECT_EQ(called_, 1);  // once for the domain, however many waited
  auto p = get();
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->mode, StsMode::Enforce);
  EXPECT_EQ((*p)->id, "1");
  EXPECT_EQ(cache_.stats().hits, 1u);
  EXPECT_EQ(cache_.stats().misses, 1u);  // one wait, though asked twice
  EXPECT_EQ(txt_names_.size(), 1u);
}

TEST_F(MtaStsCacheTest, NoPolicyIsOneCachedNegativeAnswer) {
  EXPECT_FALSE(get().has_value());
  answer_txt({});
  auto p = get();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, nullptr);
  clock_.advance(119s);
  EXPECT_EQ(*get(), nullptr);
  EXPECT_EQ(txt_names_.size(), 1u) << "cached for the SOA's negative TTL";
  clock_.advance(2s);
  EXPECT_EQ(*get(), nullptr);  // answered from the cache, asked again beside it
  EXPECT_EQ(txt_names_.size(), 2u);
  EXPECT_TRUE(fetched_.empty());
}

TEST_F(MtaStsCacheTest, ANewIdIsFetchedTheSameIdIsNot) {
  get();
  answer_txt({"v=STSv1; id=1;"});
  answer_fetch(std::string(kEnforce));
  clock_.advance(61s);  // the TXT record's TTL
  EXPECT_TRUE(*get());
  answer_txt({"v=STSv1; id=1;"});
  EXPECT_EQ(fetched_.size(), 1u);
  clock_.advance(61s);
  EXPECT_TRUE(*get());
  answer_txt({"v=STSv1; id=2;"});
  ASSERT_EQ(fetched_.size(), 2u);
  answer_fetch(std::string("version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 600\n"));
  EXPECT_EQ((*get())->mode, StsMode::Testing);
}

TEST_F(MtaStsCacheTest, AnExpiredPolicyIsNeverUsedAndFailuresKeepAFreshOne) {
  get();
  answer_txt({"v=STSv1; id=1;"});
  answer_fetch(std::string(kEnforce));
  // At half its age a refetch starts; it fails: the cached policy stays.
  clock_.advance(301s);
  EXPECT_TRUE(*get());
  answer_txt({"v=STSv1; id=1;"});
  ASSERT_EQ(fetched_.size(), 2u);
  answer_fetch(std::unexpected(std::string("connect failed")));
  EXPECT_TRUE(*get());
  // The TXT record vanishes: still the cached policy (RFC 8461 §5.1).
  clock_.advance(61s);
  EXPECT_TRUE(*get());
  fail_txt();
  EXPECT_TRUE(*get());
  // Past max_age it is gone: the next caller waits for a new lookup.
  clock_.advance(300s);
  EXPECT_FALSE(get().has_value());
  answer_txt({});
  EXPECT_EQ(*get(), nullptr);
}

TEST_F(MtaStsCacheTest, ABadPolicyOrModeNoneIsNoPolicy) {
  get();
  answer_txt({"v=STSv1; id=1;"});
  answer_fetch(std::string("version: STSv1\nmode: sometimes\n"));
  EXPECT_EQ(*get(), nullptr);
  EXPECT_EQ(cache_.stats().fetch_failures, 1u);
  clock_.advance(61s);
  get();
  answer_txt({"v=STSv1; id=2;"});
  answer_fetch(std::string("version: STSv1\nmode: none\nmax_age: 600\n"));
  EXPECT_EQ(*get(), nullptr);
}

}  // namespace
}  // namespace salvo::outbound
