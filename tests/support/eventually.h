// SPDX-License-Identifier: Apache-2.0
// eventually(pred, timeout): polls pred every 50 ms until it holds or the timeout passes
// (then one last look), for integration tests that wait on another process's state.
#pragma once

#include <chrono>
#include <thread>

namespace salvo::test {

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

}  // namespace salvo::test
