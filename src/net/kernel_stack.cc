// SPDX-License-Identifier: Apache-2.0
// KernelStack: socket set-up (socket/bind/listen with plain syscalls, start-up only), the
// object registry, the ready list behind a zero-length timer, and the bounded drain that
// honours the engine contract when the stack is destroyed.
#include "net/kernel_stack.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include <salvo/base/log.h>

#include "net/connection.h"
#include "net/listener.h"

namespace salvo::net {
namespace {

constexpr auto kDestroyDrain = std::chrono::seconds(2);

}  // namespace

KernelStack::KernelStack(io::Engine& engine, const KernelStackOptions& options)
    : engine_(engine),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &system_clock_),
      kick_(this, &KernelStack::on_kick),
      owner_thread_(std::this_thread::get_id()) {
  if (options_.recv_buffer_size == 0) options_.recv_buffer_size = 16 * 1024;
  ready_.reserve(64);
  running_.reserve(64);
}

KernelStack::~KernelStack() {
  destroying_ = true;
  if (std::this_thread::get_id() != owner_thread_) {
    // Destroyed after its shard's loop ended (e.g. after ShardSet::join()): the engine
    // will not dispatch again and must not be driven from this thread. Free everything.
    free_all();
    return;
  }
  for (auto& l : listeners_) l->teardown_silently();
  for (KernelConnection* c : std::vector<KernelConnection*>(connections_)) c->teardown_silently();
  for (PendingConnect* p : std::vector<PendingConnect*>(connects_)) p->teardown_silently();
  // Completions still owed by the engine point into our objects: let them
  // arrive. Deferred finalization keeps running through the kick timer meanwhile.
  auto until = MonoClock::now() + kDestroyDrain;
  while (ops_ > 0 && MonoClock::now() < until) {
    engine_.run_once(std::chrono::milliseconds(10));
  }
  if (ops_ > 0) {
    // Freeing now would let the engine call into freed memory later: leak instead.
    log::error("net: stack destroyed with {} operations in flight; leaking them", ops_);
    for (auto& l : listeners_) (void)l.release();
    return;
  }
  free_all();
}

void KernelStack::free_all() noexcept {
  for (KernelConnection* c : connections_) {
    if (c->fd_ >= 0) ::close(c->fd_);
    delete c;
  }
  connections_.clear();
  for (PendingConnect* p : connects_) delete p;  // closes its socket
  connects_.clear();
  for (auto& l : listeners_) l->close_fd_now();
  listeners_.clear();
}

// The ring is made on first use, on the shard's thread: engines set up with SINGLE_ISSUER
// belong to the first thread that touches them, and a stack may be built elsewhere.
void KernelStack::ensure_ring() noexcept {
  if (ring_tried_) return;
  ring_tried_ = true;
  if (!engine_.features().buffer_rings || !engine_.features().multishot_recv ||
      options_.recv_buffers == 0) {
    return;
  }
  auto ring = engine_.create_buffer_ring(options_.recv_buffers, options_.recv_buffer_size);
  if (ring) {
    ring_ = *ring;
  } else {
    log::warn("net: no provided-buffer ring ({}); using single-shot receives",
              ring.error().message());
  }
}

Result<Listener*> KernelStack::listen(const SocketAddress& addr, ReusePort reuse,
                                      AcceptHandler& handler) {
  if (addr.empty()) return fail(std::errc::invalid_argument);
  ensure_ring();
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errno);
  auto bail = [fd](int err) {
    ::close(fd);
    return fail_errno(err);
  };
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return bail(errno);
  if (reuse == ReusePort::Yes &&
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return bail(errno);
  }
  if (::bind(fd, addr.sa(), addr.len()) != 0) return bail(errno);
  if (::listen(fd, options_.listen_backlog) != 0) return bail(errno);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return bail(errno);
  auto bound = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  listeners_.push_back(std::make_unique<KernelListener>(*this, fd, bound, handler));
  KernelListener* l = listeners_.back().get();
  l->start();
  return l;
}

void KernelStack::connect(const SocketAddress& to, const SocketAddress* from, Duration timeout,
                          ConnectHandler& handler) noexcept {
  ensure_ring();
  std::error_code early;
  int fd = -1;
  if (to.empty() || (from != nullptr && !from->empty() && from->family() != to.family())) {
    early = std::make_error_code(std::errc::invalid_argument);
  } else {
    fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) early = std::error_code(errno, std::system_category());
  }
  if (!early && from != nullptr && !from->empty()) {
    // Egress source address: let connect() pick the port, so many connections can share
    // one source IP without exhausting ephemeral ports at bind() (IP_BIND_ADDRESS_NO_PORT).
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd, from->sa(), from->len()) != 0) {
      early = std::error_code(errno, std::system_category());
    }
  }
  if (early && fd >= 0) {
    ::close(fd);
    fd = -1;
  }
  ++stats_.connects;
  auto* p = new PendingConnect(*this, fd, to, handler, early);
  p->slot_ = connects_.size();
  connects_.push_back(p);
  p->start(timeout);
}

void KernelStack::close_all() noexcept {
  for (auto& l : listeners_) l->close();
  for (PendingConnect* p : std::vector<PendingConnect*>(connects_)) p->cancel();
  for (KernelConnection* c : std::vector<KernelConnection*>(connections_)) c->close();
}

void KernelStack::abort_all() noexcept {
  for (auto& l : listeners_) l->close();
  for (PendingConnect* p : std::vector<PendingConnect*>(connects_)) p->cancel();
  for (KernelConnection* c : std::vector<KernelConnection*>(connections_)) c->abort();
}

KernelConnection* KernelStack::adopt(int fd, const SocketAddress& peer) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  SocketAddress local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    local = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  }
  auto* c = new KernelConnection(*this, fd, next_id_++, peer, local);
  c->slot_ = connections_.size();
  connections_.push_back(c);
  return c;
}

void KernelStack::unqueue(Deferred* d) noexcept {
  if (!d->queued_) return;
  d->queued_ = false;
  std::erase(ready_, d);
  std::replace(running_.begin(), running_.end(), d, static_cast<Deferred*>(nullptr));
}

void KernelStack::park(KernelConnection* c) noexcept {
  if (c->lingering_) return;
  c->lingering_ = true;
  ++parked_;
}

void KernelStack::release(KernelConnection* c) noexcept {
  unqueue(c);
  if (c->lingering_) --parked_;
  std::size_t i = c->slot_;
  connections_[i] = connections_.back();
  connections_[i]->slot_ = i;
  connections_.pop_back();
  delete c;
}

void KernelStack::release(PendingConnect* p) noexcept {
  unqueue(p);
  std::size_t i = p->slot_;
  connects_[i] = connects_.back();
  connects_[i]->slot_ = i;
  connects_.pop_back();
  delete p;
}

void KernelStack::schedule(Deferred* d) noexcept {
  if (d->queued_) return;
  d->queued_ = true;
  ready_.push_back(d);
  if (!kick_armed_) {
    engine_.timeout(Duration::zero(), &kick_);
    kick_armed_ = true;
    ++ops_;
  }
}

void KernelStack::on_kick(std::int32_t, std::uint32_t) noexcept {
  kick_armed_ = false;
  --ops_;
  running_.swap(ready_);
  for (std::size_t i = 0; i < running_.size(); ++i) {
    Deferred* d = running_[i];
    if (d == nullptr) continue;
    d->queued_ = false;
    d->run_deferred();  // may free d, schedule more (into ready_), or unqueue others
  }
  running_.clear();
}

std::unique_ptr<Stack> make_kernel_stack(io::Engine& engine, const KernelStackOptions& options) {
  return std::make_unique<KernelStack>(engine, options);
}

std::unique_ptr<Stack> make_kernel_stack(io::Engine& engine) {
  return make_kernel_stack(engine, KernelStackOptions{});
}

}  // namespace salvo::net
