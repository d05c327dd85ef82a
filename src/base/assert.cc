// SPDX-License-Identifier: Apache-2.0
// Failure paths of SALVO_CHECK / SALVO_BUG: message, backtrace, abort or count.
#include <salvo/base/assert.h>

#include <execinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace salvo {
namespace {
std::atomic<std::uint64_t> g_bugs{0};

void print_backtrace() noexcept {
  void* frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
}
}  // namespace

std::uint64_t bug_count() noexcept { return g_bugs.load(std::memory_order_relaxed); }

namespace detail {
void check_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "salvo: check failed: %s at %s:%d\n", expr, file, line);
  print_backtrace();
  std::abort();
}

void bug(const char* msg, const char* file, int line) noexcept {
  g_bugs.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "salvo: BUG: %s at %s:%d\n", msg, file, line);
#ifndef NDEBUG
  print_backtrace();
  std::abort();
#endif
}
}  // namespace detail
}  // namespace salvo
