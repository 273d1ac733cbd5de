// Which GEMM kernel OpenBLAS chose, and whether the CPU could run a faster one.
//
// OpenBLAS (DYNAMIC_ARCH) picks its kernels from the CPU model at load time; a model it does not
// know (virtual machines often report a generic "Intel Xeon Processor") gets its oldest kernel,
// Prescott (SSE3), even on a CPU with AVX-512, and every GEMM of the CPU backend runs slower. The
// choice is made before main(), so gancu cannot change it; it says so, with the variable that
// does (OPENBLAS_CORETYPE).
#pragma once

#include <string>

namespace gancu {

// The advice for a kernel `core` (openblas_get_corename()) on a CPU with these features: "" when
// the kernel fits, else a sentence naming the OPENBLAS_CORETYPE to set.
std::string blas_kernel_advice(const std::string& core, bool avx2, bool avx512);

// The same for this process's OpenBLAS and CPU.
std::string blas_kernel_note();

}  // namespace gancu
