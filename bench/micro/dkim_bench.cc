// SPDX-License-Identifier: Apache-2.0
// dkim micro-benchmarks: signatures/s for a 10 KiB message with RSA-2048 and
// Ed25519, and the parts of it: relaxed body canonicalization alone, canonicalization plus
// SHA-256, and plain SHA-256 of the same bytes (the floor).
//   build-dkim/bench/bench_dkim --benchmark_format=json
#include <cstdio>
#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>

#include <salvo/dkim/signer.h>

#include "dkim/canon.h"
#include "dkim/sha256_sink.h"

namespace {

using namespace salvo;
using namespace salvo::dkim;

// TEST KEYS, NOT SECRET: generated once with `openssl genpkey` for this benchmark only.
// Never publish them in DNS or use them for real mail.
constexpr const char* kBenchRsa2048Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDOSqu2A/GY1N3p\n"
    "4AKmnX2J2CJ+zwXs/nxcuNLG0u3EHfQpqanM87DHEsTAmNJpq6HzZDUerTZx4Cup\n"
    "LM5wKUaiEbUkJILgTJ7bcj0QuZKsjJcBcIn3fTyKZ1Oa0mYw/R8zBA+zxlIQC11a\n"
    "eukI33ytlIFAqJXnpmbv0iQv1yf66F0tiCO4xnJAnazPqmwdd6ulb9vHUdQz3QO/\n"
    "F2bUoIzNbT8qfN4THADcDCzl8Wne3SLUsU2UzQDVEC7kQcf/vA2q2WCN40o/EIgg\n"
    "KC9qg6EttiUNdpzynto4u32Ft45o3DILarJGDHe8mxIptcZqOVXSsBVUlGqYqA4m\n"
    "yglp6M1tAgMBAAECggEAIFvGI37q3rZFOPJSeCAsGPs2Lf37R/mDOGglZ9qeQS0R\n"
    "p5ddczCmghOHmU5fcwPhG3SUgINbDvHC536Hw0A2PCXa7BhuDxD1uiZpPb5eK4LC\n"
    "DQ/CFHgoju02SArIzNZnlnEEpYZuSOX/drng4+tqey/YNnQ7T2Lisqub0YVGWCzi\n"
    "URZq9NmviipAJjWIn+trkLSvZEpFuX9mGhhPWU46vD5qy5lUOwrmvVo0mVgdB79w\n"
    "lfrx5rUZmQMULrDTNgKf+SCndPh/7JWWLbY19ILBdo4aI83TalVfthro81LQaTpx\n"
    "jwDGZ4kO4lQ3nf2Usb9cRKjn75L6jwhHceeXjlWxYQKBgQD67tHEKJYWt1pt/69X\n"
    "yiMlHSuqubaS9c3GFw/JtbnivniLljs22k4/2SBmndzcMGarkiVWTTrIjW+4T/3/\n"
    "5u+RS40Jka6Q6+NffhwKP/kcZTKERu/j5/rBN7uNbZabqrZhToeHO2BoXv8LgeJ5\n"
    "DpJLOqH0S82Wmymy+VxabXLk1wKBgQDSdRTnJuJaPrWKgViLIAeKA/oUJEa8EYFn\n"
    "p6u8jrmKHxBq0B6YK+A8uMl1tSLwGbtjZuqZZ6u2byfN/lNGCLc4JRwdEh8WCSC8\n"
    "+JmAV4wptM1SohHMj7OWB09AbLRHgrViiDwV6pxcYVFE9P53aRk+sKE9T9OGcV63\n"
    "wt5oHWaTWwKBgQDFjAHkFbejBpHQizv1NxNYApEABNhw9cYbrsglGkXO9fhcm9be\n"
    "Jhr4NO1HG/xl9Ey/wXxXZtFiVcagKYljTuFHV10fLWtqd+o2oUdd4mMxMZIFhPsS\n"
    "Ruyn9EJY4u9weYK/NF2J3vrU8ASFgKlUeF4/j1c0xgCCEoFPfvRv1D5hXQKBgAb9\n"
    "rqkTCJfY12z3aPqOINH72dXLcrISnsrTrgfAcfddms0BhtKlOnip5r9LOhLht/DQ\n"
    "XWClKfYQcTENjrSX24Y47Vsl2/R+byD33Rl/Tv+fquZgzdiOuXd1XLOWKNLrS50v\n"
    "S1erCHClJu70eHN9AUKs2V5RBYTExVGzXnH08BBbAoGAJSS+brMwuPyzXsizSIIg\n"
    "lZYKSbJg7MS13m4o9VlcL1ypgveklw1WHvvf4jyHzz7Je0ypcs5Ce4E79/9vHE9X\n"
    "GDhLqfJfRfxcZQQ+lmUczSssddd38RZc9d6nDE1MmmBH1DfC8Yrw4Vb2mb47TnRn\n"
    "4//nxfbK4esWnh47Q/SpvXY=\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kBenchEd25519Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIKbu4m3Zk6+EdOACMgoske9fWkFkhFS5g+JoMC3icgZ0\n"
    "-----END PRIVATE KEY-----\n";

std::string make_message(std::size_t size) {
  std::string m =
      "From: Newsletter <news@example.com>\r\n"
      "To: subscriber@example.org\r\n"
      "Subject: This week's offers, folded over\r\n"
      "\ttwo lines\r\n"
      "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
      "Message-ID: <20231114221320.12345@example.com>\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: 8bit\r\n"
      "List-Unsubscribe: <https://example.com/u/12345>\r\n"
      "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
      "Feedback-ID: 1:campaign:salvo\r\n"
      "X-Mailer: salvo\r\n"
      "\r\n";
  int i = 0;
  while (m.size() < size) {
    m += "Line ";
    m += std::to_string(i++);
    m += ": the quick brown fox jumps over the lazy dog  \t and keeps on running.\r\n";
  }
  m += "\r\n\r\n";
  return m;
}

Signer make_signer(Algorithm a) {
  SignerOptions o;
  o.domain = "example.com";
  o.selector = "bench";
  o.algorithm = a;
  o.private_key_pem = a == Algorithm::RsaSha256 ? kBenchRsa2048Pem : kBenchEd25519Pem;
  auto s = Signer::create(std::move(o));
  if (!s) {
    std::fprintf(stderr, "dkim bench: %s\n", s.error().message().c_str());
    std::abort();
  }
  return std::move(*s);
}

void sign_bench(benchmark::State& state, Algorithm a) {
  const Signer signer = make_signer(a);
  const std::string msg = make_message(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto field = signer.sign(msg, 1700000000);
    benchmark::DoNotOptimize(field);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(msg.size()));
}

void BM_SignRsa2048(benchmark::State& state) { sign_bench(state, Algorithm::RsaSha256); }
void BM_SignEd25519(benchmark::State& state) { sign_bench(state, Algorithm::Ed25519Sha256); }
BENCHMARK(BM_SignRsa2048)->Arg(1024)->Arg(10 * 1024);
BENCHMARK(BM_SignEd25519)->Arg(1024)->Arg(10 * 1024);

void BM_BodyCanon(benchmark::State& state) {
  const std::string msg = make_message(10 * 1024);
  std::string out;
  out.reserve(msg.size());
  for (auto _ : state) {
    out.clear();
    detail::StringSink sink{out};
    detail::canon_body_relaxed(msg, sink);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(msg.size()));
}
BENCHMARK(BM_BodyCanon);

void BM_BodyCanonSha256(benchmark::State& state) {
  const std::string msg = make_message(10 * 1024);
  for (auto _ : state) {
    detail::Sha256Sink sink;
    detail::canon_body_relaxed(msg, sink);
    std::array<std::uint8_t, 32> digest;
    benchmark::DoNotOptimize(sink.finish(digest));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(msg.size()));
}
BENCHMARK(BM_BodyCanonSha256);

void BM_Sha256Only(benchmark::State& state) {
  const std::string msg = make_message(10 * 1024);
  for (auto _ : state) {
    detail::Sha256Sink sink;
    sink.put(std::string_view(msg));
    std::array<std::uint8_t, 32> digest;
    benchmark::DoNotOptimize(sink.finish(digest));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(msg.size()));
}
BENCHMARK(BM_Sha256Only);

}  // namespace
