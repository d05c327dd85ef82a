// SPDX-License-Identifier: Apache-2.0
// The [dns] resolvers default: "nameserver" lines of /etc/resolv.conf (resolv.conf(5)).
// The text parser is pure; the file reader takes a path so tests need not touch /etc.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/config/host_port.h>

namespace salvo::config {

// Every "nameserver ADDRESS" line, in order, as ADDRESS:53. Comments ('#' or ';'), other
// options and entries that are not IP literals (e.g. "fe80::1%eth0" with a zone) are skipped.
std::vector<HostPort> parse_resolv_conf(std::string_view text);

// Diagnostics: the errno of open/read (no such file, permission denied).
[[nodiscard]] Result<std::vector<HostPort>> read_resolv_conf(const std::filesystem::path& path);

}  // namespace salvo::config
