// SPDX-License-Identifier: Apache-2.0
// Segment file helpers. Creation is the only place with directory operations: after it the
// commit path is write + fdatasync into preallocated space.
#include "spool/segment_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <salvo/spool/errc.h>

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

Status write_id_mark(const std::string& dir, std::uint64_t mark) {
  const std::string path = id_mark_path(dir);
  const std::string tmp = path + ".tmp";
  char text[64];
  int len = std::snprintf(text, sizeof text, "%.*s%016llx\n",
                          static_cast<int>(kIdMarkMagic.size()), kIdMarkMagic.data(),
                          static_cast<unsigned long long>(mark));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno(errno);
  const bool ok = ::write(fd, text, static_cast<std::size_t>(len)) == len && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return fail_errno(err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail_errno(errno);
  return fsync_dir(dir);
}

Result<CreatedSegment> create_segment(const std::string& dir, SegmentSeq seq, std::uint32_t shard,
                                      std::uint64_t capacity, std::int64_t now_unix_ns) {
  std::string path = segment_path(dir, seq);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno(errno);
  auto bail = [&](int err) -> Result<CreatedSegment> {
    ::close(fd);
    ::unlink(path.c_str());
    return fail_errno(err);
  };
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(capacity));
  if (rc != 0) return bail(rc);
  std::string header, payload;
  encode(
      SegmentHeaderRecord{
          .shard = shard, .seq = seq, .created_unix_ns = now_unix_ns, .capacity = capacity},
      payload);
  frame(RecordType::SegmentHeader, payload, header);
  std::size_t done = 0;
  while (done < header.size()) {
    ssize_t n = ::pwrite(fd, header.data() + done, header.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return bail(n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return bail(errno);
  if (auto st = fsync_dir(dir); !st) {
    ::close(fd);
    ::unlink(path.c_str());
    return std::unexpected(st.error());
  }
  return CreatedSegment{fd, header.size()};
}

std::optional<RawRecord> SegmentScanner::next() {
  if (done_) return std::nullopt;
  std::string_view rest = bytes_.substr(std::min<std::uint64_t>(pos_, bytes_.size()));
  auto rec = parse_framed(rest, pos_);
  if (rec) {
    pos_ += rec->length;
    return *rec;
  }
  done_ = true;
  // Clean end: the never-written, zero-filled tail (or exactly the end of the file).
  std::string_view head = rest.substr(0, kFrameHeaderSize);
  torn_ = !std::all_of(head.begin(), head.end(), [](char c) { return c == 0; });
  return std::nullopt;
}

}  // namespace salvo::spool::detail
