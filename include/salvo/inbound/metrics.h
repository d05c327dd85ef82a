// SPDX-License-Identifier: Apache-2.0
// What every intake (SMTP, pickup, HTTP inject) counts under its `source` label.
#pragma once

#include <salvo/base/metrics.h>

namespace salvo::inbound {

inline constexpr metrics::Family kReceivedMessages{
    "salvo_received_messages_total", metrics::Type::Counter,
    "Messages (and bulk jobs) queued durably, by intake."};
inline constexpr metrics::Family kReceivedRecipients{
    "salvo_received_recipients_total", metrics::Type::Counter, "Recipients queued, by intake."};

}  // namespace salvo::inbound
