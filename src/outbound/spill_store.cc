// SPDX-License-Identifier: Apache-2.0
// SpillStore: chunks of queued recipients in per-shard files (see spill_store.h).
#include "outbound/spill_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include <salvo/base/log.h>
#include <salvo/spool/records.h>

#include "outbound/types.h"

namespace salvo::outbound {
namespace {

constexpr std::uint32_t kChunkMagic = 0x4c4c5053;  // "SPLL"

// What precedes a chunk's entries: a torn or foreign chunk is refused, not queued.
struct ChunkHeader {
  std::uint32_t magic = kChunkMagic;
  std::uint32_t count = 0;
  std::uint32_t crc = 0;  // crc32c of the entries
  std::uint32_t reserved = 0;
};
static_assert(sizeof(ChunkHeader) == 16);

std::uint32_t crc_of(std::span<const SpillEntry> entries) noexcept {
  return spool::crc32c(std::string_view(reinterpret_cast<const char*>(entries.data()),
                                        entries.size_bytes()));
}

// Writes all of [data, data + n) at `offset`, retrying short writes and EINTR.
bool write_all(int fd, const char* data, std::size_t n, std::uint64_t offset) noexcept {
  while (n != 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return true;
}

bool read_all(int fd, char* data, std::size_t n, std::uint64_t offset) noexcept {
  while (n != 0) {
    const ssize_t r = ::pread(fd, data, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;  // the file is shorter than the chunk
      return false;
    }
    data += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<SpillStore>> SpillStore::open(std::string dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ec) std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(ec);
  return std::unique_ptr<SpillStore>(new SpillStore(std::move(dir)));
}

SpillStore::~SpillStore() {
  for (std::uint32_t i = 0; i < files_.size(); ++i) close_file(i);
  std::error_code ec;
  std::filesystem::remove(dir_, ec);  // empty by now; a failure leaves it to the next start
}

std::string SpillStore::path(std::uint32_t file) const {
  return fmt::format("{}/spill-{:06}", dir_, file);
}

void SpillStore::close_file(std::uint32_t file) noexcept {
  File& f = files_[file];
  if (f.fd < 0) return;
  ::close(f.fd);
  f.fd = -1;
  bytes_ -= f.size;
  f.size = 0;
  if (::unlink(path(file).c_str()) != 0 && errno != ENOENT) {
    log::warn("outbound: spill file {}: unlink: {}", path(file), std::strerror(errno));
  }
}

SpillStore::File* SpillStore::current() noexcept {
  if (have_current_ && files_[current_].size < kFileBytes) return &files_[current_];
  const auto n = static_cast<std::uint32_t>(files_.size());
  const int fd = ::open(path(n).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    log::warn("outbound: spill file {}: {}", path(n), std::strerror(errno));
    return nullptr;
  }
  if (have_current_ && files_[current_].live == 0) close_file(current_);
  files_.push_back(File{fd, 0, 0});
  current_ = n;
  have_current_ = true;
  return &files_.back();
}

std::optional<SpillChunk> SpillStore::write(std::span<const SpillEntry> entries) noexcept {
  if (entries.empty() || entries.size() > kMaxChunk) return std::nullopt;
  File* f = current();
  if (f == nullptr) {
    ++errors_;
    return std::nullopt;
  }
  ChunkHeader h;
  h.count = static_cast<std::uint32_t>(entries.size());
  h.crc = crc_of(entries);
  const std::uint64_t at = f->size;
  if (!write_all(f->fd, reinterpret_cast<const char*>(&h), sizeof h, at) ||
      !write_all(f->fd, reinterpret_cast<const char*>(entries.data()), entries.size_bytes(),
                 at + sizeof h)) {
    if (errors_++ == 0 || errors_ % 1000 == 0) {
      log::warn("outbound: spill file {}: write: {} (recipients stay in RAM; {} failures)",
                path(current_), std::strerror(errno), errors_);
    }
    return std::nullopt;  // the bytes past f->size are overwritten by the next chunk
  }
  const std::uint64_t n = sizeof h + entries.size_bytes();
  f->size += n;
  bytes_ += n;
  ++f->live;
  recipients_ += entries.size();
  ++chunks_written_;
  SpillChunk c;
  c.offset = at;
  c.file = current_;
  c.count = h.count;
  for (const SpillEntry& e : entries) {
    if (e.next_attempt_unix_ns != 0) {
      c.earliest = std::min(c.earliest, from_ns(e.next_attempt_unix_ns));
    }
  }
  return c;
}

void SpillStore::release(std::uint32_t file, std::uint32_t count) noexcept {
  recipients_ -= count;
  File& f = files_[file];
  if (--f.live != 0) return;
  if (file != current_) {
    close_file(file);
  } else if (::ftruncate(f.fd, 0) == 0) {  // keep appending to it, from its start
    bytes_ -= f.size;
    f.size = 0;
  }
}

void SpillStore::drop(const SpillChunk& c) noexcept {
  if (c.file >= files_.size() || files_[c.file].fd < 0) return;
  release(c.file, c.count);
}

Result<std::vector<SpillEntry>> SpillStore::read(const SpillChunk& c) noexcept {
  if (c.file >= files_.size() || files_[c.file].fd < 0) return fail(std::errc::invalid_argument);
  std::vector<SpillEntry> out(c.count);
  ChunkHeader h;
  const int fd = files_[c.file].fd;
  const bool ok = read_all(fd, reinterpret_cast<char*>(&h), sizeof h, c.offset) &&
                  read_all(fd, reinterpret_cast<char*>(out.data()), c.count * sizeof(SpillEntry),
                           c.offset + sizeof h);
  const int err = errno;
  release(c.file, c.count);
  ++chunks_read_;
  if (!ok || h.magic != kChunkMagic || h.count != c.count || h.crc != crc_of(out)) {
    ++errors_;
    log::error("outbound: spill file {}: the chunk at {} ({} recipients) is unreadable ({}); "
               "they stay in the spool and are queued again at the next start",
               path(c.file), c.offset, c.count, ok ? "bad checksum" : std::strerror(err));
    return fail(ok ? std::errc::illegal_byte_sequence : std::errc::io_error);
  }
  return out;
}

}  // namespace salvo::outbound
