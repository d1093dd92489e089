# tests/unit.cmake - unit tests of mapid's common code (included from tests/CMakeLists.txt).
#   test_decode:  the packet decoder (common/decode.c) on hand-made frames, at every capture
#                 length, plus random input.
#   test_log:     log escaping (common/log.c).
#   test_drivers: the trace-file drivers (drivers/*.c) with the decoder on the captures in
#                 tests/data (also gzip-compressed), against tcpdump/tshark values; damaged
#                 files made at run time. Links zlib (found by the top-level CMakeLists.txt).
# All are plain programs that return non-zero on failure; configure with -DMAPI_SANITIZE=ON
# to run them under AddressSanitizer (test_decode copies each frame into a block of exactly
# caplen bytes so that any over-read is caught).
file(GLOB MAPI_UNIT_DRIVER_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/drivers/*.c)

add_executable(test_decode ${CMAKE_CURRENT_LIST_DIR}/test_decode.c
                           ${CMAKE_SOURCE_DIR}/common/decode.c)
set_target_properties(test_decode PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME decode COMMAND test_decode)
set_tests_properties(decode PROPERTIES TIMEOUT 120 LABELS unit)

add_executable(test_drivers ${CMAKE_CURRENT_LIST_DIR}/test_drivers.c ${MAPI_UNIT_DRIVER_SOURCES}
                            ${CMAKE_SOURCE_DIR}/common/decode.c)
target_link_libraries(test_drivers PRIVATE PkgConfig::PCAP ZLIB::ZLIB)
set_target_properties(test_drivers PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME drivers COMMAND test_drivers ${CMAKE_CURRENT_LIST_DIR}/data)
set_tests_properties(drivers PROPERTIES TIMEOUT 120 LABELS unit)

# test_log: the escaping of control characters and invalid UTF-8 in log lines (common/log.c).
add_executable(test_log ${CMAKE_CURRENT_LIST_DIR}/test_log.c ${CMAKE_SOURCE_DIR}/common/log.c)
target_link_libraries(test_log PRIVATE Threads::Threads)
set_target_properties(test_log PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME log_escape COMMAND test_log)
set_tests_properties(log_escape PROPERTIES TIMEOUT 60 LABELS unit)
