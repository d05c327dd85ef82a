// SPDX-License-Identifier: Apache-2.0
// Per-stack (per-shard) counters of the net module: plain integers written
// by the owning shard only, summed across shards with operator+=.
#pragma once

#include <cstdint>

namespace salvo::net {

struct Stats {
  std::uint64_t accepted = 0;
  std::uint64_t connects = 0;          // connect() calls
  std::uint64_t connect_failures = 0;  // reported with a null Connection (incl. timeouts)
  std::uint64_t closed = 0;            // on_close delivered (or would be, without handler)
  std::uint64_t bytes_received = 0;    // from the socket (ciphertext under TLS)
  std::uint64_t bytes_sent = 0;
  std::uint64_t zerocopy_sends = 0;    // send_zc submissions (plain sends are the rest)
  std::uint64_t zerocopy_fallbacks = 0;  // connections switched to plain send by a refusal
  std::uint64_t recv_rearms = 0;       // multishot receive ended and was re-armed
  std::uint64_t recv_enobufs = 0;      // provided-buffer ring ran dry
  std::uint64_t paused_overflows = 0;  // receive stopped: too much input while paused
  std::uint64_t idle_timeouts = 0;    // the idle timer or a deadline (set_deadline) expired
  std::uint64_t tls_handshakes = 0;    // completed
  std::uint64_t tls_failures = 0;

  Stats& operator+=(const Stats& o) noexcept {
    accepted += o.accepted;
    connects += o.connects;
    connect_failures += o.connect_failures;
    closed += o.closed;
    bytes_received += o.bytes_received;
    bytes_sent += o.bytes_sent;
    zerocopy_sends += o.zerocopy_sends;
    zerocopy_fallbacks += o.zerocopy_fallbacks;
    recv_rearms += o.recv_rearms;
    recv_enobufs += o.recv_enobufs;
    paused_overflows += o.paused_overflows;
    idle_timeouts += o.idle_timeouts;
    tls_handshakes += o.tls_handshakes;
    tls_failures += o.tls_failures;
    return *this;
  }
};

}  // namespace salvo::net
