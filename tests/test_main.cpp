// The test binary's main: GoogleTest's, after the OpenBLAS kernel choice gancu itself makes
// (blas_kernel.h), so the suite runs the GEMM kernels a user's gancu runs.
#include <gtest/gtest.h>

#include "gancu/blas_kernel.h"

int main(int argc, char** argv) {
  gancu::use_faster_blas_kernel(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
