// SPDX-License-Identifier: Apache-2.0
#include "support/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace salvo::test {
namespace {

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string HttpResult::header(std::string_view name) const {
  std::string_view rest = headers;
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !equals_nocase(line.substr(0, colon), name)) continue;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return std::string(v);
  }
  return "";
}

HttpResult http_raw(std::uint16_t port, const std::string& raw, int timeout_s) {
  HttpResult r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  std::size_t off = 0;
  while (off < raw.size()) {
    ssize_t n = ::send(fd, raw.data() + off, raw.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse_http_answer(in);
}

HttpResult parse_http_answer(const std::string& in) {
  HttpResult r;
  auto end = in.find("\r\n\r\n");
  if (in.size() < 12 || !in.starts_with("HTTP/1.") || end == std::string::npos) return r;
  r.status = std::stoi(in.substr(9, 3));
  r.headers = in.substr(0, end);
  r.body = in.substr(end + 4);
  return r;
}

HttpResult http_call(std::uint16_t port, const HttpCall& c) {
  std::string req = fmt::format("{} {} HTTP/1.1\r\n", c.method, c.path);
  if (!c.host.empty()) req += "Host: " + c.host + "\r\n";
  req += "Connection: close\r\n";
  if (!c.token.empty()) req += "Authorization: Bearer " + c.token + "\r\n";
  for (const auto& h : c.headers) req += h + "\r\n";
  if (!c.body.empty() || c.method == "POST") {
    if (!c.content_type.empty()) req += "Content-Type: " + c.content_type + "\r\n";
    req += fmt::format("Content-Length: {}\r\n", c.body.size());
  }
  req += "\r\n" + c.body;
  return http_raw(port, req);
}

std::string write_secret_file(const TempDir& dir, const std::string& name, const std::string& text,
                              unsigned mode) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    throw std::runtime_error("chmod " + path);
  }
  return path;
}

}  // namespace salvo::test
