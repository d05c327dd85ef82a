// SPDX-License-Identifier: Apache-2.0
// resolv.conf "nameserver" extraction (resolv.conf(5)); the read is the only IO here.
#include <cerrno>
#include <fstream>
#include <sstream>

#include <salvo/config/cidr.h>
#include <salvo/config/resolv_conf.h>

namespace salvo::config {
namespace {

constexpr std::uint16_t kDnsPort = 53;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view next_word(std::string_view& line) {
  std::size_t i = 0;
  while (i < line.size() && is_blank(line[i])) ++i;
  std::size_t j = i;
  while (j < line.size() && !is_blank(line[j])) ++j;
  auto word = line.substr(i, j - i);
  line.remove_prefix(j);
  return word;
}

}  // namespace

std::vector<HostPort> parse_resolv_conf(std::string_view text) {
  std::vector<HostPort> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto hash = line.find_first_of("#;"); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    if (next_word(line) != "nameserver") continue;
    auto address = next_word(line);
    if (auto ip = IpAddress::parse(address)) {
      out.push_back(HostPort{ip->to_string(), kDnsPort});
    }
  }
  return out;
}

Result<std::vector<HostPort>> read_resolv_conf(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno(errno != 0 ? errno : ENOENT);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail_errno(EIO);
  return parse_resolv_conf(text.str());
}

}  // namespace salvo::config
