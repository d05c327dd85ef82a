// SPDX-License-Identifier: Apache-2.0
// The two pickup-directory file formats, parsed without IO:
//  - *.eml: PowerMTA-style envelope lines (X-Sender, X-Receiver, X-Envid, X-Job; names
//    case-insensitive) followed by the RFC 5322 message;
//  - *.json: a bulk job {"from", "content", "recipients": [{"email", "vars"}...], "job",
//    "envid", "ret", "notify"}, read as a stream of chunks so that memory does not grow
//    with the number of recipients.
// Errors carry the 1-based line (and byte offset) and the field, for pickup/failed/NAME.error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace salvo::inbound {

struct PickupError {
  std::string reason;
  std::uint64_t line = 0;    // 1-based; 0 = not about one place
  std::uint64_t offset = 0;  // byte offset in the file
  std::string field;         // "X-Receiver", "recipients[12].email", ...
  // "line 3, field X-Receiver: <reason>" (one line, no trailing newline).
  std::string describe() const;
};

struct PickupLimits {
  std::uint64_t max_message_size = 50'000'000;  // .eml message / .json content, as stored
  std::uint32_t max_recipients_eml = 100'000;
  std::uint32_t max_recipients_job = 50'000'000;
  std::size_t max_recipient_bytes = 64 * 1024;  // one .json recipient object, as written
  std::uint32_t max_hops = 100;                 // [delivery] max_hops: an .eml with this
                                                // many Received: lines is refused (a loop)
};

// RFC 5322 text as the spool stores it: line ends become CRLF (bare LF is accepted, as
// local generators write it); a bare CR, a NUL or a line longer than 998 octets is an
// error. Appends to out; *eight_bit is set when a byte >= 0x80 occurs. first_line numbers
// errors; base_offset is where text starts in the file.
std::optional<PickupError> normalize_message(std::string_view text, std::uint64_t first_line,
                                             std::uint64_t base_offset, std::string& out,
                                             bool* eight_bit);

// ---- .eml ---------------------------------------------------------------------------

struct EmlEnvelope {
  std::string sender;  // "" = the null reverse-path ("X-Sender: <>")
  std::vector<std::string> receivers;
  std::string envid;
  std::string job;
  bool smtputf8 = false;   // an address is not ASCII
  bool eight_bit = false;  // the message has bytes >= 0x80
};

// Parses a whole .eml file: envelope lines until the first line that is not one of the
// four, then the message, normalised into body_out (which is cleared first).
std::optional<PickupError> parse_eml(std::string_view file, const PickupLimits& limits,
                                     EmlEnvelope* envelope, std::string& body_out);

// ---- .json --------------------------------------------------------------------------

struct JobHeader {
  std::string from;     // "" = null sender
  std::string content;  // normalised (CRLF) template; {{name}} placeholders kept
  std::string job;
  std::string envid;
  std::uint8_t ret = 0;     // spool::Ret
  std::uint8_t notify = 0;  // default NOTIFY bits for every recipient (spool::kNotify*)
  bool smtputf8 = false;
  bool eight_bit = false;
};

struct JobRecipientData {
  std::string email;
  std::uint8_t notify = 0;
  std::string orcpt;
  std::vector<std::pair<std::string, std::string>> vars;  // values: no CR, LF or NUL
};

// Streaming reader of one .json job, in two passes over the file so that neither the
// order of the keys nor the number of recipients matters:
//  1. scan(): the whole file, in chunks. Checks the object's structure, parses every key
//     but "recipients" (whose array is only skimmed and counted), then finish_scan()
//     checks that from and content are there: header() is complete.
//  2. feed_recipients(): the file again from recipients_offset(), in chunks; each element
//     is parsed and handed to the callback in file order, until recipients_done().
// Memory: one recipient object (at most max_recipient_bytes) or the content, never the job.
class JobReader {
 public:
  using RecipientFn = std::function<void(JobRecipientData&&)>;
  explicit JobReader(const PickupLimits& limits);
  ~JobReader();
  JobReader(const JobReader&) = delete;
  JobReader& operator=(const JobReader&) = delete;

  std::optional<PickupError> scan(std::string_view bytes);
  std::optional<PickupError> finish_scan();
  const JobHeader& header() const noexcept;
  JobHeader& header() noexcept;
  std::uint64_t recipients_offset() const noexcept;  // of the '[' (file offset)
  std::uint64_t recipient_count() const noexcept;    // elements counted by the scan

  std::optional<PickupError> feed_recipients(std::string_view bytes, const RecipientFn& fn);
  bool recipients_done() const noexcept;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace salvo::inbound
