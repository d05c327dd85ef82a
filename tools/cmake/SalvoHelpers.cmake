# salvo_module, salvo_executable, salvo_add_test: the three ways a target is declared.

add_library(salvo_warnings INTERFACE)
target_compile_options(salvo_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wno-missing-field-initializers)
if(SALVO_WERROR)
  target_compile_options(salvo_warnings INTERFACE -Werror)
endif()

if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # clang 14-16 report __cpp_concepts 201907, which hides std::expected in libstdc++ 12's
  # <expected> although the concepts it needs are supported (clang++-16 builds the fuzz
  # targets and the sanitizer stage of tools/test.sh).
  add_compile_options(-Wno-builtin-macro-redefined -U__cpp_concepts -D__cpp_concepts=202002L)
endif()

if(SALVO_SANITIZE)
  string(REPLACE ";" "," _san "${SALVO_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
  add_compile_definitions(SALVO_SANITIZED=1)
  # GCC's -Wmaybe-uninitialized misfires on sanitizer-instrumented libstdc++ code (std::regex,
  # std::function); the Release build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(salvo_warnings INTERFACE -Wno-maybe-uninitialized)
  endif()
endif()

if(SALVO_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SALVO_FUZZ needs clang: cmake -DCMAKE_CXX_COMPILER=clang++-16")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The salvo modules `name` may depend on, as tools/layers.toml lists them (the one table:
# a line `name = ["base", "io"]` under [modules]).
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/tools/layers.toml)
function(salvo_layer_deps name out)
  file(STRINGS ${PROJECT_SOURCE_DIR}/tools/layers.toml _line REGEX "^${name} *= *\\[")
  if(NOT _line)
    message(FATAL_ERROR "module '${name}' is not listed in tools/layers.toml")
  endif()
  string(REGEX MATCHALL "\"[a-z_]+\"" _quoted "${_line}")
  set(_deps)
  foreach(q IN LISTS _quoted)
    string(REPLACE "\"" "" q "${q}")
    list(APPEND _deps ${q})
  endforeach()
  set(${out} ${_deps} PARENT_SCOPE)
endfunction()

# salvo_module(NAME spool LIBS <public third-party> PRIVATE_LIBS <private>)
# Sources: src/<name>/*.cc. Public headers: include/salvo/<name>/. Private headers are
# reachable as "<name>/x.h" from this target only (a per-module include root that holds
# just a link to src/<name>), so another module cannot include them. The salvo modules it
# links are those tools/layers.toml allows it.
function(salvo_module)
  cmake_parse_arguments(M "" "NAME" "LIBS;PRIVATE_LIBS" ${ARGN})
  salvo_layer_deps(${M_NAME} M_DEPS)
  file(GLOB _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${M_NAME}/*.cc
                                    ${PROJECT_SOURCE_DIR}/src/${M_NAME}/*/*.cc)
  set(_priv ${PROJECT_BINARY_DIR}/private/${M_NAME})
  file(MAKE_DIRECTORY ${_priv})
  if(NOT EXISTS ${_priv}/${M_NAME})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${M_NAME} ${_priv}/${M_NAME} SYMBOLIC)
  endif()
  set(_t salvo_${M_NAME})
  set(_deps)
  foreach(d IN LISTS M_DEPS)
    list(APPEND _deps salvo::${d})
  endforeach()
  if(NOT _srcs)  # header-only so far
    add_library(${_t} INTERFACE)
    add_library(salvo::${M_NAME} ALIAS ${_t})
    target_include_directories(${_t} INTERFACE ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(${_t} INTERFACE ${_deps} ${M_LIBS})
    set_target_properties(${_t} PROPERTIES SALVO_PRIVATE_INCLUDE ${_priv})
    return()
  endif()
  add_library(${_t} STATIC ${_srcs})
  add_library(salvo::${M_NAME} ALIAS ${_t})
  target_include_directories(${_t} PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${_priv})
  target_link_libraries(${_t} PUBLIC ${_deps} ${M_LIBS} Threads::Threads
                        PRIVATE salvo_warnings ${M_PRIVATE_LIBS})
  set_target_properties(${_t} PROPERTIES SALVO_PRIVATE_INCLUDE ${_priv})
endfunction()

# salvo_executable(NAME salvo-sink SOURCES ... DEPS base net ...): mimalloc linked in
# (executables only; left out under sanitizers, which bring their own).
function(salvo_executable)
  cmake_parse_arguments(E "" "NAME" "SOURCES;DEPS;LIBS" ${ARGN})
  add_executable(${E_NAME} ${E_SOURCES})
  set(_deps)
  foreach(d IN LISTS E_DEPS)
    list(APPEND _deps salvo::${d})
  endforeach()
  target_link_libraries(${E_NAME} PRIVATE ${_deps} ${E_LIBS} salvo_warnings)
  if(NOT SALVO_SANITIZE AND NOT SALVO_FUZZ)
    target_link_libraries(${E_NAME} PRIVATE mimalloc)
  endif()
  set_target_properties(${E_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()

# salvo_add_test(NAME unit_smtp SOURCES ... DEPS smtp ... PRIVATE_OF smtp LABELS unit)
# Every test target uses the precompiled header of salvo_test_support (tests/CMakeLists.txt).
# A test suite whose name ends in "Soak" (a long kill -9 or load loop) gets the label "soak"
# instead of LABELS: tools/test.sh runs it in the Release stage, not under the sanitizers.
function(salvo_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;DEPS;LIBS;PRIVATE_OF;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
  set(_deps)
  foreach(d IN LISTS T_DEPS)
    list(APPEND _deps salvo::${d})
  endforeach()
  target_link_libraries(${T_NAME} PRIVATE ${_deps} ${T_LIBS} salvo_test_support
                        GTest::gtest GTest::gmock GTest::gtest_main salvo_warnings)
  foreach(m IN LISTS T_PRIVATE_OF)
    get_target_property(_p salvo_${m} SALVO_PRIVATE_INCLUDE)
    target_include_directories(${T_NAME} PRIVATE ${_p})
  endforeach()
  target_compile_definitions(${T_NAME} PRIVATE
    SALVO_SOURCE_DIR="${PROJECT_SOURCE_DIR}" SALVO_BINARY_DIR="${PROJECT_BINARY_DIR}")
  get_target_property(_pch salvo_test_support PRECOMPILE_HEADERS)
  if(_pch)
    target_precompile_headers(${T_NAME} REUSE_FROM salvo_test_support)
    set_target_properties(${T_NAME} PROPERTIES SALVO_TEST ON)
  endif()
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST TEST_FILTER "-*Soak.*"
                       TEST_LIST ${T_NAME}_TESTS PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300)
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST TEST_FILTER "*Soak.*"
                       TEST_LIST ${T_NAME}_SOAK_TESTS PROPERTIES LABELS soak TIMEOUT 300)
endfunction()
