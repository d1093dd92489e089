# bench/live.cmake - client of benchmark workload W7 (bench/live.sh), built into <build>/bench.
add_executable(live_client ${CMAKE_CURRENT_SOURCE_DIR}/live_client.c)
target_link_libraries(live_client PRIVATE mapi)
set_target_properties(live_client PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
