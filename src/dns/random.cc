// SPDX-License-Identifier: Apache-2.0
// Buffered getrandom(2): one syscall per 512 bytes of ids.
#include "dns/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <salvo/base/assert.h>

namespace salvo::dns::detail {
namespace {

struct Pool {
  unsigned char bytes[512];
  std::size_t used = sizeof(bytes);

  void take(void* out, std::size_t n) noexcept {
    if (used + n > sizeof(bytes)) {
      std::size_t got = 0;
      while (got < sizeof(bytes)) {
        const ssize_t r = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
        if (r < 0 && errno == EINTR) continue;
        SALVO_CHECK(r > 0);
        got += static_cast<std::size_t>(r);
      }
      used = 0;
    }
    std::memcpy(out, bytes + used, n);
    used += n;
  }
};

thread_local Pool pool;

}  // namespace

std::uint16_t random_u16() noexcept {
  std::uint16_t v;
  pool.take(&v, sizeof(v));
  return v;
}

std::uint64_t random_u64() noexcept {
  std::uint64_t v;
  pool.take(&v, sizeof(v));
  return v;
}

}  // namespace salvo::dns::detail
