// OpenBLAS's kernel against the CPU's features (blas_kernel.h).
#include "gancu/blas_kernel.h"

#include <algorithm>
#include <array>
#include <cctype>

extern "C" char* openblas_get_corename(void);

namespace gancu {

std::string blas_kernel_advice(const std::string& core, bool avx2, bool avx512) {
  std::string c = core;
  std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  // OpenBLAS's x86-64 kernels that use AVX-512, and those that use AVX2 (or AVX-512).
  static const std::array<const char*, 4> k512 = {"skylakex", "cooperlake", "sapphirerapids", "zen4"};
  static const std::array<const char*, 8> k2 = {"haswell",        "zen",  "skylakex",  "cooperlake",
                                                "sapphirerapids", "zen4", "excavator", "steamroller"};
  const auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), c) != list.end(); };
  if (avx512 && !in(k512))
    return "OpenBLAS runs its " + core +
           " kernels on a CPU with AVX-512 (it does not recognize this CPU model); "
           "OPENBLAS_CORETYPE=SkylakeX "
           "selects faster ones";
  if (avx2 && !avx512 && !in(k2))
    return "OpenBLAS runs its " + core +
           " kernels on a CPU with AVX2 (it does not recognize this CPU model); OPENBLAS_CORETYPE=Haswell "
           "selects "
           "faster ones";
  return "";
}

std::string blas_kernel_note() {
#if defined(__x86_64__)
  const char* core = openblas_get_corename();
  return blas_kernel_advice(core ? core : "", __builtin_cpu_supports("avx2"),
                            __builtin_cpu_supports("avx512f"));
#else
  return "";
#endif
}

}  // namespace gancu
