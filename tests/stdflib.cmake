# tests/stdflib.cmake - unit test of the stdflib function library (included from
# tests/CMakeLists.txt). test_stdflib dlopens the built plugin given on its command line and
# drives its functions with hand-made packets and a fake host API.
add_executable(test_stdflib ${CMAKE_CURRENT_LIST_DIR}/test_stdflib.c)
target_link_libraries(test_stdflib PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(test_stdflib stdflib)
add_test(NAME stdflib COMMAND test_stdflib $<TARGET_FILE:stdflib>)
set_tests_properties(stdflib PROPERTIES TIMEOUT 60)
