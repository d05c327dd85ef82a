// SPDX-License-Identifier: Apache-2.0
// salvo-sink options: listen addresses, each with its fault script. A listener is
// "ADDR[,key=value...]"; keys override the global fault flags for that listener only:
//   latency=50ms  defer-rate=0.1  defer-status=4.3.0  reject-rate=0.05  drop-rate=0.01
//   421-after=N  trickle=100ms  trickle-at=all|greeting|ehlo|data  stall-data=10s
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/net/socket_address.h>
#include <salvo/smtp/reply.h>

namespace salvo::sink {

// Which replies a trickle slows down: all, or the batch holding the greeting, the EHLO
// (HELO) reply, or the end-of-data reply (with pipelining, the MAIL/RCPT replies sent with
// it too).
enum class TrickleAt : std::uint8_t { All, Greeting, Ehlo, Data };

// What a listener does wrong, on purpose. Rates are applied deterministically (an
// accumulator per shard and listener: rate 0.1 = exactly every 10th), so tests can
// predict counts exactly.
struct Faults {
  Duration latency{0};       // delay before each batch of replies
  double defer_rate = 0;     // RCPT answered 451 4.7.1 (greylisting-style deferral)
  // The enhanced status of those 451s: 4.7.1 reads as throttling to an MTA with a
  // back-off mode (salvod, PowerMTA); e.g. 4.3.0 is a plain temporary failure.
  smtp::EnhancedStatus defer_status{4, 7, 1};
  double reject_rate = 0;    // RCPT answered 550 5.1.1 (bad mailbox)
  double drop_rate = 0;      // message data received, then the connection is dropped
                             // before the end-of-data reply
  std::uint64_t fail_after = 0;  // after N messages on a connection, MAIL gets 421 4.7.0
  // A tarpit: replies go out one byte per `trickle` (after any latency), reading paused
  // meanwhile; 0 = at once.
  Duration trickle{0};
  TrickleAt trickle_at = TrickleAt::All;
  // Once message text starts (after 354, or in a BDAT chunk), stop reading for this long:
  // the client's data fills the socket buffers and its writes stall. Once per message.
  Duration stall_data{0};
};

struct ListenerSpec {
  std::string text;  // as given, for error messages
  net::SocketAddress address;
  Faults faults;
};

struct SinkOptions {
  std::vector<ListenerSpec> listeners;
  unsigned cores = 0;
  std::string maildir;
  Duration duration{0};  // 0 = until SIGTERM/SIGINT
  Duration idle_timeout = std::chrono::minutes(5);
  std::string tls_certificate;
  std::string tls_key;
  std::string hostname = "sink.localhost";
  std::uint64_t max_message_size = 100ull * 1024 * 1024;
  bool dsn = true;  // advertise DSN (RFC 3461); --no-dsn plays an MX without it
  std::string ready_file;  // JSON list of bound addresses written once listening
  // {"messages": N, "recipients": N, "bytes": N} so far, rewritten (tmp + rename) at most
  // every 100 ms while running and once more at exit; "" = off.
  std::string progress_file;
};

// Parses a deferral's enhanced status: "4.Y.Z" only. False otherwise.
[[nodiscard]] bool parse_defer_status(std::string_view text, smtp::EnhancedStatus* out);
// Parses "all", "greeting", "ehlo" or "data". False otherwise.
[[nodiscard]] bool parse_trickle_at(std::string_view text, TrickleAt* out);

// Parses one --listen value, starting from the global faults. The error names the bad
// part ("127.0.0.1:x: bad port", "defer-rate=2: must be within [0, 1]").
[[nodiscard]] Result<ListenerSpec> parse_listener(const std::string& text, const Faults& defaults,
                                                  std::string* why);

}  // namespace salvo::sink
