// SPDX-License-Identifier: Apache-2.0
// Maildir capture for salvo-sink (--maildir DIR): each accepted message is written to
// DIR/tmp and renamed into DIR/new, with Return-Path and one Delivered-To per recipient
// prepended, so tests can read exactly what arrived. Shared by all shards: deliver() is
// thread-safe (plain file IO; the sink is a test tool, not the product's hot path).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>

namespace salvo::sink {

class Maildir {
 public:
  // Creates DIR, DIR/tmp, DIR/new, DIR/cur as needed.
  [[nodiscard]] static Result<std::unique_ptr<Maildir>> open(const std::string& dir);
  explicit Maildir(std::string dir) : dir_(std::move(dir)) {}

  [[nodiscard]] Status deliver(std::string_view reverse_path,
                               const std::vector<std::string>& recipients,
                               std::string_view body, unsigned shard);

 private:
  std::string dir_;
  std::atomic<std::uint64_t> seq_{0};
};

}  // namespace salvo::sink
