// The note about OpenBLAS's kernel choice (blas_kernel.h): given when the kernel is older than the
// CPU's instruction set, silent otherwise.
#include "gancu/blas_kernel.h"

#include <gtest/gtest.h>

namespace gancu {
namespace {

TEST(BlasKernel, AdvisesTheCoreTypeWhenOpenBlasFallsBackToAnOldKernel) {
  // A VM's generic CPU model: OpenBLAS falls back to Prescott on an AVX-512 machine.
  const std::string a = blas_kernel_advice("Prescott", true, true);
  EXPECT_NE(a.find("OPENBLAS_CORETYPE=SkylakeX"), std::string::npos) << a;
  EXPECT_NE(a.find("Prescott"), std::string::npos) << a;
  EXPECT_NE(blas_kernel_advice("Sandybridge", true, false).find("OPENBLAS_CORETYPE=Haswell"),
            std::string::npos);
  // AVX2-only kernels on an AVX-512 CPU are slower than they need be, too.
  EXPECT_NE(blas_kernel_advice("Haswell", true, true).find("SkylakeX"), std::string::npos);
}

TEST(BlasKernel, IsSilentWhenTheKernelFitsTheCpu) {
  EXPECT_EQ(blas_kernel_advice("SkylakeX", true, true), "");
  EXPECT_EQ(blas_kernel_advice("Haswell", true, false), "");
  EXPECT_EQ(blas_kernel_advice("Zen", true, false), "");
  EXPECT_EQ(blas_kernel_advice("Prescott", false, false), "");  // an old CPU: nothing faster to pick
}

}  // namespace
}  // namespace gancu
