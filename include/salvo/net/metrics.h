// SPDX-License-Identifier: Apache-2.0
// The connection gauge every service reports its share of (labels direction, protocol).
#pragma once

#include <salvo/base/metrics.h>

namespace salvo::net {

inline constexpr metrics::Family kConnectionsOpen{
    "salvo_connections", metrics::Type::Gauge, "Open connections, by direction and protocol."};

}  // namespace salvo::net
