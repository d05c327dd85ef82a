// SPDX-License-Identifier: Apache-2.0
// Maildir writer: write tmp/NAME, rename to new/NAME (the maildir delivery protocol).
#include "maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

namespace salvo::sink {
namespace {

Status make_dir(const std::string& d) {
  if (::mkdir(d.c_str(), 0755) == 0 || errno == EEXIST) return {};
  return fail_errno(errno);
}

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Maildir>> Maildir::open(const std::string& dir) {
  for (const auto& d : {dir, dir + "/tmp", dir + "/new", dir + "/cur"}) {
    if (auto s = make_dir(d); !s) return std::unexpected(s.error());
  }
  return std::make_unique<Maildir>(dir);
}

Status Maildir::deliver(std::string_view reverse_path, const std::vector<std::string>& recipients,
                        std::string_view body, unsigned shard) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  std::string name = fmt::format("{}.S{}Q{}P{}.sink", us / 1000000, shard,
                                 seq_.fetch_add(1, std::memory_order_relaxed), ::getpid());
  std::string tmp = dir_ + "/tmp/" + name;
  std::string header = fmt::format("Return-Path: <{}>\r\n", reverse_path);
  for (const auto& r : recipients) header += fmt::format("Delivered-To: {}\r\n", r);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return fail_errno(errno);
  Status s = write_all(fd, header);
  if (s) s = write_all(fd, body);
  ::close(fd);
  if (!s) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), (dir_ + "/new/" + name).c_str()) != 0) return fail_errno(errno);
  return {};
}

}  // namespace salvo::sink
