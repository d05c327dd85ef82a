// SPDX-License-Identifier: Apache-2.0
// Pool: one destination's connections. A Channel is what the destination needs of a
// connection (DeliveryConnection in production, a scripted fake in unit tests); the pool
// counts them, keeps a closed connection's place a moment (the receiver may not have
// seen it close yet), rotates egress sources and says how many more transactions the open
// and opening connections can take.
//
// Owner: the destination's shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/config/config.h>
#include <salvo/net/socket_address.h>

#include "outbound/types.h"

namespace salvo::outbound {

class Slot;

// One pooled SMTP connection as its destination sees it.
class Channel {
 public:
  virtual ~Channel() = default;
  virtual bool ready() const noexcept = 0;       // a session is up and idle or busy
  virtual bool connecting() const noexcept = 0;  // not ready yet
  virtual std::size_t load() const noexcept = 0; // transactions taken
  virtual const Host& host() const noexcept = 0;
  // Takes transactions from the destination while there is room.
  virtual void fill() noexcept = 0;
  virtual void submit(Slot* s) noexcept = 0;
  virtual void quit() noexcept = 0;
  // A slot that was reading went back to the queue or resolved locally.
  virtual void slot_detached(Slot* s) noexcept = 0;
  // Facts for the accounting line and the DSN decision.
  virtual std::string tls_version() const = 0;
  virtual bool plaintext_fallback() const noexcept = 0;
  virtual bool remote_dsn() const noexcept = 0;
  // The accounting line's tls_policy ("verified", "verify-failed: ..."); "" while undecided.
  virtual std::string tls_policy() const { return {}; }
};

// Where a new connection comes from: an egress source address and the EHLO name.
struct Origination {
  bool has_source = false;
  net::SocketAddress source;
  std::string helo;
};

class Pool {
 public:
  // Open (and opening) connections plus those closed less than kLinger ago.
  std::size_t held(TimePoint now) noexcept;
  // Transactions the pool can still take: a connecting channel counts a whole window.
  std::size_t capacity(std::size_t window) const noexcept;
  void add(Channel* c) { conns_.push_back(c); }
  // A channel is gone; its place is kept for kLinger.
  void remove(Channel* c, TimePoint now);
  // Idle ready channels are asked to QUIT (pause, stop, joined a rollup).
  void quit_idle() noexcept;
  const std::vector<Channel*>& channels() const noexcept { return conns_; }
  bool empty() const noexcept { return conns_.empty(); }
  std::size_t size() const noexcept { return conns_.size(); }
  // The source address and EHLO name of the next connection: the [[egress]] pool's
  // addresses in turn, or none (the kernel's choice) and the node's name.
  Origination next_origination(const config::Config& c, const config::Shaping& s,
                               const std::string& hostname);

  // The server may still be closing its side when we see its FIN: a closed connection is
  // counted this long more, so the receiver never sees more than max_connections from us.
  static constexpr auto kLinger = std::chrono::milliseconds(50);

 private:
  std::vector<Channel*> conns_;
  std::deque<TimePoint> releasing_;
  std::size_t egress_next_ = 0;
};

}  // namespace salvo::outbound
