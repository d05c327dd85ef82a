// SPDX-License-Identifier: Apache-2.0
// Shared by the net tests on real sockets: a fixture owning a real io_uring engine and a
// KernelStack driven by run_once() in the test thread (bounded in time and iterations),
// the byte pattern used to check transfers, and TLS contexts made from CertFactory files.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <salvo/io/engine.h>
#include <salvo/net/stack.h>
#include <salvo/net/tls.h>

#include "support/cert_factory.h"

namespace salvo::net::testing {

inline char pattern(std::size_t i) { return static_cast<char>((i * 131 + (i >> 13)) & 0xff); }

inline std::string make_pattern(std::size_t n, std::size_t from = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = pattern(from + i);
  return s;
}

// Server, verifying client, and a client that trusts the other CA (verification fails).
struct TlsContexts {
  std::unique_ptr<TlsContext> server, client, wrong;
};

inline TlsContexts make_tls_contexts() {
  const auto& certs = test::CertFactory::shared();
  TlsContexts t;
  TlsContextOptions so;
  so.role = TlsRole::Server;
  so.certificate_file = certs.server_cert();
  so.key_file = certs.server_key();
  t.server = std::make_unique<TlsContext>(so);
  TlsContextOptions co;
  co.role = TlsRole::Client;
  co.verify = TlsVerify::Peer;
  co.ca_file = certs.ca_cert();
  t.client = std::make_unique<TlsContext>(co);
  co.ca_file = certs.other_ca_cert();
  t.wrong = std::make_unique<TlsContext>(co);
  return t;
}

// Skips the test when io_uring is unavailable; stack_ is left to the derived fixture.
class LoopbackFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    auto e = io::create_engine("uring", io::EngineOptions{}, &why);
    if (!e) GTEST_SKIP() << "io_uring engine unavailable: " << why;
    engine_ = std::move(*e);
  }
  void TearDown() override {
    stack_.reset();  // before the engine (the stack drains its completions)
    engine_.reset();
  }

  // Runs the engine until pred() holds; bounded in time and iterations.
  bool run_until(const std::function<bool()>& pred, Duration limit) {
    auto end = MonoClock::now() + limit;
    for (int i = 0; i < 5'000'000; ++i) {
      if (pred()) return true;
      if (MonoClock::now() > end) return false;
      engine_->run_once(std::chrono::milliseconds(1));
    }
    return pred();
  }
  void run_for(Duration d) {
    auto end = MonoClock::now() + d;
    while (MonoClock::now() < end) engine_->run_once(std::chrono::milliseconds(1));
  }
  Listener* listen(AcceptHandler& h, const char* where = "127.0.0.1:0", Stack* on = nullptr) {
    auto a = SocketAddress::parse(where);
    EXPECT_TRUE(a.has_value()) << where;
    auto l = (on ? on : stack_.get())->listen(a.value_or(SocketAddress{}), ReusePort::No, h);
    EXPECT_TRUE(l.has_value()) << where << ": " << (l ? "" : l.error().message());
    return l.value_or(nullptr);
  }

  std::unique_ptr<io::Engine> engine_;
  std::unique_ptr<Stack> stack_;
};

}  // namespace salvo::net::testing
