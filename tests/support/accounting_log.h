// SPDX-License-Identifier: Apache-2.0
// Reading salvod's accounting log in integration tests: <log_dir>/accounting.jsonl and the
// rotated accounting-*.jsonl beside it, one JSON object per line. Reads once and returns;
// a test that waits for lines polls with eventually().
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace salvo::test {

// What a reader does with a line that is not a whole JSON object.
enum class AccountingLines : std::uint8_t {
  // Throws std::runtime_error naming the file, the line number and the line; a file that
  // does not end in a newline throws too. salvod writes whole lines, so this is the default.
  Strict,
  // Skips it: for polling the log of a running salvod that may be half-way through a line.
  SkipMalformed,
};

// <log_dir>/accounting.jsonl, the file salvod is writing.
std::string accounting_path(const std::string& log_dir);

// The rotated files (accounting-*.jsonl) in log_dir, sorted by name; none if there are none.
std::vector<std::string> rotated_accounting_files(const std::string& log_dir);

// Every event in the file at path, in order; none if the file does not exist.
std::vector<nlohmann::json> read_accounting_file(
    const std::string& path, AccountingLines lines = AccountingLines::Strict);

// Every event in <log_dir>/accounting.jsonl, in order.
std::vector<nlohmann::json> accounting_events(const std::string& log_dir,
                                              AccountingLines lines = AccountingLines::Strict);

// The events whose "type" is type ("received", "delivered", ...), in order.
std::vector<nlohmann::json> events_of_type(const std::vector<nlohmann::json>& events,
                                           std::string_view type);

// How many events there are of each type; an event without a string "type" throws.
std::map<std::string, int> counts_by_type(const std::vector<nlohmann::json>& events);

}  // namespace salvo::test
