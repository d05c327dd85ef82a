// SPDX-License-Identifier: Apache-2.0
// Segment file helpers. Creation is the only place with directory operations: after it the
// commit path is write + fdatasync into preallocated space. The record scanner resynchronises
// past damage (docs/spool-format.md §7).
#include "spool/segment_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <salvo/base/log.h>
#include <salvo/spool/errc.h>

#include "spool/wire.h"

namespace salvo::spool::detail {

std::string segment_path(const std::string& dir, SegmentSeq seq) {
  char name[40];
  std::snprintf(name, sizeof(name), "seg-%016llx.spool",
                static_cast<unsigned long long>(seq.value()));
  return dir + "/" + name;
}

std::optional<SegmentSeq> parse_segment_name(std::string_view name) {
  constexpr std::string_view kPrefix = "seg-", kSuffix = ".spool";
  if (name.size() != kPrefix.size() + 16 + kSuffix.size()) return std::nullopt;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : name.substr(kPrefix.size(), 16)) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return SegmentSeq(v);
}

Result<std::vector<SegmentSeq>> list_segments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fail_errno(errno);
  std::vector<SegmentSeq> out;
  while (dirent* ent = ::readdir(d)) {
    if (auto seq = parse_segment_name(ent->d_name)) out.push_back(*seq);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status remove_unfinished_segments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT ? Status{} : fail_errno(errno);
  std::vector<std::string> names, notes;
  auto segment_of = [](std::string_view name, std::string_view suffix) {
    return name.ends_with(suffix) ? parse_segment_name(name.substr(0, name.size() - suffix.size()))
                                  : std::nullopt;
  };
  while (dirent* ent = ::readdir(d)) {
    std::string_view name(ent->d_name);
    if (segment_of(name, kUnfinishedSuffix)) names.emplace_back(name);
    // A punch note whose segment was reclaimed (or a temporary one a crash left).
    if (segment_of(name, kPunchNoteSuffix)) notes.emplace_back(name);
    if (name.ends_with(".punched.tmp")) names.emplace_back(name);
  }
  ::closedir(d);
  for (const auto& n : names) {
    const std::string p = dir + "/" + n;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return fail_errno(errno);
    if (n.ends_with(kUnfinishedSuffix)) {
      log::warn("spool: removed {}: a segment whose creation was cut short (it held no mail)",
                p);
    }
  }
  for (const auto& n : notes) {
    const std::string seg = dir + "/" + n.substr(0, n.size() - kPunchNoteSuffix.size());
    if (::access(seg.c_str(), F_OK) == 0 || errno != ENOENT) continue;
    if (::unlink((dir + "/" + n).c_str()) != 0 && errno != ENOENT) return fail_errno(errno);
    names.push_back(n);
  }
  if (names.empty()) return {};
  return fsync_dir(dir);
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return fail_errno(err);
  return {};
}

namespace {
constexpr std::string_view kIdMarkMagic = "salvo-next-id 1 ";
std::string id_mark_path(const std::string& dir) { return dir + "/next-id"; }
}  // namespace

Result<std::uint64_t> read_id_mark(const std::string& dir) {
  const std::string path = id_mark_path(dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::uint64_t{0};
    return fail(errc::bad_id_mark);
  }
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  // "salvo-next-id 1 " + 16 hex digits + "\n"
  if (n != static_cast<ssize_t>(kIdMarkMagic.size() + 17)) return fail(errc::bad_id_mark);
  std::string_view text(buf, static_cast<std::size_t>(n));
  if (!text.starts_with(kIdMarkMagic) || text.back() != '\n') return fail(errc::bad_id_mark);
  std::uint64_t v = 0;
  for (char c : text.substr(kIdMarkMagic.size(), 16)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return fail(errc::bad_id_mark);
    v = v << 4 | static_cast<std::uint64_t>(digit);
  }
  return v;
}

// Replaces path (in dir) with bytes, atomically and durably: path.tmp written and fsynced,
// renamed over path, then the directory fsynced.
Status replace_file(const std::string& dir, const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno(errno);
  std::size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) {
    ::unlink(tmp.c_str());
    return fail_errno(err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail_errno(errno);
  return fsync_dir(dir);
}

Status write_id_mark(const std::string& dir, std::uint64_t mark) {
  char text[64];
  int len = std::snprintf(text, sizeof text, "%.*s%016llx\n",
                          static_cast<int>(kIdMarkMagic.size()), kIdMarkMagic.data(),
                          static_cast<unsigned long long>(mark));
  const std::string_view bytes(text, static_cast<std::size_t>(len));
  return replace_file(dir, id_mark_path(dir), bytes);
}

Status remove_id_mark(const std::string& dir) {
  if (::unlink(id_mark_path(dir).c_str()) != 0 && errno != ENOENT) return fail_errno(errno);
  return fsync_dir(dir);
}

std::string punch_note_path(const std::string& dir, SegmentSeq seq) {
  return segment_path(dir, seq).append(kPunchNoteSuffix);
}

namespace {
// "SPUNCHv1", seq u64, created i64, count u32, count * (begin u64, end u64), CRC32C u32 of
// everything before it. Little-endian, as records.
constexpr std::string_view kPunchNoteMagic = "SPUNCHv1";
constexpr std::size_t kPunchNoteFixed = 8 + 8 + 8 + 4;
constexpr std::uint64_t kMaxNoteBytes = kPunchNoteFixed + 16ull * (1u << 24) + 4;
}  // namespace

bool punch_note_fits(const PunchNote& note, std::uint64_t header_end,
                     std::uint64_t capacity) noexcept {
  std::uint64_t at = header_end;
  for (const ByteRange& r : note.ranges) {
    if (r.begin < at || r.end <= r.begin || r.end > capacity) return false;
    at = r.end;
  }
  return true;
}

Result<std::optional<PunchNote>> read_punch_note(const std::string& dir, SegmentSeq seq) {
  const std::string path = punch_note_path(dir, seq);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<PunchNote>{};
    return fail(errc::bad_punch_note);
  }
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || buf.size() > kMaxNoteBytes) {
      if (n < 0) buf.clear();
      break;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::string_view in(buf);
  if (in.size() < kPunchNoteFixed + 4 || !in.starts_with(kPunchNoteMagic) ||
      crc32c(in.substr(0, in.size() - 4)) != wire::load_u32(in.data() + in.size() - 4)) {
    return fail(errc::bad_punch_note);
  }
  wire::Reader r(in.substr(kPunchNoteMagic.size(), in.size() - 4 - kPunchNoteMagic.size()));
  PunchNote note;
  note.seq = SegmentSeq(r.u64());
  note.created_unix_ns = r.i64();
  const std::uint32_t count = r.count(16);
  note.ranges.reserve(count);
  for (std::uint32_t i = 0; i < count && r.ok(); ++i) {
    const std::uint64_t begin = r.u64();
    note.ranges.push_back({begin, r.u64()});
  }
  if (!r.ok() || !r.at_end() || note.seq != seq) return fail(errc::bad_punch_note);
  return std::optional<PunchNote>(std::move(note));
}

Status write_punch_note(const std::string& dir, const PunchNote& note) {
  std::string buf(kPunchNoteMagic);
  wire::put_u64(buf, note.seq.value());
  wire::put_i64(buf, note.created_unix_ns);
  wire::put_u32(buf, static_cast<std::uint32_t>(note.ranges.size()));
  for (const ByteRange& r : note.ranges) {
    wire::put_u64(buf, r.begin);
    wire::put_u64(buf, r.end);
  }
  wire::put_u32(buf, crc32c(buf));
  return replace_file(dir, punch_note_path(dir, note.seq), buf);
}

void remove_punch_note(const std::string& dir, SegmentSeq seq) noexcept {
  ::unlink(punch_note_path(dir, seq).c_str());
}

std::string unfinished_path(const std::string& dir, SegmentSeq seq) {
  return segment_path(dir, seq).append(kUnfinishedSuffix);
}

// Made under a temporary name and linked into place only once its header is durable, so a
// crash half-way leaves no segment without a header (recovery would keep that for
// inspection and complain at every start), only a *.new file the next start removes. link
// fails if the name exists, as O_EXCL did.
Result<CreatedSegment> begin_segment(const std::string& dir, SegmentSeq seq, std::uint32_t shard,
                                     std::uint64_t capacity, std::int64_t now_unix_ns) {
  const std::string tmp = unfinished_path(dir, seq);
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno(errno);
  auto bail = [&](int err) -> Result<CreatedSegment> {
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail_errno(err);
  };
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(capacity));
  if (rc != 0) return bail(rc);
  std::string header, payload;
  encode(
      SegmentHeaderRecord{
          .shard = shard, .seq = seq, .created_unix_ns = now_unix_ns, .capacity = capacity},
      payload);
  frame(RecordType::SegmentHeader, payload, seq, 0, header);
  std::size_t done = 0;
  while (done < header.size()) {
    ssize_t n = ::pwrite(fd, header.data() + done, header.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return bail(n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  return CreatedSegment{fd, header.size()};
}

Status finish_segment(const std::string& dir, SegmentSeq seq) {
  const std::string tmp = unfinished_path(dir, seq);
  // A note left by an earlier segment of this number (numbers restart once every segment
  // was reclaimed) names that one's creation time, so it would be ignored; remove it anyway.
  remove_punch_note(dir, seq);
  if (::link(tmp.c_str(), segment_path(dir, seq).c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno(err);
  }
  ::unlink(tmp.c_str());
  return {};
}

Result<CreatedSegment> create_segment(const std::string& dir, SegmentSeq seq, std::uint32_t shard,
                                      std::uint64_t capacity, std::int64_t now_unix_ns) {
  auto made = begin_segment(dir, seq, shard, capacity, now_unix_ns);
  if (!made) return made;
  auto bail = [&](Status st) -> Result<CreatedSegment> {
    ::close(made->fd);
    return std::unexpected(st.error());
  };
  if (::fsync(made->fd) != 0) {
    int err = errno;
    ::unlink(unfinished_path(dir, seq).c_str());
    return bail(fail_errno(err));
  }
  if (auto st = finish_segment(dir, seq); !st) return bail(st);
  if (auto st = fsync_dir(dir); !st) {
    ::unlink(segment_path(dir, seq).c_str());
    return bail(st);
  }
  return made;
}

namespace {

// Zero runs are compared a block at a time: memcmp is vectorised, a byte loop is not.
constexpr char kZeros[4096] = {};

// The first non-zero byte at or after `from`, or bytes.size().
std::uint64_t skip_zeros(std::string_view bytes, std::uint64_t from) {
  while (from < bytes.size()) {
    const std::size_t n = std::min<std::uint64_t>(sizeof kZeros, bytes.size() - from);
    if (std::memcmp(bytes.data() + from, kZeros, n) != 0) {
      while (bytes[from] == 0) ++from;
      return from;
    }
    from += n;
  }
  return bytes.size();
}

// One past the last non-zero byte at or after `from` (`from` when there is none).
std::uint64_t end_of_data(std::string_view bytes, std::uint64_t from) {
  std::uint64_t end = bytes.size();
  while (end > from) {
    const std::size_t n = std::min<std::uint64_t>(sizeof kZeros, end - from);
    if (std::memcmp(bytes.data() + end - n, kZeros, n) != 0) {
      while (bytes[end - 1] == 0) --end;
      return end;
    }
    end -= n;
  }
  return from;
}

}  // namespace

void SegmentScanner::stop_at(std::uint64_t end) noexcept {
  bytes_ = bytes_.substr(0, std::min<std::uint64_t>(end, bytes_.size()));
}

std::optional<RawRecord> SegmentScanner::verify(std::uint64_t pos) {
  auto rec = parse_framed(bytes_.substr(pos), seq_, pos);
  if (!rec) {
    if (rec.error() == errc::bad_checksum) {
      spent_ += kFrameHeaderSize + wire::load_u32(bytes_.data() + pos + 8);
    }
    return std::nullopt;
  }
  if (!bound_) bound_ = rec->bound;
  // A version-1 frame inside a version-2 segment is not the writer's: it could be one
  // embedded in a payload, exposed by damage to the record around it.
  if (rec->bound != *bound_) return std::nullopt;
  return *rec;
}

const ByteRange* SegmentScanner::skip_at(std::uint64_t pos) const noexcept {
  auto it = std::upper_bound(skips_.begin(), skips_.end(), pos,
                             [](std::uint64_t p, const ByteRange& r) { return p < r.end; });
  return it != skips_.end() && it->begin <= pos ? &*it : nullptr;
}

RawRecord SegmentScanner::take(const RawRecord& rec) noexcept {
  pos_ = rec.offset + rec.length;
  if (damage_.regions != 0) ++damage_.records_after;
  return rec;
}

std::optional<RawRecord> SegmentScanner::resync(std::uint64_t from) {
  char magic[4];
  wire::store_u32(magic, kFrameMagic);
  const std::string_view m(magic, sizeof magic);
  const std::uint64_t budget = kResyncBudgetFactor * bytes_.size();
  for (std::size_t at = bytes_.find(m, from); at != std::string_view::npos;
       at = bytes_.find(m, at + 1)) {
    if (spent_ > budget) {
      damage_.gave_up = true;
      return std::nullopt;
    }
    // Inside a noted range only dead records (or their remains) can be.
    if (const ByteRange* r = skip_at(at)) {
      at = r->end - 1;
      continue;
    }
    if (auto rec = verify(at)) return rec;
  }
  return std::nullopt;
}

std::optional<RawRecord> SegmentScanner::next() {
  if (done_) return std::nullopt;
  while (const ByteRange* r = pos_ == 0 ? nullptr : skip_at(pos_)) {
    damage_.punched_bytes += r->end - pos_;
    pos_ = r->end;
  }
  if (pos_ >= bytes_.size()) return std::nullopt;
  if (auto rec = verify(pos_)) return take(*rec);
  done_ = true;
  if (pos_ == 0) return std::nullopt;  // no segment header: the caller rejects the segment
  const std::uint64_t data = skip_zeros(bytes_, pos_);
  if (data == bytes_.size()) return std::nullopt;  // the zero tail: a clean end
  // A record never starts inside a zero run (its magic is not zero).
  if (auto rec = resync(data == pos_ ? pos_ + 1 : data)) {
    ++damage_.regions;
    damage_.skipped_bytes += rec->offset - pos_;
    done_ = false;
    return take(*rec);
  }
  const std::uint64_t rest = end_of_data(bytes_, pos_) - pos_;
  if (damage_.gave_up) {
    ++damage_.regions;  // unread, so kept whole with the segment
    damage_.skipped_bytes += rest;
  } else {
    damage_.torn = true;
    damage_.dropped_bytes = rest;
  }
  return std::nullopt;
}

}  // namespace salvo::spool::detail
