// SPDX-License-Identifier: Apache-2.0
// Helpers for the spool tests: a temporary spool directory, a recording CommitWaiter,
// message builders, version-1 framing and a bounded engine loop.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <salvo/io/engine.h>
#include <salvo/base/clock.h>
#include <salvo/spool/records.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::spool::test {

class TempDir {
 public:
  explicit TempDir(const char* base = "/tmp") {
    std::string tmpl = std::string(base) + "/salvo_spool_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* p = ::mkdtemp(buf.data());
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class Waiter final : public CommitWaiter {
 public:
  void on_committed(Status status) noexcept override {
    ++calls;
    if (status) {
      ++ok;
    } else {
      errors.push_back(status.error());
    }
    if (hook) hook(status);
  }
  int calls = 0;
  int ok = 0;
  std::vector<std::error_code> errors;
  std::function<void(const Status&)> hook;
};

// A shard's spool on real files, opened as salvod opens it: recovered, then a writer
// (1 MiB segments) and a reader on `engine`. Empty (a failed expectation) when the
// recovery fails.
struct OpenSpool {
  std::unique_ptr<RecoveryResult> rec;
  std::unique_ptr<SpoolWriter> writer;
  std::unique_ptr<SpoolReader> reader;
};
inline OpenSpool open_spool(io::Engine& engine, const Clock& clock, const std::string& dir) {
  OpenSpool s;
  auto r = recover(dir, 0);
  EXPECT_TRUE(r) << r.error().message();
  if (!r) return s;
  s.rec = std::make_unique<RecoveryResult>(std::move(*r));
  WriterOptions o;
  o.dir = dir;
  o.segment_size = 1u << 20;
  s.writer = std::make_unique<SpoolWriter>(engine, clock, o, s.rec->index, s.rec->next_segment,
                                           s.rec->next_id);
  s.reader = std::make_unique<SpoolReader>(engine, dir);
  return s;
}

// Owns the strings a MessageRecord views.
struct MessageFixture {
  std::string from = "sender@example.org";
  std::vector<std::string> rcpts{"a@example.com", "b@example.net"};
  std::string body = "Subject: hi\r\n\r\nhello\r\n";
  std::string job = "job-1";
  MessageRecord record() const {
    MessageRecord m;
    m.received_unix_ns = 1'767'225'600'000'000'000;
    m.source = Source::Smtp;
    m.reverse_path = from;
    m.job = job;
    m.body = body;
    for (const auto& r : rcpts) m.recipients.push_back({r, kNotifyFailure, {}});
    return m;
  }
};

// The payload of m as salvo encoded it before pickup claims: in place of m.pickup, an
// identity of kind 1 (name, device, inode, size, mtime; docs/spool-format.md §4).
inline std::string encode_with_stat_identity(MessageRecord m, std::string_view name,
                                             std::uint64_t inode) {
  m.pickup.reset();
  std::string none;
  encode(m, none);  // ... recipients, identity kind 0, body (u32 length, bytes)
  const std::size_t at = none.size() - 4 - m.body.size() - 1;
  std::string id(1, '\x01');
  auto put = [&](std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) id.push_back(static_cast<char>(v >> (8 * i)));
  };
  put(name.size(), 4);
  id.append(name);
  for (std::uint64_t v : {std::uint64_t{1}, inode, std::uint64_t{5000}, std::uint64_t{123}}) {
    put(v, 8);
  }
  return none.substr(0, at) + id + none.substr(at + 1);
}

// A record framed as salvo wrote them before frames were bound to their place (segment
// format version 1: flags 0, the CRC over header and payload only). Spelled out here, not
// through frame(), so the old format stays pinned.
inline std::string legacy_frame(RecordType type, std::string_view payload) {
  std::string out;
  auto put_u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  put_u32(kFrameMagic);
  out.push_back(static_cast<char>(type));
  out.append(3, '\0');
  put_u32(static_cast<std::uint32_t>(payload.size()));
  out.append(payload);
  put_u32(crc32c(out));
  return out;
}

inline bool run_until(io::Engine& e, const std::function<bool()>& pred,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    e.run_once(std::chrono::milliseconds(5));
  }
  return true;
}

inline std::unique_ptr<io::Engine> make_uring() {
  std::string why;
  auto e = io::create_engine("uring", io::EngineOptions{.queue_depth = 256}, &why);
  if (!e) return nullptr;
  return std::move(*e);
}

// The tests that write a spool on real files with a real SpoolWriter: an io_uring engine
// (skipped without one), the shard directory DIR/shard-0 under a temporary DIR in `base`,
// and salvod's log silenced.
class UringSpoolTest : public ::testing::Test {
 protected:
  explicit UringSpoolTest(const char* base = "/tmp") : dir_(base) {}
  static void SetUpTestSuite() { spdlog::set_level(spdlog::level::off); }
  static void TearDownTestSuite() { spdlog::set_level(spdlog::level::info); }
  // Derived fixtures call this first and return when IsSkipped().
  void SetUp() override {
    engine_ = make_uring();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    spool_ = dir_.sub("shard-0");
  }
  // Lets the engine deliver the completions of cancelled timers (after a writer is gone).
  void settle() {
    for (int i = 0; i < 5; ++i) engine_->run_once(std::chrono::milliseconds(1));
  }

  TempDir dir_;
  std::string spool_;
  std::unique_ptr<io::Engine> engine_;
  SystemClock clock_;
};

}  // namespace salvo::spool::test
