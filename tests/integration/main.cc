// integration_tests: brings up one sandbox (scripts/sandbox.sh) for the whole run and tears it
// down at the end, also when interrupted.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::pglane::itest::install_cleanup_handlers();
  ::testing::AddGlobalTestEnvironment(new ::pglane::itest::SandboxEnvironment);
  return RUN_ALL_TESTS();
}
