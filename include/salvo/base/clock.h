// SPDX-License-Identifier: Apache-2.0
// Time is passed in: pure (layer 1) modules take TimePoints, services take a
// Clock&. SystemClock reads the kernel; tests use tests/support/test_clock.h.
#pragma once

#include <chrono>

namespace salvo {

using MonoClock = std::chrono::steady_clock;
using TimePoint = MonoClock::time_point;
using Duration = std::chrono::nanoseconds;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const noexcept = 0;
  virtual WallTime wall_now() const noexcept = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const noexcept override { return MonoClock::now(); }
  WallTime wall_now() const noexcept override { return std::chrono::system_clock::now(); }
};

}  // namespace salvo
