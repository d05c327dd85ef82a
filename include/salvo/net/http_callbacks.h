// SPDX-License-Identifier: Apache-2.0
// http_parser (libhttp-parser-dev) callbacks bound to member functions of the object in
// parser.data, for the HTTP server (admin) and the MTA-STS policy fetch (outbound): each
// of on_begin(), on_url(at, n), on_header_field(at, n), on_header_value(at, n),
// on_headers(), on_body(at, n) and on_complete() that T has is bound, returning http_parser's
// int (non-zero stops the parser). A T with private handlers befriends HttpCallbacks<T>.
// Users link salvo_http_parser.
#pragma once

#include <http_parser.h>

#include <cstddef>

namespace salvo::net {

template <class T>
struct HttpCallbacks {
  static T* self(http_parser* p) { return static_cast<T*>(p->data); }

  // Initialises `s` and binds T's handlers; the parser's data must point to the T.
  static void bind(http_parser_settings& s) {
    http_parser_settings_init(&s);
    if constexpr (requires(T& t) { t.on_begin(); }) {
      s.on_message_begin = [](http_parser* p) { return self(p)->on_begin(); };
    }
    if constexpr (requires(T& t, const char* at, std::size_t n) { t.on_url(at, n); }) {
      s.on_url = [](http_parser* p, const char* at, std::size_t n) {
        return self(p)->on_url(at, n);
      };
    }
    s.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
      return self(p)->on_header_field(at, n);
    };
    s.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
      return self(p)->on_header_value(at, n);
    };
    s.on_headers_complete = [](http_parser* p) { return self(p)->on_headers(); };
    s.on_body = [](http_parser* p, const char* at, std::size_t n) {
      return self(p)->on_body(at, n);
    };
    s.on_message_complete = [](http_parser* p) { return self(p)->on_complete(); };
  }
};

}  // namespace salvo::net
