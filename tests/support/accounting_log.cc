// SPDX-License-Identifier: Apache-2.0
// The accounting-log reader for integration tests (see accounting_log.h).
#include "support/accounting_log.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "support/process.h"

namespace salvo::test {

using nlohmann::json;
namespace fs = std::filesystem;

std::string accounting_path(const std::string& log_dir) {
  return log_dir + "/accounting.jsonl";
}

std::vector<std::string> rotated_accounting_files(const std::string& log_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(log_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("accounting-") && name.ends_with(".jsonl")) out.push_back(e.path());
  }
  std::ranges::sort(out);
  return out;
}

std::vector<json> read_accounting_file(const std::string& path, AccountingLines lines) {
  std::vector<json> out;
  const std::string text = read_file(path);  // "" if there is no such file
  const bool strict = lines == AccountingLines::Strict;
  if (strict && !text.empty() && text.back() != '\n') {
    throw std::runtime_error(path + " ends inside a line");
  }
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    json e = json::parse(line, nullptr, false);
    if (e.is_object()) {
      out.push_back(std::move(e));
    } else if (strict) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": not a JSON object: " + line);
    }
  }
  return out;
}

std::vector<json> accounting_events(const std::string& log_dir, AccountingLines lines) {
  return read_accounting_file(accounting_path(log_dir), lines);
}

std::vector<json> events_of_type(const std::vector<json>& events, std::string_view type) {
  std::vector<json> out;
  for (const auto& e : events) {
    auto t = e.find("type");
    if (t != e.end() && t->is_string() && t->get_ref<const std::string&>() == type) {
      out.push_back(e);
    }
  }
  return out;
}

std::map<std::string, int> counts_by_type(const std::vector<json>& events) {
  std::map<std::string, int> c;
  for (const auto& e : events) ++c[e.at("type").get<std::string>()];  // every event has one
  return c;
}

}  // namespace salvo::test
