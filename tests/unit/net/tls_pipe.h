// SPDX-License-Identifier: Apache-2.0
// Pipe: two TlsSessions wired together through memory, for the TLS and DANE unit tests.
#pragma once

#include <algorithm>
#include <cstdint>

#include <gtest/gtest.h>

#include <salvo/net/tls.h>

namespace salvo::net {

// Moves ciphertext between two sessions until neither makes progress. `max_chunk` limits
// how much is fed at once (1 = byte at a time).
struct Pipe {
  Pipe(TlsSession& client, TlsSession& server) : a(client), b(server) {}
  TlsSession& a;
  TlsSession& b;
  ByteBuffer a_plain{4096};
  ByteBuffer b_plain{4096};
  std::size_t max_chunk = SIZE_MAX;

  static bool move(TlsSession& from, TlsSession& to, std::size_t max_chunk) {
    auto& out = from.ciphertext_out();
    if (out.empty()) return false;
    std::size_t n = std::min(out.size(), max_chunk);
    to.feed_ciphertext(out.view().substr(0, n));
    out.consume(n);
    return true;
  }

  void pump(int max_rounds = 100000) {
    for (int i = 0; i < max_rounds; ++i) {
      a.advance(a_plain);
      b.advance(b_plain);
      bool moved = move(a, b, max_chunk);
      moved |= move(b, a, max_chunk);
      if (!moved) {
        a.advance(a_plain);
        b.advance(b_plain);
        if (a.ciphertext_out().empty() && b.ciphertext_out().empty()) return;
      }
    }
    FAIL() << "pump did not settle";
  }
};

}  // namespace salvo::net
