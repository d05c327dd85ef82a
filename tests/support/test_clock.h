// SPDX-License-Identifier: Apache-2.0
// TestClock: a salvo::Clock that moves only when told (Envoy "hermetic and deterministic
// tests"). Single-threaded, like the shard code it drives.
#pragma once

#include <chrono>

#include <salvo/base/clock.h>

namespace salvo::test {

class TestClock final : public Clock {
 public:
  // Starts at an arbitrary non-zero monotonic time and at 2026-01-01T00:00:00Z.
  TestClock()
      : now_(TimePoint(std::chrono::hours(1))),
        wall_(WallTime(std::chrono::seconds(1767225600))) {}

  TimePoint now() const noexcept override { return now_; }
  WallTime wall_now() const noexcept override { return wall_; }

  // Moves both clocks forward by d (d >= 0).
  void advance(Duration d) noexcept {
    now_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }

 private:
  TimePoint now_;
  WallTime wall_;
};

}  // namespace salvo::test
