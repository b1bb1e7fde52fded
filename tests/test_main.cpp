#include <gtest/gtest.h>

#include "graft/core/progress.h"
#include "graft/core/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  graft::set_quiet(true);
  graft::set_threads(0);
  graft::tune_allocator();
  return RUN_ALL_TESTS();
}
