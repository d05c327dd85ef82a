// SPDX-License-Identifier: Apache-2.0
// PortReservation: with port 0, every shard listening with SO_REUSEPORT would get a port
// of its own. Reserve one first with a bound, not listening, SO_REUSEPORT socket; the
// shards then bind that port and join its group; drop the reservation once they listen.
// Start-up only (plain syscalls on the calling thread).
#pragma once

#include <salvo/base/result.h>
#include <salvo/net/socket_address.h>

namespace salvo::net {

class PortReservation {
 public:
  // Binds addr (port 0 allowed) and fills in the port. Errors: EADDRINUSE, EACCES ...
  [[nodiscard]] static Result<PortReservation> reserve(SocketAddress& addr);
  PortReservation(PortReservation&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  PortReservation& operator=(PortReservation&& o) noexcept;
  ~PortReservation();
  void release() noexcept;

 private:
  explicit PortReservation(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace salvo::net
