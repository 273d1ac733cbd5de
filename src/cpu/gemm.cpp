// ops::gemm on the CPU: OpenBLAS, row-major.
#include "cpu/blas.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void gemm(const Exec&, bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc) {
  blas::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#define GANCU_INSTANTIATE(T) \
  template void gemm<T>(const Exec&, bool, bool, int, int, int, T, const T*, int, const T*, int, T, T*, int);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
