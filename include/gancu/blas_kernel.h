// Which GEMM kernel OpenBLAS chose, and whether the CPU could run a faster one.
//
// OpenBLAS (DYNAMIC_ARCH) picks its kernels from the CPU model at load time; a model it does not
// know (virtual machines often report a generic "Intel Xeon Processor") gets its oldest kernel,
// Prescott (SSE3), even on a CPU with AVX-512, and every GEMM of the CPU backend runs 1.3x (a DCGAN
// step) to 4x (Inception) slower. The choice is made before main() from OPENBLAS_CORETYPE, so
// gancu, when it finds the fallback, sets that variable and executes itself again
// (use_faster_blas_kernel); GANCU_KEEP_BLAS_KERNEL=1 or a user's own OPENBLAS_CORETYPE keeps
// OpenBLAS's choice, and the note then says what it costs.
#pragma once

#include <string>

namespace gancu {

// The OPENBLAS_CORETYPE that runs faster kernels than `core` (openblas_get_corename()) on a CPU
// with these features, or "" when `core` already fits the CPU.
std::string faster_blas_coretype(const std::string& core, bool avx2, bool avx512);

// The advice for that case: "" when the kernel fits, else a sentence naming the variable to set.
std::string blas_kernel_advice(const std::string& core, bool avx2, bool avx512);

// The same two for this process's OpenBLAS and CPU, and the kernel OpenBLAS runs ("SkylakeX").
std::string blas_kernel_name();
std::string faster_blas_coretype();
std::string blas_kernel_note();

// When OpenBLAS fell back to an older kernel than the CPU runs, and neither OPENBLAS_CORETYPE nor
// GANCU_KEEP_BLAS_KERNEL is set, sets OPENBLAS_CORETYPE and replaces this process by itself with
// the same arguments (same pid, so mpirun and srun see nothing). Returns only when it did not
// (nothing to change, or the exec failed: then the note says what it costs).
void use_faster_blas_kernel(char** argv);

}  // namespace gancu
