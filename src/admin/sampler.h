// SPDX-License-Identifier: Apache-2.0
// Sampler: the once-a-second samples the control thread keeps of the whole node, for the
// rates (last second, last minute), each shard's loop utilisation and the dashboard's
// history. A sample is kept only when every shard answered: a missing shard would make
// the sums, and so the rates, jump down and back. Time is passed in.
//
// Owner: the control thread.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include <salvo/admin/control.h>

namespace salvo::admin {

class Sampler {
 public:
  struct Sample {
    double t = 0;        // steady seconds
    double wall = 0;     // unix seconds (the dashboard's chart)
    std::uint64_t in = 0;        // recipients received
    std::uint64_t out = 0;       // recipients delivered
    std::uint64_t queued = 0;    // live recipients in the spools
    std::uint64_t in_flight = 0;
    std::vector<std::uint64_t> blocked;  // per shard: ShardAnswer::blocked_ns
  };
  struct Rates {
    double in_1s = 0, out_1s = 0, in_1m = 0, out_1m = 0;
  };
  struct Point {
    double t = 0;  // unix seconds
    double in = 0, out = 0;  // per second since the sample before
    std::uint64_t queued = 0;
  };

  // Adds a sample of `answers` taken at (t, wall); returns it (kept or not).
  Sample add(const std::vector<ShardAnswer>& answers, double t, double wall);
  Rates rates() const;
  // Per shard, over the last interval: 1 - blocked time / elapsed; -1 until two samples.
  std::vector<double> utilisation(std::size_t shards) const;
  std::vector<Point> history() const;
  std::size_t size() const noexcept { return samples_.size(); }

  static constexpr std::size_t kKept = 62;  // a minute of intervals, and one more

 private:
  std::deque<Sample> samples_;
};

// What one answer counts, as the sampler and the status view read it.
std::uint64_t received_recipients(const ShardAnswer& a);
std::uint64_t delivered_recipients(const ShardAnswer& a);
std::uint64_t spool_recipients(const ShardAnswer& a);

}  // namespace salvo::admin
