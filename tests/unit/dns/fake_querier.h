// SPDX-License-Identifier: Apache-2.0
// FakeQuerier: a scripted dns::Querier for the cache unit tests (MxCache, TlsaCache).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <salvo/dns/resolver.h>

namespace salvo::dns::test {

// Answers from a map of (name, type) -> result when the test calls run(); unknown names
// get NXDOMAIN. Records every query.
class FakeQuerier final : public Querier {
 public:
  void query(std::string_view name, RrType type, Callback cb) override {
    asked.emplace_back(std::string(name), type);
    pending.push_back({std::string(name), type, std::move(cb)});
  }
  // Delivers every pending answer (and those queued meanwhile). Returns how many.
  int run() {
    int n = 0;
    while (!pending.empty()) {
      auto batch = std::move(pending);
      pending.clear();
      for (auto& p : batch) {
        ++n;
        auto it = zone.find({p.name, p.type});
        if (it != zone.end()) {
          p.cb(it->second);
        } else {
          Answer a;
          a.rcode = Rcode::NxDomain;
          p.cb(a);
        }
      }
    }
    return n;
  }
  int count(const std::string& name, RrType type) const {
    int n = 0;
    for (const auto& q : asked) n += (q.first == name && q.second == type) ? 1 : 0;
    return n;
  }

  struct Pending {
    std::string name;
    RrType type;
    Callback cb;
  };
  std::map<std::pair<std::string, RrType>, Result<Answer>> zone;
  std::vector<Pending> pending;
  std::vector<std::pair<std::string, RrType>> asked;
};

}  // namespace salvo::dns::test
