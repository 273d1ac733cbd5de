// The note about OpenBLAS's kernel choice (blas_kernel.h): given when the kernel is older than the
// CPU's instruction set, silent otherwise.
#include "gancu/blas_kernel.h"

#include <gtest/gtest.h>

#include "cli_test_util.h"

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

TEST(BlasKernel, NamesTheCoreTypeThatRunsFaster) {
  EXPECT_EQ(faster_blas_coretype("Prescott", true, true), "SkylakeX");
  EXPECT_EQ(faster_blas_coretype("Sandybridge", true, false), "Haswell");
  EXPECT_EQ(faster_blas_coretype("SKYLAKEX", true, true), "");  // OpenBLAS's names in any case
  EXPECT_EQ(faster_blas_coretype("Nehalem", false, false), "");
}

// gancu replaces itself with OPENBLAS_CORETYPE set when OpenBLAS fell back to an older kernel: the
// run that keeps OpenBLAS's choice shows the note and the old kernel, the default run neither.
// On a CPU that OpenBLAS recognizes both runs are the same, which is asserted too.
TEST(BlasKernel, GancuRunsTheFasterKernelUnlessToldToKeepOpenBlasChoice) {
  using namespace testing_cli;
  const std::string gancu = std::string("env -u OPENBLAS_CORETYPE ");
  const Result kept = run_command(gancu + "GANCU_KEEP_BLAS_KERNEL=1 " + GANCU_BINARY + " info");
  const Result chosen = run_command(gancu + "-u GANCU_KEEP_BLAS_KERNEL " + GANCU_BINARY + " info");
  ASSERT_EQ(kept.code, 0) << kept.output;
  ASSERT_EQ(chosen.code, 0) << chosen.output;
  EXPECT_EQ(chosen.output.find("OPENBLAS_CORETYPE="), std::string::npos) << chosen.output;
  const size_t advice = kept.output.find("OPENBLAS_CORETYPE=");
  if (advice == std::string::npos) {
    EXPECT_EQ(kept.output, chosen.output);
    return;
  }
  const std::string core = kept.output.substr(advice + 18, kept.output.find(' ', advice) - advice - 18);
  EXPECT_NE(chosen.output.find(" " + core + " "), std::string::npos)
      << "gancu info should show OpenBLAS running " << core << ":\n"
      << chosen.output;
  // A user's own OPENBLAS_CORETYPE is kept as it is (and OpenBLAS's own default, Prescott here).
  const Result user = run_command("OPENBLAS_CORETYPE=Prescott " + std::string(GANCU_BINARY) + " info");
  EXPECT_EQ(user.output.find(" " + core + " "), std::string::npos) << user.output;
}

}  // namespace
}  // namespace gancu
