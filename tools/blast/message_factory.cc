// SPDX-License-Identifier: Apache-2.0
// Synthetic message bodies and recipient names for salvo-blast.
#include "message_factory.h"

#include <fmt/format.h>

namespace salvo::blast {
namespace {

std::string make_message(const MessageShape& s, std::string_view to, std::string_view id) {
  std::string m = fmt::format(
      "From: Blast <{}>\r\nTo: <{}>\r\nSubject: salvo-blast test message {}\r\n"
      "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{}@blast.salvo>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
      s.from, to, id, id);
  static constexpr std::string_view kLine =
      "The quick brown fox jumps over the lazy dog while salvo counts every byte.";
  std::size_t n = 0;
  while (m.size() + 2 < s.size) {
    std::size_t room = s.size - m.size() - 2;
    std::string_view piece = kLine.substr(0, std::min(room, kLine.size()));
    // A line must not start with '.' (it would be stuffed and change the size) and the
    // filler never does.
    m.append(piece);
    m.append("\r\n");
    ++n;
  }
  if (n == 0) m.append("x\r\n");
  return m;
}

}  // namespace

MessageFactory::MessageFactory(MessageShape shape) : shape_(std::move(shape)) {
  if (shape_.domains == 0) shape_.domains = 1;
  if (shape_.rcpts == 0) shape_.rcpts = 1;
  shared_body_ = make_message(shape_, recipient(0, 0), "shared");
}

std::string MessageFactory::recipient(std::uint64_t message, unsigned j) const {
  std::uint64_t k = (message * shape_.rcpts + j) % shape_.domains;
  return fmt::format("u{}-{}@d{}.{}", message, j, k, shape_.domain_suffix);
}

std::vector<std::string> MessageFactory::recipients(std::uint64_t message) const {
  std::vector<std::string> r;
  r.reserve(shape_.rcpts);
  for (unsigned j = 0; j < shape_.rcpts; ++j) r.push_back(recipient(message, j));
  return r;
}

std::string MessageFactory::body(std::uint64_t message, const std::vector<std::string>& rcpts) const {
  return make_message(shape_, rcpts.empty() ? std::string() : rcpts.front(),
                      fmt::format("m{}", message));
}

}  // namespace salvo::blast
