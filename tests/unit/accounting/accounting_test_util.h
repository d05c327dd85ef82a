// SPDX-License-Identifier: Apache-2.0
// Helpers for the accounting tests: events with a numbered id, and a reader that collects
// every line of every accounting file in a directory, checking each is whole and parses.
#pragma once

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/accounting/accounting.h>

namespace salvo::accounting::test {

// prefix + n, built by appending: `"m" + std::to_string(n)` trips a g++ 12 -Wrestrict
// false positive (GCC PR 105329) under -Werror.
inline std::string make_id(std::string_view prefix, long n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

// An event with every usual field set; id must outlive the use (format at once).
inline Event sample_event(const std::string& id) {
  Event ev;
  ev.type = EventType::Delivered;
  ev.ts_unix_ns = 1795383600123000000;
  ev.id = id;
  ev.from = "bulk@sender.example";
  ev.rcpt = "someone@example.com";
  ev.domain = "example.com";
  ev.mx = "mx1.example.com";
  ev.ip = "192.0.2.1";
  ev.code = 250;
  ev.enhanced = "2.0.0";
  ev.response = "2.0.0 Ok: queued as 4Bxyz \"quoted\"";
  ev.attempt = 1;
  ev.tls = "TLSv1.3";
  ev.size = 4096;
  ev.queued_s = 0.25;
  ev.source = "smtp";
  return ev;
}

inline std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.starts_with("accounting") && n.ends_with(".jsonl")) names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The "id" of every line in every accounting file of dir. Each file must end with '\n'
// (whole lines only) and each line must parse as a JSON object.
inline std::vector<std::string> read_ids(const std::string& dir) {
  std::vector<std::string> ids;
  for (const std::string& name : list_files(dir)) {
    std::string data = slurp(dir + "/" + name);
    if (data.empty()) continue;
    EXPECT_EQ(data.back(), '\n') << name << " ends inside a line";
    std::size_t pos = 0;
    while (pos < data.size()) {
      std::size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) nl = data.size();
      std::string l = data.substr(pos, nl - pos);
      pos = nl + 1;
      try {
        auto j = nlohmann::json::parse(l);
        ids.push_back(j.at("id").get<std::string>());
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << ": line does not parse (" << e.what() << "): " << l;
      }
    }
  }
  return ids;
}

}  // namespace salvo::accounting::test
