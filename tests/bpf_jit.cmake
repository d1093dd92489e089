# tests/bpf_jit.cmake - differential test of the BPF JIT of stdflib (flib/stdflib/bpf_jit.c)
# against libpcap's bpf_filter() over the captures in tests/data (included from
# tests/CMakeLists.txt). `test_bpf_jit --bench FILE [N]` also times interpreter vs JIT.
add_executable(test_bpf_jit ${CMAKE_CURRENT_LIST_DIR}/test_bpf_jit.c
                            ${CMAKE_CURRENT_LIST_DIR}/../flib/stdflib/bpf_jit.c)
target_include_directories(test_bpf_jit PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(test_bpf_jit PRIVATE PkgConfig::PCAP)
set_target_properties(test_bpf_jit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME bpf_jit COMMAND test_bpf_jit ${CMAKE_CURRENT_LIST_DIR}/data)
set_tests_properties(bpf_jit PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
