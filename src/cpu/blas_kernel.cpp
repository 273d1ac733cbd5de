// OpenBLAS's kernel against the CPU's features (blas_kernel.h).
#include "gancu/blas_kernel.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

extern "C" char* openblas_get_corename(void);

namespace gancu {

std::string faster_blas_coretype(const std::string& core, bool avx2, bool avx512) {
  std::string c = core;
  std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  // OpenBLAS's x86-64 kernels that use AVX-512, and those that use AVX2 (or AVX-512).
  static const std::array<const char*, 4> k512 = {"skylakex", "cooperlake", "sapphirerapids", "zen4"};
  static const std::array<const char*, 8> k2 = {"haswell",        "zen",  "skylakex",  "cooperlake",
                                                "sapphirerapids", "zen4", "excavator", "steamroller"};
  const auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), c) != list.end(); };
  if (avx512 && !in(k512)) return "SkylakeX";
  if (avx2 && !avx512 && !in(k2)) return "Haswell";
  return "";
}

std::string blas_kernel_advice(const std::string& core, bool avx2, bool avx512) {
  const std::string faster = faster_blas_coretype(core, avx2, avx512);
  if (faster.empty()) return "";
  return "OpenBLAS runs its " + core + " kernels on a CPU with " + (avx512 ? "AVX-512" : "AVX2") +
         " (it does not recognize this CPU model); OPENBLAS_CORETYPE=" + faster + " selects faster ones";
}

namespace {
struct CpuKernel {
  std::string core;
  bool avx2 = false, avx512 = false;
};
CpuKernel this_cpu() {
  CpuKernel k;
#if defined(__x86_64__)
  const char* core = openblas_get_corename();
  k.core = core ? core : "";
  k.avx2 = __builtin_cpu_supports("avx2");
  k.avx512 = __builtin_cpu_supports("avx512f");
#endif
  return k;
}
}  // namespace

std::string blas_kernel_name() {
  return this_cpu().core;
}

std::string faster_blas_coretype() {
  const CpuKernel k = this_cpu();
  return faster_blas_coretype(k.core, k.avx2, k.avx512);
}

std::string blas_kernel_note() {
  const CpuKernel k = this_cpu();
  return blas_kernel_advice(k.core, k.avx2, k.avx512);
}

void use_faster_blas_kernel(char** argv) {
  // A set OPENBLAS_CORETYPE is the user's choice, or ours in the process we started: either way
  // OpenBLAS has already read it, and a second exec would loop.
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* keep = std::getenv("GANCU_KEEP_BLAS_KERNEL");
  if (keep != nullptr && *keep != '\0' && std::string(keep) != "0") return;
  const std::string faster = faster_blas_coretype();
  if (faster.empty()) return;
  if (setenv("OPENBLAS_CORETYPE", faster.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");  // the exec failed: carry on with OpenBLAS's choice, noted
}

}  // namespace gancu
