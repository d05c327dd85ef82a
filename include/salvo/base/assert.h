// SPDX-License-Identifier: Apache-2.0
// The invariant ladder (after Envoy and Postfix msg_panic):
//   SALVO_ASSERT(c) debug-only documentation of an invariant;
//   SALVO_CHECK(c)  always evaluated, aborts with a message and backtrace;
//   SALVO_BUG(msg)  logs and counts in release builds, aborts in debug builds.
// Input from the network or disk never reaches these: it becomes a reply code.
#pragma once

#include <cstdint>

namespace salvo::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line) noexcept;
void bug(const char* msg, const char* file, int line) noexcept;
}  // namespace salvo::detail

namespace salvo {
// Number of SALVO_BUG hits in this process (release builds keep running).
std::uint64_t bug_count() noexcept;
}  // namespace salvo

#define SALVO_CHECK(cond)                                               \
  do {                                                                  \
    if (!(cond)) [[unlikely]]                                           \
      ::salvo::detail::check_failed(#cond, __FILE__, __LINE__);         \
  } while (0)

#ifdef NDEBUG
#define SALVO_ASSERT(cond) \
  do {                     \
  } while (0)
#else
#define SALVO_ASSERT(cond) SALVO_CHECK(cond)
#endif

#define SALVO_BUG(msg) ::salvo::detail::bug((msg), __FILE__, __LINE__)
