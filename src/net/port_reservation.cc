// SPDX-License-Identifier: Apache-2.0
// PortReservation: socket + SO_REUSEADDR/SO_REUSEPORT + bind + getsockname.
#include <salvo/net/port_reservation.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace salvo::net {

Result<PortReservation> PortReservation::reserve(SocketAddress& addr) {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errno);
  PortReservation r(fd);
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, addr.sa(), addr.len()) != 0) {
    return fail_errno(errno);
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return fail_errno(errno);
  addr.set_port(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len).port());
  return r;
}

PortReservation& PortReservation::operator=(PortReservation&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

PortReservation::~PortReservation() { release(); }

void PortReservation::release() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace salvo::net
