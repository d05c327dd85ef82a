// SPDX-License-Identifier: Apache-2.0
// Payload encoders/decoders and record framing. Decoders check every length against the
// bytes left and every enum against its range: disk input never reaches an assert.
#include <salvo/spool/records.h>

#include <charconv>

#include <salvo/base/assert.h>
#include <salvo/spool/errc.h>

#include "spool/wire.h"

namespace salvo::spool {
namespace {

using wire::Reader;

// The pickup identity's kind byte (docs/spool-format.md §4). Kind 1, the file's name, device,
// inode, size and mtime, was written before claims: two different files can share all five
// (a recycled inode, `cp -p`), so only its name is kept.
constexpr std::uint8_t kNoPickup = 0, kPickupStat = 1, kPickupClaim = 2;

// The CRC's starting value for a record bound to its place: the CRC of (segment, offset).
std::uint32_t place_crc(SegmentSeq segment, std::uint64_t offset) noexcept {
  char place[16];
  wire::store_u32(place, static_cast<std::uint32_t>(segment.value()));
  wire::store_u32(place + 4, static_cast<std::uint32_t>(segment.value() >> 32));
  wire::store_u32(place + 8, static_cast<std::uint32_t>(offset));
  wire::store_u32(place + 12, static_cast<std::uint32_t>(offset >> 32));
  return crc32c(std::string_view(place, sizeof place));
}

void put_pickup(std::string& out, const std::optional<PickupIdentity>& p) {
  wire::put_u8(out, p ? kPickupClaim : kNoPickup);
  if (!p) return;
  wire::put_str(out, p->name);
  wire::put_str(out, p->claim);
}

std::optional<PickupIdentity> get_pickup(Reader& r) {
  const std::uint8_t kind = r.u8();
  if (kind == kNoPickup) return std::nullopt;
  if (kind != kPickupStat && kind != kPickupClaim) {
    r.invalidate();
    return std::nullopt;
  }
  PickupIdentity p;
  p.name = std::string(r.str());
  if (kind == kPickupClaim) {
    p.claim = std::string(r.str());
  } else {
    for (int i = 0; i < 4; ++i) r.u64();  // device, inode, size, mtime
  }
  return p;
}

bool valid_source(std::uint8_t v) { return v >= 1 && v <= 4; }
bool valid_ret(std::uint8_t v) { return v <= 2; }
bool valid_state(std::uint8_t v) { return v <= 4; }

template <class T>
Result<T> finish(const Reader& r, T value) {
  if (!r.ok() || !r.at_end()) return fail(errc::malformed_record);
  return value;
}

}  // namespace

std::string format_id(std::uint64_t id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, id >>= 4) s[static_cast<std::size_t>(i)] = kHex[id & 0xf];
  return s;
}

std::optional<std::uint64_t> parse_id(std::string_view text) noexcept {
  std::uint64_t id = 0;
  if (text.empty() || text.size() > 16) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id, 16);
  if (ec != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
  return id;
}

std::string_view to_string(RecipientState s) noexcept {
  switch (s) {
    case RecipientState::Pending:
      return "pending";
    case RecipientState::Delivered:
      return "delivered";
    case RecipientState::Bounced:
      return "bounced";
    case RecipientState::Expired:
      return "expired";
    case RecipientState::Deferred:
      return "deferred";
  }
  return "unknown";
}

std::string_view to_string(Source s) noexcept {
  switch (s) {
    case Source::Smtp:
      return "smtp";
    case Source::Pickup:
      return "pickup";
    case Source::Http:
      return "http";
    case Source::Dsn:
      return "dsn";
  }
  return "unknown";
}

void encode(const MessageRecord& m, std::string& out) {
  wire::put_u64(out, m.id.value());
  wire::put_i64(out, m.received_unix_ns);
  wire::put_u8(out, static_cast<std::uint8_t>(m.source));
  wire::put_u8(out, m.flags);
  wire::put_u8(out, static_cast<std::uint8_t>(m.ret));
  wire::put_str(out, m.job);
  wire::put_str(out, m.reverse_path);
  wire::put_str(out, m.envid);
  wire::put_str(out, m.client_info);
  wire::put_u32(out, static_cast<std::uint32_t>(m.recipients.size()));
  for (const Recipient& rc : m.recipients) {
    wire::put_str(out, rc.address);
    wire::put_u8(out, rc.notify);
    wire::put_str(out, rc.orcpt);
  }
  put_pickup(out, m.pickup);
  wire::put_u32(out, static_cast<std::uint32_t>(m.body_head.size() + m.body.size()));
  out.append(m.body_head);
  out.append(m.body);
}

std::size_t encoded_size(const MessageRecord& m) noexcept {
  auto str = [](std::string_view s) { return 4 + s.size(); };
  std::size_t n = 8 + 8 + 3 + str(m.job) + str(m.reverse_path) + str(m.envid) +
                  str(m.client_info) + 4;
  for (const Recipient& rc : m.recipients) n += str(rc.address) + 1 + str(rc.orcpt);
  n += 1;
  if (m.pickup) n += str(m.pickup->name) + str(m.pickup->claim);
  return n + 4 + m.body_head.size() + m.body.size();
}

Result<MessageRecord> decode_message(std::string_view payload) {
  Reader r(payload);
  MessageRecord m;
  m.id = MessageId(r.u64());
  m.received_unix_ns = r.i64();
  std::uint8_t src = r.u8();
  m.flags = r.u8();
  std::uint8_t ret = r.u8();
  m.job = r.str();
  m.reverse_path = r.str();
  m.envid = r.str();
  m.client_info = r.str();
  std::uint32_t n = r.count(9);
  m.recipients.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    Recipient rc;
    rc.address = r.str();
    rc.notify = r.u8();
    rc.orcpt = r.str();
    m.recipients.push_back(rc);
  }
  m.pickup = get_pickup(r);
  m.body = r.str();
  if (!valid_source(src) || !valid_ret(ret)) return fail(errc::malformed_record);
  m.source = static_cast<Source>(src);
  m.ret = static_cast<Ret>(ret);
  return finish(r, std::move(m));
}

void encode(const JobTemplateRecord& t, std::string& out) {
  wire::put_u64(out, t.job_id.value());
  wire::put_i64(out, t.received_unix_ns);
  wire::put_u8(out, static_cast<std::uint8_t>(t.source));
  wire::put_u8(out, t.flags);
  wire::put_u8(out, static_cast<std::uint8_t>(t.ret));
  wire::put_str(out, t.job);
  wire::put_str(out, t.from);
  wire::put_str(out, t.envid);
  wire::put_str(out, t.content);
}

Result<JobTemplateRecord> decode_job_template(std::string_view payload) {
  Reader r(payload);
  JobTemplateRecord t;
  t.job_id = MessageId(r.u64());
  t.received_unix_ns = r.i64();
  std::uint8_t src = r.u8();
  t.flags = r.u8();
  std::uint8_t ret = r.u8();
  t.job = r.str();
  t.from = r.str();
  t.envid = r.str();
  t.content = r.str();
  if (!valid_source(src) || !valid_ret(ret)) return fail(errc::malformed_record);
  t.source = static_cast<Source>(src);
  t.ret = static_cast<Ret>(ret);
  return finish(r, std::move(t));
}

void encode(const JobRecipientsRecord& b, std::string& out) {
  wire::put_u64(out, b.job_id.value());
  wire::put_u32(out, b.first_index);
  wire::put_u32(out, static_cast<std::uint32_t>(b.recipients.size()));
  for (const JobRecipient& rc : b.recipients) {
    wire::put_str(out, rc.address);
    wire::put_u8(out, rc.notify);
    wire::put_str(out, rc.orcpt);
    wire::put_u32(out, static_cast<std::uint32_t>(rc.vars.size()));
    for (const auto& [k, v] : rc.vars) {
      wire::put_str(out, k);
      wire::put_str(out, v);
    }
  }
}

Result<JobRecipientsRecord> decode_job_recipients(std::string_view payload) {
  Reader r(payload);
  JobRecipientsRecord b;
  b.job_id = MessageId(r.u64());
  b.first_index = r.u32();
  std::uint32_t n = r.count(13);
  b.recipients.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    JobRecipient rc;
    rc.address = r.str();
    rc.notify = r.u8();
    rc.orcpt = r.str();
    std::uint32_t nv = r.count(8);
    rc.vars.reserve(nv);
    for (std::uint32_t k = 0; k < nv && r.ok(); ++k) {
      std::string_view key = r.str();
      std::string_view val = r.str();
      rc.vars.emplace_back(key, val);
    }
    b.recipients.push_back(std::move(rc));
  }
  if (r.ok() && std::uint64_t{b.first_index} + n > 0xFFFFFFFFull) {
    return fail(errc::malformed_record);
  }
  return finish(r, std::move(b));
}

void encode(const JobCommitRecord& c, std::string& out) {
  wire::put_u64(out, c.job_id.value());
  wire::put_u32(out, c.recipient_count);
  put_pickup(out, c.pickup);
}

Result<JobCommitRecord> decode_job_commit(std::string_view payload) {
  Reader r(payload);
  JobCommitRecord c;
  c.job_id = MessageId(r.u64());
  c.recipient_count = r.u32();
  c.pickup = get_pickup(r);
  return finish(r, std::move(c));
}

void encode(const RecipientStateRecord& s, std::string& out) {
  wire::put_u32(out, static_cast<std::uint32_t>(s.updates.size()));
  for (const StateUpdate& u : s.updates) {
    wire::put_u64(out, u.message.value());
    wire::put_u32(out, u.recipient.value());
    wire::put_u8(out, static_cast<std::uint8_t>(u.state));
    wire::put_u32(out, u.attempts);
    wire::put_i64(out, u.next_attempt_unix_ns);
  }
}

Result<RecipientStateRecord> decode_recipient_state(std::string_view payload) {
  Reader r(payload);
  RecipientStateRecord s;
  std::uint32_t n = r.count(25);
  s.updates.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    StateUpdate u;
    u.message = MessageId(r.u64());
    u.recipient = RecipientIndex(r.u32());
    std::uint8_t st = r.u8();
    u.attempts = r.u32();
    u.next_attempt_unix_ns = r.i64();
    if (!valid_state(st)) return fail(errc::malformed_record);
    u.state = static_cast<RecipientState>(st);
    s.updates.push_back(u);
  }
  return finish(r, std::move(s));
}

void encode(const SegmentHeaderRecord& h, std::string& out) {
  wire::put_u16(out, h.version);
  wire::put_u32(out, h.shard);
  wire::put_u64(out, h.seq.value());
  wire::put_i64(out, h.created_unix_ns);
  wire::put_u64(out, h.capacity);
}

Result<SegmentHeaderRecord> decode_segment_header(std::string_view payload) {
  Reader r(payload);
  SegmentHeaderRecord h;
  h.version = r.u16();
  h.shard = r.u32();
  h.seq = SegmentSeq(r.u64());
  h.created_unix_ns = r.i64();
  h.capacity = r.u64();
  if (r.ok() && h.version != 1 && h.version != kSegmentVersion) return fail(errc::malformed_record);
  return finish(r, h);
}

std::size_t frame(RecordType type, std::size_t payload_size,
                  const std::function<void(std::string&)>& put, SegmentSeq segment,
                  std::uint64_t offset, std::string& out) {
  std::size_t start = out.size();
  wire::put_u32(out, kFrameMagic);
  wire::put_u8(out, static_cast<std::uint8_t>(type));
  wire::put_u8(out, kFrameBound);
  out.append(2, '\0');
  wire::put_u32(out, static_cast<std::uint32_t>(payload_size));
  put(out);
  SALVO_ASSERT(out.size() - start == kFrameHeaderSize + payload_size);
  std::uint32_t c = crc32c(std::string_view(out).substr(start), place_crc(segment, offset));
  wire::put_u32(out, c);
  return out.size() - start;
}

std::size_t frame(RecordType type, std::string_view payload, SegmentSeq segment,
                  std::uint64_t offset, std::string& out) {
  return frame(type, payload.size(), [payload](std::string& o) { o.append(payload); }, segment,
               offset, out);
}

void rebind(std::span<char> framed, SegmentSeq segment, std::uint64_t offset) noexcept {
  const std::size_t covered = framed.size() - 4;
  wire::store_u32(framed.data() + covered,
                  crc32c(std::string_view(framed.data(), covered), place_crc(segment, offset)));
}

Result<RawRecord> parse_framed(std::string_view bytes, SegmentSeq segment, std::uint64_t offset) {
  if (bytes.size() < kFrameOverhead) return fail(errc::malformed_record);
  const char* p = bytes.data();
  if (wire::load_u32(p) != kFrameMagic) return fail(errc::malformed_record);
  auto type = static_cast<std::uint8_t>(p[4]);
  auto flags = static_cast<std::uint8_t>(p[5]);
  if ((flags & ~kFrameBound) != 0 || p[6] != 0 || p[7] != 0) return fail(errc::malformed_record);
  if (type < 1 || type > 6) return fail(errc::malformed_record);
  std::uint32_t len = wire::load_u32(p + 8);
  if (len > kMaxPayload || len > bytes.size() - kFrameOverhead) {
    return fail(errc::malformed_record);
  }
  const bool bound = flags == kFrameBound;
  std::string_view covered = bytes.substr(0, kFrameHeaderSize + len);
  if (crc32c(covered, bound ? place_crc(segment, offset) : 0) !=
      wire::load_u32(p + kFrameHeaderSize + len)) {
    return fail(errc::bad_checksum);
  }
  return RawRecord{static_cast<RecordType>(type), bytes.substr(kFrameHeaderSize, len), offset,
                   static_cast<std::uint32_t>(len + kFrameOverhead), bound};
}

}  // namespace salvo::spool
