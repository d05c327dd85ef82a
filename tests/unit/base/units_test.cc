// SPDX-License-Identifier: Apache-2.0
#include <salvo/base/units.h>

#include <gtest/gtest.h>

namespace salvo {
namespace {

using namespace std::chrono_literals;

TEST(Units, Durations) {
  EXPECT_EQ(*parse_duration("250ms"), Duration(250ms));
  EXPECT_EQ(*parse_duration("30s"), Duration(30s));
  EXPECT_EQ(*parse_duration("5m"), Duration(5min));
  EXPECT_EQ(*parse_duration("4d"), Duration(96h));
  EXPECT_EQ(*parse_duration("0s"), Duration(0));
}

TEST(Units, BadDurations) {
  for (auto bad : {"", "s", "10", "10 s", "-1s", "1.5s", "10x", "99999999999999999999s"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
  EXPECT_EQ(parse_duration("9999999999999d").error(), std::make_error_code(std::errc::value_too_large));
}

TEST(Units, Sizes) {
  EXPECT_EQ(*parse_size("512"), 512u);
  EXPECT_EQ(*parse_size("10KB"), 10000u);
  EXPECT_EQ(*parse_size("50MB"), 50'000'000u);
  EXPECT_EQ(*parse_size("1GiB"), 1ull << 30);
  EXPECT_FALSE(parse_size("1TB").has_value());
  EXPECT_FALSE(parse_size("99999999999999999999").has_value());
  EXPECT_FALSE(parse_size("18446744073709551615GiB").has_value());
}

TEST(Units, Rates) {
  EXPECT_EQ(*parse_rate("500/s"), (Rate{500, Duration(1s)}));
  EXPECT_EQ(*parse_rate("20000/h"), (Rate{20000, Duration(1h)}));
  EXPECT_EQ(*parse_rate("100/m"), (Rate{100, Duration(1min)}));
  EXPECT_EQ(*parse_rate("7/d"), (Rate{7, Duration(24h)}));
  EXPECT_EQ(*parse_rate("10/5s"), (Rate{10, Duration(5s)}));
  EXPECT_DOUBLE_EQ(parse_rate("20000/h")->per_second(), 20000.0 / 3600);
  EXPECT_DOUBLE_EQ(parse_rate("10/5s")->per_second(), 2.0);
}

TEST(Units, BadRates) {
  for (auto bad : {"", "/", "500", "500/", "/s", "0/s", "10/0s", "-1/s", "1.5/s", "10/x", "10 /s",
                   "10/ s", "10s/s", "10/s/s", "99999999999999999999/s"}) {
    EXPECT_FALSE(parse_rate(bad).has_value()) << bad;
  }
  EXPECT_EQ(parse_rate("1/9999999999999d").error(),
            std::make_error_code(std::errc::value_too_large));
}

TEST(Units, FormatDuration) {
  EXPECT_EQ(format_duration(Duration(1500ms)), "1.5s");
  EXPECT_EQ(format_duration(Duration(250us)), "250us");
}

}  // namespace
}  // namespace salvo
