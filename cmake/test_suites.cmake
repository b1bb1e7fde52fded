# Writes one ctest test per gtest suite of BINARY into OUT (run after every
# build of graft_tests; OUT is included by ctest). A suite runs in one
# process: each process loads LibTorch (about 0.4 s of CPU), and 290 single
# tests spent minutes on that alone.
#   cmake -DBINARY=graft_tests -DOUT=suites.cmake -P test_suites.cmake
execute_process(COMMAND "${BINARY}" --gtest_list_tests
                OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BINARY} --gtest_list_tests failed (${rc})")
endif()
string(REPLACE ";" "," listing "${listing}")
string(REPLACE "\n" ";" lines "${listing}")
set(content "# Made by cmake/test_suites.cmake from ${BINARY} --gtest_list_tests\n")
set(count 0)
foreach(line IN LISTS lines)
  if(line MATCHES "^([A-Za-z0-9_/]+)\\.$")
    set(suite "${CMAKE_MATCH_1}")
    string(APPEND content
      "add_test([=[${suite}]=] [=[${BINARY}]=] [=[--gtest_filter=${suite}.*]=])\n"
      "set_tests_properties([=[${suite}]=] PROPERTIES FIXTURES_REQUIRED reference)\n")
    math(EXPR count "${count} + 1")
  endif()
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "${BINARY} lists no test suite")
endif()
file(WRITE "${OUT}.new" "${content}")
file(RENAME "${OUT}.new" "${OUT}")
