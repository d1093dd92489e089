# tests/fuzz/fuzz.cmake - quick ctest replay of every fuzz corpus (included from
# tests/CMakeLists.txt). Each target of tests/fuzz/<name>_fuzz.c is linked here with
# replay_main.c instead of libFuzzer, using the build's own compiler and flags (so under
# -DMAPI_SANITIZE=ON with ASan and UBSan), and test fuzz_<name> runs it once over every file of
# tests/fuzz/corpus/<name>/: the properties of the target must hold on each. Fuzzing proper
# (clang's libFuzzer, bounded time) is tests/fuzz/fuzz.sh, run by `make fuzz` and CI.
set(MAPI_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB MAPI_FUZZ_ANON_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/flib/anonflib/*.c)

function(mapi_fuzz_replay name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(fuzz_${name} ${MAPI_FUZZ_DIR}/${name}_fuzz.c ${MAPI_FUZZ_DIR}/replay_main.c
                              ${F_SOURCES})
  target_link_libraries(fuzz_${name} PRIVATE ${F_LIBS})
  set_target_properties(fuzz_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                ${CMAKE_BINARY_DIR}/tests/fuzz)
  add_test(NAME fuzz_${name} COMMAND fuzz_${name} ${MAPI_FUZZ_DIR}/corpus/${name})
  set_tests_properties(fuzz_${name} PROPERTIES TIMEOUT 120 LABELS fuzz)
endfunction()

mapi_fuzz_replay(pcap SOURCES ${CMAKE_SOURCE_DIR}/drivers/pcap_file.c
                 ${CMAKE_SOURCE_DIR}/drivers/trace_input.c LIBS PkgConfig::PCAP ZLIB::ZLIB)
mapi_fuzz_replay(erf SOURCES ${CMAKE_SOURCE_DIR}/drivers/erf_file.c
                 ${CMAKE_SOURCE_DIR}/drivers/trace_input.c LIBS ZLIB::ZLIB)
mapi_fuzz_replay(decode SOURCES ${CMAKE_SOURCE_DIR}/common/decode.c)
mapi_fuzz_replay(conf SOURCES ${CMAKE_SOURCE_DIR}/common/conf.c LIBS ${CMAKE_DL_LIBS})
mapi_fuzz_replay(anon_policy SOURCES ${MAPI_FUZZ_ANON_SOURCES} ${CMAKE_SOURCE_DIR}/common/cryptopan.c
                 LIBS PkgConfig::OPENSSL PkgConfig::PCRE2 Threads::Threads m)
mapi_fuzz_replay(strsearch SOURCES ${CMAKE_SOURCE_DIR}/flib/stdflib/str_search.c
                 ${CMAKE_SOURCE_DIR}/flib/stdflib/shared.c LIBS Threads::Threads)
mapi_fuzz_replay(bpf_jit SOURCES ${CMAKE_SOURCE_DIR}/flib/stdflib/bpf_jit.c LIBS PkgConfig::PCAP)
mapi_fuzz_replay(mapid_msg SOURCES ${CMAKE_SOURCE_DIR}/daemon/mapid/request.c
                 ${CMAKE_SOURCE_DIR}/common/wire.c)
