# Finds every third-party dependency from Debian packages and fails at configure time
# naming the package to install. tools/test.sh installs them all.
find_package(PkgConfig)
if(NOT PkgConfig_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

function(salvo_require_pkg target module debpkg)
  pkg_check_modules(${target} IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install ${debpkg}")
  endif()
endfunction()

function(salvo_require_cmake_pkg name debpkg)
  find_package(${name} CONFIG QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR "${name} not found: apt-get install ${debpkg}")
  endif()
endfunction()

salvo_require_pkg(liburing liburing liburing-dev)
salvo_require_pkg(wolfssl wolfssl libwolfssl-dev)
# OpenSSL's libcrypto: DKIM RSA signing only (about 3x wolfSSL's RSA on x86-64, see README).
salvo_require_pkg(libcrypto libcrypto libssl-dev)
salvo_require_pkg(ldns ldns libldns-dev)
# libxcrypt: crypt(3) hashes ($y$ yescrypt, $6$, $5$, $2b$) in SMTP AUTH user files.
salvo_require_pkg(libcrypt libcrypt libcrypt-dev)
salvo_require_pkg(libidn2 libidn2 libidn2-dev)
salvo_require_pkg(tomlplusplus tomlplusplus libtomlplusplus-dev)
salvo_require_cmake_pkg(fmt libfmt-dev)
salvo_require_cmake_pkg(spdlog libspdlog-dev)
salvo_require_cmake_pkg(CLI11 libcli11-dev)
salvo_require_cmake_pkg(nlohmann_json nlohmann-json3-dev)
salvo_require_cmake_pkg(mimalloc libmimalloc-dev)
# Abseil's flat_hash_map: the per-message tables (spool index, backlogs) at ~1 byte of
# overhead per slot, where std::unordered_map spends a heap node and a bucket per entry.
salvo_require_cmake_pkg(absl libabsl-dev)
# nodejs/http-parser (Debian ships no pkg-config or CMake file for it).
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(HTTP_PARSER_LIBRARY http_parser)
if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
  message(FATAL_ERROR "http_parser not found: apt-get install libhttp-parser-dev")
endif()
add_library(salvo_http_parser INTERFACE IMPORTED GLOBAL)
target_include_directories(salvo_http_parser INTERFACE ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(salvo_http_parser INTERFACE ${HTTP_PARSER_LIBRARY})
find_package(Threads REQUIRED)
if(SALVO_BUILD_TESTS)
  salvo_require_cmake_pkg(GTest libgtest-dev)
endif()
if(SALVO_BUILD_BENCH)
  salvo_require_cmake_pkg(benchmark libbenchmark-dev)
endif()
