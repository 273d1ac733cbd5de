// Squared Euclidean distances between the rows of a [m, d] and b [n, d] on the CPU:
//   out[i, j] = max(0, ||a_i||^2 + ||b_j||^2 - 2 a_i . b_j)
// as one GEMM (OpenBLAS, out = -2 a b^T) and one epilogue pass over out that adds the row norms
// and clamps at 0.
//
// The expansion costs 2 m n d flops in the GEMM instead of 3 m n d for direct differences, and
// runs at GEMM speed. Its price is cancellation: a distance much smaller than the norms loses
// relative precision (about eps * (||a||^2 + ||b||^2) absolute), and can come out slightly
// negative, hence the clamp; identical rows give a value in [0, a few eps ||a||^2], exactly 0
// only when the products are exact. The norms are accumulated in double.
#include <algorithm>

#include "cpu/blas.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

template <class T>
void row_norms(int rows, int d, const T* x, T* out) {
#pragma omp parallel for schedule(static) if (int64_t(rows) * d > kParallelMinWork)
  for (int i = 0; i < rows; ++i) {
    const T* r = x + int64_t(i) * d;
    double s = 0;
    for (int k = 0; k < d; ++k) s += double(r[k]) * double(r[k]);
    out[i] = T(s);
  }
}

}  // namespace

template <class T>
void pairwise_sq_distances(const Exec&, int m, int n, int d, const T* a, const T* b, T* out) {
  if (m <= 0 || n <= 0) return;
  if (d <= 0) {  // empty rows: every distance is 0 (and BLAS rejects a leading dimension of 0)
    std::fill(out, out + int64_t(m) * n, T(0));
    return;
  }
  T* norms = host_scratch<T>(size_t(m) + size_t(n), 1);  // [m] of a, then [n] of b
  T *na = norms, *nb = norms + m;
  row_norms(m, d, a, na);
  row_norms(n, d, b, nb);
  // out[m, n] = -2 a[m, d] b[n, d]^T
  blas::gemm(false, true, m, n, d, T(-2), a, d, b, d, T(0), out, n);
  // Epilogue: rows in blocks of ~16k values.
  const int64_t block = std::max<int64_t>(1, 16384 / n);
  const int64_t blocks = (m + block - 1) / block;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t bl = 0; bl < blocks; ++bl) {
    const int64_t i0 = bl * block, i1 = std::min<int64_t>(m, i0 + block);
    for (int64_t i = i0; i < i1; ++i) {
      T* o = out + i * n;
      const T ni = na[i];
#pragma omp simd
      for (int j = 0; j < n; ++j) {
        const T v = o[j] + ni + nb[j];
        o[j] = v < T(0) ? T(0) : v;  // NaN passes through
      }
    }
  }
}

template void pairwise_sq_distances<float>(const Exec&, int, int, int, const float*, const float*, float*);
template void pairwise_sq_distances<double>(const Exec&, int, int, int, const double*, const double*,
                                            double*);

}  // namespace gancu::cpu
