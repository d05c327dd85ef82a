// SPDX-License-Identifier: Apache-2.0
// Writes .eml and .json pickup files: tmp/NAME, then rename(2) into the pickup directory.
#include "blast_pickup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace salvo::blast {
namespace {

Status write_file(const std::string& dir, const std::string& name, std::string_view data,
                  std::string* why) {
  std::string tmp = dir + "/tmp/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *why = tmp + ": " + std::strerror(errno);
    return fail_errno(errno);
  }
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      *why = tmp + ": " + std::strerror(e);
      return fail_errno(e);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::string dst = dir + "/" + name;
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    *why = dst + ": " + std::strerror(errno);
    return fail_errno(errno);
  }
  return {};
}

}  // namespace

Result<PickupResult> write_pickup(const PickupOptions& o, const MessageFactory& f,
                                  std::string* why) {
  for (const auto& d : {o.dir, o.dir + "/tmp"}) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      *why = d + ": " + std::strerror(errno);
      return fail_errno(errno);
    }
  }
  PickupResult res;
  std::string stamp = fmt::format("{}-{}", ::getpid(), ::time(nullptr));
  if (o.format == PickupFormat::Eml) {
    std::string buf;
    for (std::uint64_t i = 0; i < o.messages; ++i) {
      auto rcpts = f.recipients(i);
      buf.clear();
      buf += fmt::format("X-Sender: {}\r\n", f.shape().from);
      for (const auto& r : rcpts) buf += fmt::format("X-Receiver: {}\r\n", r);
      buf += fmt::format("X-Job: {}\r\n", o.job);
      buf += f.body(i, rcpts);
      auto s = write_file(o.dir, fmt::format("blast-{}-{}.eml", stamp, i), buf, why);
      if (!s) return std::unexpected(s.error());
      ++res.files;
      ++res.messages;
      res.recipients += rcpts.size();
      res.bytes += buf.size();
    }
    return res;
  }
  // JSON jobs: one recipient entry per message slot; the template is stored once.
  std::string content =
      "From: Blast <" + f.shape().from + ">\r\nTo: <{{email}}>\r\nSubject: Hello {{name}}\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
      "Dear {{name}}, your id is {{id}}.\r\n";
  while (content.size() + 2 < f.shape().size) content += "Filler line for salvo-blast pickup jobs.\r\n";
  std::uint64_t total = o.messages * f.shape().rcpts;
  std::uint64_t job_size = o.job_size ? o.job_size : total;
  for (std::uint64_t first = 0, file = 0; first < total; first += job_size, ++file) {
    nlohmann::json job;
    job["from"] = f.shape().from;
    job["job"] = o.job;
    job["content"] = content;
    auto& list = job["recipients"] = nlohmann::json::array();
    std::uint64_t end = std::min(total, first + job_size);
    for (std::uint64_t k = first; k < end; ++k) {
      std::string email = f.recipient(k / f.shape().rcpts, static_cast<unsigned>(k % f.shape().rcpts));
      list.push_back({{"email", email}, {"vars", {{"name", fmt::format("User {}", k)},
                                                  {"id", std::to_string(k)}}}});
    }
    std::string text = job.dump();
    auto s = write_file(o.dir, fmt::format("blast-{}-{}.json", stamp, file), text, why);
    if (!s) return std::unexpected(s.error());
    ++res.files;
    res.messages += end - first;
    res.recipients += end - first;
    res.bytes += text.size();
  }
  return res;
}

}  // namespace salvo::blast
