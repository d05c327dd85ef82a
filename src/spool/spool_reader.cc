// SPDX-License-Identifier: Apache-2.0
// Record read-back: pread for tools and tests, io::Engine reads for shard code.
#include <salvo/spool/spool_reader.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <salvo/io/engine.h>
#include <salvo/spool/errc.h>

#include "spool/segment_file.h"

namespace salvo::spool {

Result<RecordBytes> read_record(const std::string& dir, Location loc) {
  if (loc.length < kFrameOverhead) return fail(errc::malformed_record);
  auto seg = SegmentRecords::open(dir, loc.segment);
  if (!seg) return std::unexpected(seg.error());
  return seg->read(loc);
}

Result<SegmentRecords> SegmentRecords::open(const std::string& dir, SegmentSeq seq) {
  const std::string path = detail::segment_path(dir, seq);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno);
  return SegmentRecords(fd, seq);
}

SegmentRecords& SegmentRecords::operator=(SegmentRecords&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    seq_ = o.seq_;
  }
  return *this;
}

SegmentRecords::~SegmentRecords() {
  if (fd_ >= 0) ::close(fd_);
}

Result<RecordBytes> SegmentRecords::read(Location loc) const {
  const int fd = fd_;
  if (loc.length < kFrameOverhead) return fail(errc::malformed_record);
  RecordBytes out;
  out.bytes.resize(loc.length);
  std::size_t done = 0;
  while (done < loc.length) {
    ssize_t n = ::pread(fd, out.bytes.data() + done, loc.length - done,
                        static_cast<off_t>(loc.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno(errno);
    if (n == 0) return fail(errc::malformed_record);  // past the end of the file
    done += static_cast<std::size_t>(n);
  }
  auto raw =
      parse_framed(std::string_view(out.bytes.data(), out.bytes.size()), loc.segment, loc.offset);
  if (!raw) return std::unexpected(raw.error());
  if (raw->length != loc.length) return fail(errc::malformed_record);
  out.raw = *raw;
  return out;
}

class SpoolReader::ReadOp final : public io::Completion {
 public:
  void on_complete(std::int32_t res, std::uint32_t) noexcept override {
    if (reader != nullptr) {
      reader->on_io(*this, res);
    } else {
      delete this;
    }
  }
  SpoolReader* reader = nullptr;
  ReadWaiter* waiter = nullptr;
  RecordWaiter* record_waiter = nullptr;
  Location loc;
  int fd = -1;
  RecordStorage buf;
  std::size_t done = 0;
  std::error_code early;  // failed before any read: delivered through a zero timer
};

SpoolReader::SpoolReader(io::Engine& engine, std::string dir)
    : engine_(engine), dir_(std::move(dir)) {}

SpoolReader::~SpoolReader() {
  // Reads still in flight free themselves at their final CQE; their fds stay open (a
  // shutdown-only leak) so an unsubmitted read never meets a closed or reused fd.
  for (ReadOp* op : in_flight_) op->reader = nullptr;
  for (auto& [seq, fd] : fds_) {
    bool busy = std::any_of(in_flight_.begin(), in_flight_.end(),
                            [fd = fd](const ReadOp* op) { return op->fd == fd; });
    if (!busy) ::close(fd);
  }
}

Result<int> SpoolReader::fd_for(SegmentSeq seq) {
  for (auto& [s, fd] : fds_) {
    if (s == seq.value()) return fd;
  }
  int fd = ::open(detail::segment_path(dir_, seq).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno);
  // Evict the oldest fd that no read uses (a read resubmitted after a short read keeps
  // using its fd: closing it could hand the number to another file).
  if (fds_.size() >= kMaxOpenFds) {
    for (auto it = fds_.begin(); it != fds_.end(); ++it) {
      bool busy = std::any_of(in_flight_.begin(), in_flight_.end(),
                              [f = it->second](const ReadOp* op) { return op->fd == f; });
      if (!busy) {
        ::close(it->second);
        fds_.erase(it);
        break;
      }
    }
  }
  fds_.emplace_back(seq.value(), fd);
  return fd;
}

void SpoolReader::close_idle() noexcept {
  for (auto it = fds_.begin(); it != fds_.end();) {
    bool busy = std::any_of(in_flight_.begin(), in_flight_.end(),
                            [f = it->second](const ReadOp* op) { return op->fd == f; });
    if (busy) {
      ++it;
      continue;
    }
    ::close(it->second);
    it = fds_.erase(it);
  }
}

void SpoolReader::read(Location loc, ReadWaiter* waiter) noexcept {
  auto* op = new ReadOp;
  op->waiter = waiter;
  start(loc, op);
}

void SpoolReader::read(Location loc, RecordWaiter* waiter) noexcept {
  auto* op = new ReadOp;
  op->record_waiter = waiter;
  start(loc, op);
}

void SpoolReader::start(Location loc, ReadOp* op) noexcept {
  op->reader = this;
  op->loc = loc;
  in_flight_.push_back(op);
  // Failures found here are answered from the engine too: a caller never sees on_read
  // inside read() (no recursion when it reads the next record from on_read).
  if (loc.length < kFrameOverhead) {
    op->early = make_error_code(errc::malformed_record);
    engine_.timeout(Duration::zero(), op);
    return;
  }
  auto fd = fd_for(loc.segment);
  if (!fd) {
    op->early = fd.error();
    engine_.timeout(Duration::zero(), op);
    return;
  }
  op->fd = *fd;
  op->buf.resize(loc.length);
  engine_.read(op->fd, std::span<char>(op->buf.data(), op->buf.size()), loc.offset, op);
}

void SpoolReader::on_io(ReadOp& op, std::int32_t res) noexcept {
  if (op.early) {
    in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), &op));
    ReadWaiter* w = op.waiter;
    RecordWaiter* rw = op.record_waiter;
    std::error_code ec = op.early;
    delete &op;
    if (rw != nullptr) {
      rw->on_record(std::unexpected(ec));
    } else {
      w->on_read(std::unexpected(ec));
    }
    return;
  }
  if (res == -EINTR || res == -EAGAIN ||
      (res > 0 && op.done + static_cast<std::size_t>(res) < op.buf.size())) {
    if (res > 0) op.done += static_cast<std::size_t>(res);
    engine_.read(op.fd, std::span<char>(op.buf.data() + op.done, op.buf.size() - op.done),
                 op.loc.offset + op.done, &op);
    return;
  }
  in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), &op));
  Result<RawRecord> rec = fail(errc::malformed_record);
  if (res < 0) {
    rec = std::unexpected(io::to_error_code(res));
  } else if (res > 0) {
    rec =
        parse_framed(std::string_view(op.buf.data(), op.buf.size()), op.loc.segment, op.loc.offset);
    if (rec && rec->length != op.loc.length) rec = fail(errc::malformed_record);
  }
  if (RecordWaiter* rw = op.record_waiter) {
    if (!rec) {
      std::error_code ec = rec.error();
      delete &op;
      rw->on_record(std::unexpected(ec));
      return;
    }
    RecordBytes out{std::move(op.buf), *rec};  // views stay valid: the storage moved
    delete &op;
    rw->on_record(std::move(out));
    return;
  }
  ReadWaiter* w = op.waiter;
  // The payload views into op.buf: call before freeing.
  w->on_read(std::move(rec));
  delete &op;
}

}  // namespace salvo::spool
