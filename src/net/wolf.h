// SPDX-License-Identifier: Apache-2.0
// The wolfSSL headers net uses (tls.cc, dane.cc), options.h first. Included by this
// module's .cc files only; wolfSSL never shows in include/salvo/net/.
#pragma once

// wolfSSL's headers and macros trip our warning set (old-style casts, shadowing).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>
// clang-format on
#pragma GCC diagnostic pop
