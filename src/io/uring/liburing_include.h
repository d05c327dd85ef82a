// SPDX-License-Identifier: Apache-2.0
// The one place <liburing.h> is included (it never reaches a public header). liburing's
// inline helpers use C casts and unused parameters; they are silenced here, for this header
// only.
#pragma once

#pragma GCC system_header
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <liburing.h>
#pragma GCC diagnostic pop
