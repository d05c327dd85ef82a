// SPDX-License-Identifier: Apache-2.0
// The backend registry, Features::describe and the engine-free wake.
#include <salvo/io/engine.h>

#include <unistd.h>

#include <cstdint>

#include "io/uring/uring_engine.h"

namespace salvo::io {

std::string Features::describe() const {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(msg_ring, "msg_ring");
  add(multishot_accept, "multishot_accept");
  add(multishot_recv, "multishot_recv");
  add(buffer_rings, "buffer_rings");
  add(send_zc, "send_zc");
  add(single_issuer, "single_issuer");
  add(defer_taskrun, "defer_taskrun");
  add(coop_taskrun, "coop_taskrun");
  if (!msg_ring) out += out.empty() ? "eventfd_wake" : " eventfd_wake";
  return out;
}

void wake_from_any_thread(WakeTarget target) noexcept {
  if (target.via != WakeVia::EventFd || target.fd < 0) return;
  std::uint64_t one = 1;
  // Async-signal-safe; an eventfd write only fails on counter overflow, which a pending
  // wake makes harmless anyway.
  ssize_t rc = ::write(target.fd, &one, sizeof(one));
  (void)rc;
}

Result<std::unique_ptr<Engine>> create_engine(std::string_view backend,
                                              const EngineOptions& options, std::string* why) {
  if (backend == "uring") {
    auto e = uring::UringEngine::create(options, why);
    if (!e) return std::unexpected(e.error());
    return std::unique_ptr<Engine>(std::move(*e));
  }
  if (why != nullptr) *why = "unknown io engine '" + std::string(backend) + "' (available: uring)";
  return fail(std::errc::invalid_argument);
}

}  // namespace salvo::io
