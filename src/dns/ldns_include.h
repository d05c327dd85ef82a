// SPDX-License-Identifier: Apache-2.0
// The one way to include ldns from C++. ldns/common.h defines `bool`, `true` and `false` as
// macros unless <stdbool.h> came first, which breaks later C++ headers (<optional>'s <=>);
// including <stdbool.h> first makes it leave them alone.
#pragma once

// clang-format off
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers): must precede ldns
#include <ldns/ldns.h>
// clang-format on
