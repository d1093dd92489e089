# tests/libmapi.cmake - unit tests of libmapi's local back end (included from
# tests/CMakeLists.txt). test_libmapi_wire runs libmapi against a fake mapid thread on a
# private socket (it sets $MAPI_CONF itself), so it needs no running daemon.
add_executable(test_libmapi_wire ${CMAKE_CURRENT_LIST_DIR}/test_libmapi_wire.c)
target_link_libraries(test_libmapi_wire PRIVATE mapi_static Threads::Threads)
add_test(NAME libmapi_wire COMMAND test_libmapi_wire)
set_tests_properties(libmapi_wire PROPERTIES TIMEOUT 60)
