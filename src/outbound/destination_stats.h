// SPDX-License-Identifier: Apache-2.0
// DestinationStats: what the operator sees of one destination (salvoctl domains, the
// dashboard): counters since start, deliveries per second over the last minute, the last
// reply. Owner: the destination's shard.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <salvo/base/clock.h>
#include <salvo/outbound/outbound.h>

namespace salvo::outbound {

struct Tally {
  std::uint64_t delivered = 0;
  std::uint64_t deferred = 0;
  std::uint64_t bounced = 0;
  std::uint64_t expired = 0;
};

class DestinationStats {
 public:
  // One settled transaction: its counts, at `now`, and its last reply.
  void add(const Tally& t, TimePoint now, std::string last_reply);
  // Fills the counters, rates and last reply of `info`.
  void fill(DestinationInfo& info, TimePoint now) const;

 private:
  std::uint64_t delivered_ = 0, deferrals_ = 0, bounced_ = 0;
  std::array<std::uint32_t, 60> per_second_{};  // deliveries per second, a minute's ring
  std::array<std::int64_t, 60> second_of_{};
  std::string last_reply_;
};

}  // namespace salvo::outbound
