// SPDX-License-Identifier: Apache-2.0
// DestinationStats: counters, a minute of per-second deliveries, the last reply.
#include "outbound/destination_stats.h"

namespace salvo::outbound {
namespace {

std::int64_t second_of(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

void DestinationStats::add(const Tally& t, TimePoint now, std::string last_reply) {
  delivered_ += t.delivered;
  deferrals_ += t.deferred;
  bounced_ += t.bounced + t.expired;
  if (!last_reply.empty()) last_reply_ = std::move(last_reply);
  if (t.delivered == 0) return;
  const std::int64_t sec = second_of(now);
  const auto i = static_cast<std::size_t>(sec % 60);
  if (second_of_[i] != sec) {
    second_of_[i] = sec;
    per_second_[i] = 0;
  }
  per_second_[i] += static_cast<std::uint32_t>(t.delivered);
}

void DestinationStats::fill(DestinationInfo& d, TimePoint now) const {
  d.delivered = delivered_;
  d.deferrals = deferrals_;
  d.bounced = bounced_;
  const std::int64_t sec = second_of(now);
  for (std::size_t i = 0; i < 60; ++i) {
    const std::int64_t s = second_of_[i];
    if (s == sec - 1) d.delivered_last_s = per_second_[i];
    if (s >= sec - 60 && s < sec) d.delivered_last_60s += per_second_[i];
  }
  d.last_reply = last_reply_;
}

}  // namespace salvo::outbound
