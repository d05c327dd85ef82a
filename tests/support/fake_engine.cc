// SPDX-License-Identifier: Apache-2.0
// FakeEngine: scripted completions, error injection and fake buffer rings for unit tests.
#include "fake_engine.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace salvo::test {

class FakeEngine::FakeBufferRing final : public io::BufferRing {
 public:
  FakeBufferRing(std::uint16_t group, std::uint16_t count, std::uint32_t size)
      : group_(group), size_(size), data_(static_cast<std::size_t>(count) * size) {
    for (std::uint16_t i = 0; i < count; ++i) free_.push_back(i);
  }
  std::uint16_t group() const noexcept override { return group_; }
  std::span<char> buffer(std::uint16_t id) noexcept override {
    return {data_.data() + static_cast<std::size_t>(id) * size_, size_};
  }
  void recycle(std::uint16_t id) noexcept override { free_.push_back(id); }
  std::optional<std::uint16_t> take() {
    if (free_.empty()) return std::nullopt;
    std::uint16_t id = free_.front();
    free_.pop_front();
    return id;
  }
  std::uint32_t size() const noexcept { return size_; }

 private:
  std::uint16_t group_;
  std::uint32_t size_;
  std::vector<char> data_;
  std::deque<std::uint16_t> free_;
};

FakeEngine::FakeEngine(TestClock& clock, FakeMode mode, io::EngineOptions options)
    : clock_(clock), mode_(mode), options_(options) {
  features_.msg_ring = false;
  features_.multishot_accept = true;
  features_.multishot_recv = true;
  features_.buffer_rings = true;
  features_.send_zc = true;
}

FakeEngine::~FakeEngine() = default;

void FakeEngine::script(OpKind kind, std::int32_t res, std::uint32_t flags) {
  scripts_[kind].push_back({res, flags});
}

void FakeEngine::complete(io::Completion* c, std::int32_t res, std::uint32_t flags) {
  ready_.push_back({c, res, flags});
}

bool FakeEngine::complete_next(OpKind kind, std::int32_t res, std::uint32_t flags) {
  const bool notification = (flags & io::kNotification) != 0;
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const FakeOp& op) {
    return op.kind == kind && op.zc_result_delivered == notification;
  });
  if (it == pending_.end()) return false;
  ready_.push_back({it->completion, res, flags});
  if ((flags & io::kMore) == 0) {
    pending_.erase(it);
  } else if (kind == OpKind::SendZc) {
    it->zc_result_delivered = true;
  }
  return true;
}

bool FakeEngine::complete_newest(OpKind kind, std::int32_t res) {
  auto it = std::find_if(pending_.rbegin(), pending_.rend(),
                         [&](const FakeOp& op) { return op.kind == kind; });
  if (it == pending_.rend()) return false;
  ready_.push_back({it->completion, res, 0});
  pending_.erase(std::next(it).base());
  return true;
}

std::size_t FakeEngine::deliver(int fd, std::string_view bytes) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const FakeOp& op) {
    return op.fd == fd && (op.kind == OpKind::Recv || op.kind == OpKind::RecvMultishot);
  });
  if (it == pending_.end() || bytes.empty()) return 0;
  if (it->kind == OpKind::Recv) {
    std::size_t n = std::min(bytes.size(), it->buffer.size());
    std::memcpy(it->buffer.data(), bytes.data(), n);
    ready_.push_back({it->completion, static_cast<std::int32_t>(n), 0});
    pending_.erase(it);
    return n;
  }
  auto* ring = static_cast<FakeBufferRing*>(it->ring);
  auto id = ring->take();
  if (!id) {
    ready_.push_back({it->completion, -ENOBUFS, 0});
    pending_.erase(it);
    return 0;
  }
  std::size_t n = std::min<std::size_t>(bytes.size(), ring->size());
  std::memcpy(ring->buffer(*id).data(), bytes.data(), n);
  std::uint32_t flags = io::kMore | io::kBufferSelected | (std::uint32_t{*id} << 16);
  ready_.push_back({it->completion, static_cast<std::int32_t>(n), flags});
  return n;
}

bool FakeEngine::deliver_eof(int fd) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const FakeOp& op) {
    return op.fd == fd && (op.kind == OpKind::Recv || op.kind == OpKind::RecvMultishot);
  });
  if (it == pending_.end()) return false;
  ready_.push_back({it->completion, 0, 0});
  pending_.erase(it);
  return true;
}

bool FakeEngine::deliver_accept(int listen_fd, int new_fd) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const FakeOp& op) {
    return op.fd == listen_fd && op.kind == OpKind::AcceptMultishot;
  });
  if (it == pending_.end()) return false;
  ready_.push_back({it->completion, new_fd, io::kMore});
  return true;
}

void FakeEngine::simulate_wake() { ++pending_wakes_; }

std::size_t FakeEngine::pending_count(OpKind kind) const noexcept {
  return static_cast<std::size_t>(std::count_if(
      pending_.begin(), pending_.end(), [&](const FakeOp& op) { return op.kind == kind; }));
}

const std::string& FakeEngine::sent(int fd) const {
  static const std::string kEmpty;
  auto it = sent_.find(fd);
  return it == sent_.end() ? kEmpty : it->second;
}

std::optional<FakeEngine::Scripted> FakeEngine::auto_result(const FakeOp& op) const noexcept {
  if (mode_ == FakeMode::Manual) return std::nullopt;
  switch (op.kind) {
    case OpKind::Send:
    case OpKind::SendMsg:
    case OpKind::SendZc:
    case OpKind::Write:
    case OpKind::Writev:
      return Scripted{static_cast<std::int32_t>(op.data.size()), 0};
    case OpKind::Connect:
    case OpKind::Shutdown:
    case OpKind::Close:
    case OpKind::Fdatasync:
    case OpKind::Fsync:
      return Scripted{0, 0};
    default:
      return std::nullopt;
  }
}

void FakeEngine::finish(const FakeOp& op, std::int32_t res, std::uint32_t flags) noexcept {
  if (op.completion == nullptr) return;
  if (op.kind == OpKind::SendZc && res >= 0 && (flags & io::kMore) == 0) {
    // Like the kernel: the result first, then the buffer-release notification.
    ready_.push_back({op.completion, res, flags | io::kMore});
    ready_.push_back({op.completion, 0, io::kNotification});
    return;
  }
  ready_.push_back({op.completion, res, flags});
}

void FakeEngine::submit(FakeOp op) noexcept {
  op.seq = next_seq_++;
  history_.push_back(op);
  if (auto s = scripts_.find(op.kind); s != scripts_.end() && !s->second.empty()) {
    Scripted r = s->second.front();
    s->second.pop_front();
    // A scripted short write records only what "went out".
    if (r.res > 0 && !op.data.empty()) {
      sent_[op.fd].append(op.data, 0, static_cast<std::size_t>(r.res));
    }
    finish(op, r.res, r.flags);
    if ((r.flags & io::kMore) != 0) {
      op.zc_result_delivered = op.kind == OpKind::SendZc;
      pending_.push_back(std::move(op));
    }
    return;
  }
  if (auto r = auto_result(op)) {
    if (!op.data.empty()) sent_[op.fd] += op.data;
    finish(op, r->res, r->flags);
    return;
  }
  pending_.push_back(std::move(op));
}

void FakeEngine::accept_multishot(int listen_fd, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::AcceptMultishot, .fd = listen_fd, .completion = c});
}

void FakeEngine::connect(int fd, const sockaddr* addr, socklen_t len,
                         io::Completion* c) noexcept {
  FakeOp op{.kind = OpKind::Connect, .fd = fd, .completion = c};
  std::memcpy(&op.addr, addr, std::min<std::size_t>(len, sizeof(op.addr)));
  op.addr_len = len;
  submit(std::move(op));
}

void FakeEngine::recv(int fd, std::span<char> buf, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Recv, .fd = fd, .completion = c, .buffer = buf});
}

void FakeEngine::recv_multishot(int fd, io::BufferRing& ring, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::RecvMultishot, .fd = fd, .completion = c, .ring = &ring});
}

void FakeEngine::send(int fd, std::span<const char> buf, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Send, .fd = fd, .completion = c,
                .data = std::string(buf.data(), buf.size()), .source = buf});
}

void FakeEngine::sendmsg(int fd, const msghdr* msg, io::Completion* c) noexcept {
  std::string data;
  for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
    data.append(static_cast<const char*>(msg->msg_iov[i].iov_base), msg->msg_iov[i].iov_len);
  }
  submit(FakeOp{.kind = OpKind::SendMsg, .fd = fd, .completion = c, .data = std::move(data)});
}

void FakeEngine::send_zc(int fd, std::span<const char> buf, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::SendZc, .fd = fd, .completion = c,
                .data = std::string(buf.data(), buf.size()), .source = buf});
}

void FakeEngine::shutdown(int fd, int how, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Shutdown, .fd = fd, .completion = c, .how = how});
}

void FakeEngine::close(int fd, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Close, .fd = fd, .completion = c});
}

void FakeEngine::read(int fd, std::span<char> buf, std::uint64_t offset,
                      io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Read, .fd = fd, .completion = c, .buffer = buf,
                .offset = offset});
}

void FakeEngine::write(int fd, std::span<const char> buf, std::uint64_t offset,
                       io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Write, .fd = fd, .completion = c,
                .data = std::string(buf.data(), buf.size()), .offset = offset});
}

void FakeEngine::writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
                        io::Completion* c) noexcept {
  std::string data;
  for (const iovec& v : iov) data.append(static_cast<const char*>(v.iov_base), v.iov_len);
  submit(FakeOp{.kind = OpKind::Writev, .fd = fd, .completion = c, .data = std::move(data),
                .offset = offset});
}

void FakeEngine::fdatasync(int fd, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Fdatasync, .fd = fd, .completion = c});
}

void FakeEngine::fsync(int fd, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Fsync, .fd = fd, .completion = c});
}

void FakeEngine::timeout(Duration after, io::Completion* c) noexcept {
  submit(FakeOp{.kind = OpKind::Timeout, .completion = c, .deadline = clock_.now() + after});
}

void FakeEngine::cancel(io::Completion* c) noexcept {
  ++cancels_;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->completion == c && !it->zc_result_delivered) {
      ready_.push_back({c, -ECANCELED, 0});
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<io::BufferRing*> FakeEngine::create_buffer_ring(std::uint16_t count, std::uint32_t size) {
  if (count == 0 || (count & (count - 1)) != 0 || size == 0) {
    return fail(std::errc::invalid_argument);
  }
  rings_.push_back(std::make_unique<FakeBufferRing>(
      static_cast<std::uint16_t>(rings_.size()), count, size));
  return rings_.back().get();
}

int FakeEngine::run_once(Duration) noexcept {
  // Timers due by the TestClock fire in deadline order.
  std::vector<FakeOp> due;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->kind == OpKind::Timeout && it->deadline <= clock_.now()) {
      due.push_back(std::move(*it));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  std::stable_sort(due.begin(), due.end(),
                   [](const FakeOp& a, const FakeOp& b) { return a.deadline < b.deadline; });
  for (const auto& op : due) ready_.push_back({op.completion, -ETIME, 0});

  int n = 0;
  for (; pending_wakes_ > 0; --pending_wakes_) {
    if (options_.on_wake != nullptr) options_.on_wake->on_complete(0, 0);
    ++n;
  }
  // Calls queued by these callbacks wait for the next run_once, like new CQEs would.
  std::deque<Queued> batch;
  batch.swap(ready_);
  for (const auto& q : batch) {
    if (q.c != nullptr) q.c->on_complete(q.res, q.flags);
    ++n;
  }
  return n;
}

}  // namespace salvo::test
