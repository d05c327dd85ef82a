// SPDX-License-Identifier: Apache-2.0
// The wolfCrypt headers dkim uses, in the order wolfSSL needs (options.h first). Included by
// this module's .cc files only; wolfSSL never shows in include/salvo/dkim/.
#pragma once

// wolfSSL's headers and macros trip our warning set (old-style casts, shadowing).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
// options.h, then settings.h, before any other wolfSSL header.
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/wc_port.h>
#ifdef HAVE_ED25519
#include <wolfssl/wolfcrypt/ed25519.h>
#endif
// clang-format on
#pragma GCC diagnostic pop

// Ed25519 signing needs sign, key import and key export in the wolfSSL build (Debian's
// has them); without them ed25519-sha256 fails at Signer::create with algorithm_unavailable.
#if defined(HAVE_ED25519) && defined(HAVE_ED25519_SIGN) && defined(HAVE_ED25519_KEY_IMPORT) && \
    defined(HAVE_ED25519_KEY_EXPORT)
#define SALVO_DKIM_ED25519 1
#endif
