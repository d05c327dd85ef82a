// SPDX-License-Identifier: Apache-2.0
// MessageFactory: the synthetic mail salvo-blast sends: recipients spread over
// d0.SUFFIX ... d{N-1}.SUFFIX, and an RFC 5322 body of about --size bytes (CRLF lines of
// at most 78 characters, so it passes every line-length and bare-LF rule).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace salvo::blast {

struct MessageShape {
  std::uint64_t size = 1024;     // approximate total message size in bytes
  unsigned rcpts = 1;            // recipients per message
  unsigned domains = 1;          // recipient domains
  std::string domain_suffix = "example.test";
  std::string from = "blast@sender.example";
};

class MessageFactory {
 public:
  explicit MessageFactory(MessageShape shape);
  const MessageShape& shape() const noexcept { return shape_; }
  // Recipient j of message i: "u<i>-<j>@d<k>.SUFFIX", k = (i * rcpts + j) % domains.
  std::string recipient(std::uint64_t message, unsigned j) const;
  std::vector<std::string> recipients(std::uint64_t message) const;
  // A complete message (headers + body, CRLF line ends) of about shape.size bytes.
  std::string body(std::uint64_t message, const std::vector<std::string>& rcpts) const;
  // The same filler for every message, built once (the SMTP benchmark sends it as is).
  const std::string& shared_body() const noexcept { return shared_body_; }

 private:
  MessageShape shape_;
  std::string shared_body_;
};

}  // namespace salvo::blast
