// SPDX-License-Identifier: Apache-2.0
// The spool's record types and their payload codec. Every string is length-prefixed, so
// no envelope byte (CR, LF, NUL) can forge a record (Exim CVE-2020-28021). Decoded records
// hold string_views into the decoded bytes: keep those bytes alive while using them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/base/strong_id.h>

namespace salvo::spool {

using MessageId = StrongId<struct MessageIdTag, std::uint64_t>;  // a message or a job
using RecipientIndex = StrongId<struct RecipientIndexTag, std::uint32_t>;
using SegmentSeq = StrongId<struct SegmentSeqTag, std::uint64_t>;

// A MessageId as operators see it ("queued as ...", Received:, the accounting log's "id",
// salvoctl, the inject API): 16 lower-case hex digits.
std::string format_id(std::uint64_t id);
// Its inverse: 1 to 16 hex digits; nullopt for anything else (and for 0, never an id).
std::optional<std::uint64_t> parse_id(std::string_view text) noexcept;

// Where a framed record sits: its segment, byte offset and framed length.
struct Location {
  SegmentSeq segment{};
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  bool operator==(const Location&) const = default;
};

enum class RecordType : std::uint8_t {
  SegmentHeader = 1,
  Message = 2,
  JobTemplate = 3,
  JobRecipients = 4,
  JobCommit = 5,
  RecipientState = 6,
};

enum class Source : std::uint8_t { Smtp = 1, Pickup = 2, Http = 3, Dsn = 4 };
// RFC 3461 RET.
enum class Ret : std::uint8_t { Unspecified = 0, Full = 1, Headers = 2 };
// RFC 3461 NOTIFY bits; 0 = not given.
inline constexpr std::uint8_t kNotifyNever = 1, kNotifySuccess = 2, kNotifyFailure = 4,
                              kNotifyDelay = 8;
// Message flags.
inline constexpr std::uint8_t kFlagSmtpUtf8 = 1, kFlag8BitMime = 2;

enum class RecipientState : std::uint8_t {
  Pending = 0,
  Delivered = 1,
  Bounced = 2,
  Expired = 3,
  Deferred = 4,
};
constexpr bool is_final(RecipientState s) noexcept {
  return s == RecipientState::Delivered || s == RecipientState::Bounced ||
         s == RecipientState::Expired;
}
std::string_view to_string(RecipientState s) noexcept;
std::string_view to_string(Source s) noexcept;

struct Recipient {
  std::string_view address;
  std::uint8_t notify = 0;
  std::string_view orcpt;  // RFC 3461 ORCPT, "addr-type;xtext" as received
};

// A pickup file's identity (docs/spool-format.md §4, §8), stored in the record that commits
// it: the name it had in pickup/, and its claim, the name the shard renamed it to in
// pickup/.work/shard-N/ before reading it. A claim starts with an id from the shard's writer,
// so no other file is ever given it: a file claimed before a crash whose claim is in the spool
// was queued, and is removed instead of queued twice.
struct PickupIdentity {
  std::string name;
  // Empty in records written before claims existed (read for their name only; recovery
  // ignores them).
  std::string claim;
  bool operator==(const PickupIdentity&) const = default;
};

struct MessageRecord {
  MessageId id{};
  std::int64_t received_unix_ns = 0;
  Source source = Source::Smtp;
  std::uint8_t flags = 0;
  Ret ret = Ret::Unspecified;
  std::string_view job;
  std::string_view reverse_path;
  std::string_view envid;
  std::string_view client_info;  // "helo=... addr=... auth=..." for Received/accounting
  std::vector<Recipient> recipients;
  std::optional<PickupIdentity> pickup;
  // The message as stored: body_head (e.g. the Received: line salvod adds), then body. On
  // disk they are one string: decode() gives all of it in body and leaves body_head empty.
  // Two views, so a caller never joins them in a buffer of its own.
  std::string_view body_head;
  std::string_view body;
};

// A bulk job's template, stored once (.json pickup file / HTTP inject).
struct JobTemplateRecord {
  MessageId job_id{};
  std::int64_t received_unix_ns = 0;
  Source source = Source::Pickup;
  std::uint8_t flags = 0;
  Ret ret = Ret::Unspecified;
  std::string_view job;
  std::string_view from;
  std::string_view envid;
  std::string_view content;
};

struct JobRecipient {
  std::string_view address;
  std::uint8_t notify = 0;
  std::string_view orcpt;
  std::vector<std::pair<std::string_view, std::string_view>> vars;
};

// A batch of a job's recipients: indexes first_index .. first_index + size - 1.
struct JobRecipientsRecord {
  MessageId job_id{};
  std::uint32_t first_index = 0;
  std::vector<JobRecipient> recipients;
};

// The job is valid only once this record is durable; it is written after every record of
// the job has been committed.
struct JobCommitRecord {
  MessageId job_id{};
  std::uint32_t recipient_count = 0;
  std::optional<PickupIdentity> pickup;
};

struct StateUpdate {
  MessageId message{};
  RecipientIndex recipient{};
  RecipientState state = RecipientState::Pending;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_unix_ns = 0;  // Deferred only
  bool operator==(const StateUpdate&) const = default;
};

struct RecipientStateRecord {
  std::vector<StateUpdate> updates;
};

// The segment format (docs/spool-format.md §2): version 1 framed records with a CRC over the
// record alone; version 2, written since, binds every record to its place (kFrameBound).
// Recovery reads both.
inline constexpr std::uint16_t kSegmentVersion = 2;

struct SegmentHeaderRecord {
  std::uint16_t version = kSegmentVersion;
  std::uint32_t shard = 0;
  SegmentSeq seq{};
  std::int64_t created_unix_ns = 0;
  std::uint64_t capacity = 0;
};

// Payload encoders append to out (no framing).
void encode(const MessageRecord& r, std::string& out);
void encode(const JobTemplateRecord& r, std::string& out);
void encode(const JobRecipientsRecord& r, std::string& out);
void encode(const JobCommitRecord& r, std::string& out);
void encode(const RecipientStateRecord& r, std::string& out);
void encode(const SegmentHeaderRecord& r, std::string& out);

// Payload decoders: errc::malformed_record on any inconsistency, never a crash.
[[nodiscard]] Result<MessageRecord> decode_message(std::string_view payload);
[[nodiscard]] Result<JobTemplateRecord> decode_job_template(std::string_view payload);
[[nodiscard]] Result<JobRecipientsRecord> decode_job_recipients(std::string_view payload);
[[nodiscard]] Result<JobCommitRecord> decode_job_commit(std::string_view payload);
[[nodiscard]] Result<RecipientStateRecord> decode_recipient_state(std::string_view payload);
[[nodiscard]] Result<SegmentHeaderRecord> decode_segment_header(std::string_view payload);

// Framing: [magic u32][type u8][flags u8][0 u8 x2][payload length u32][payload][crc32c u32],
// little endian; the CRC covers header and payload. With kFrameBound in flags (every record
// of a version-2 segment) it first covers the record's place, the segment sequence and the
// offset (u64 each, not stored): a record then verifies only where the writer put it, never
// as stale bytes elsewhere or as a frame embedded in another record's payload.
inline constexpr std::size_t kFrameHeaderSize = 12;
inline constexpr std::size_t kFrameOverhead = 16;
inline constexpr std::uint32_t kMaxPayload = 1u << 30;
inline constexpr std::uint32_t kFrameMagic = 0x4C505353u;  // the bytes "SSPL"
inline constexpr std::uint8_t kFrameBound = 1;
// Appends a framed record built by encode(), bound to (segment, offset), to out; returns
// the framed length.
std::size_t frame(RecordType type, std::string_view payload, SegmentSeq segment,
                  std::uint64_t offset, std::string& out);
// The same, with the payload written by `put` straight into out (it must append exactly
// payload_size bytes): a large record is then copied once, not encoded and copied again.
std::size_t frame(RecordType type, std::size_t payload_size,
                  const std::function<void(std::string&)>& put, SegmentSeq segment,
                  std::uint64_t offset, std::string& out);
// What encode(m, out) appends, in bytes.
std::size_t encoded_size(const MessageRecord& m) noexcept;
// The CRC of a bound framed record moved to (segment, offset) (the writer relocating a
// batch after an IO error).
void rebind(std::span<char> framed, SegmentSeq segment, std::uint64_t offset) noexcept;

// A framed record found in segment bytes; payload views into those bytes.
struct RawRecord {
  RecordType type{};
  std::string_view payload;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  bool bound = false;  // kFrameBound: a version-2 segment's record
};

// Verifies one framed record found at (segment, offset): a whole Location read back, or a
// candidate of the recovery scan. errc::bad_checksum when the header is sane and the CRC
// (over header + payload bytes, bound or not as the flags say) fails, malformed_record
// otherwise.
[[nodiscard]] Result<RawRecord> parse_framed(std::string_view bytes, SegmentSeq segment,
                                             std::uint64_t offset);

std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) noexcept;

}  // namespace salvo::spool
