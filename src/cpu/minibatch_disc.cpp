// Minibatch discrimination (Salimans et al. 2016) on the CPU: the pairwise statistics of
// projected features m [B, A, C] (ops.h, mbdisc_forward / mbdisc_backward)
//   o[i, a]   = sum_j e[i, j, a],  e[i, j, a] = exp(-sum_c |m[i,a,c] - m[j,a,c]|)
//   dm[k,a,c] = -sum_j (do[k, a] + do[j, a]) e[k, j, a] sign(m[k,a,c] - m[j,a,c])
// (e is symmetric in i and j, so the pair (k, j) reaches m[k] through both o[k] and o[j]).
//
// Fused and tiled: rows i in blocks of kRows (one block per task, in parallel), samples j in
// blocks of kCols (so a block of m stays in L2), and the distance of a pair computed into a
// vector of A values and used at once. Nothing of size B x B is ever stored: the memory is m,
// its transpose and the per-block accumulators, O(B A C). Cost B^2 A (C + 1 exp) forward and
// about twice that backward (the distances are recomputed rather than stored).
//
// m is transposed to [B, C, A] first so that the inner loops run over the A kernels with unit
// stride and vectorize (C is small: 5 in the paper). Each row's sum runs over j in ascending
// order whatever the thread count, so results are bit-identical for any OMP_NUM_THREADS. Float
// uses the vectorizable exp of activation_math.h, double std::exp (the gradient checks).
// sign(0) = 0: the subgradient at a tie, which also makes the j = i term vanish.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

constexpr int64_t kRows = 8;   // rows i per task
constexpr int64_t kCols = 64;  // samples j per tile

// out[i, c, a] = m[i, a, c]
template <class T>
void to_kernel_major(const MinibatchDiscDims& d, const T* m, T* out) {
  const int64_t A = d.kernels, C = d.dims;
#pragma omp parallel for schedule(static) if (d.batch * A * C > kParallelMinWork)
  for (int64_t i = 0; i < d.batch; ++i)
    for (int64_t a = 0; a < A; ++a)
      for (int64_t c = 0; c < C; ++c) out[(i * C + c) * A + a] = m[(i * A + a) * C + c];
}

template <class T>
inline T exp_nonpositive(T x) {
  if constexpr (std::is_same_v<T, float>)
    return exp_nonpositive_vectorizable(x);
  else
    return std::exp(x);
}

// e[a] = exp(-sum_c |mi[c, a] - mj[c, a]|) for the rows mi, mj of the [B, C, A] layout.
template <class T>
inline void pair_similarity(int64_t A, int64_t C, const T* mi, const T* mj, T* e) {
#pragma omp simd
  for (int64_t a = 0; a < A; ++a) e[a] = T(0);
  for (int64_t c = 0; c < C; ++c) {
    const T* x = mi + c * A;
    const T* y = mj + c * A;
#pragma omp simd
    for (int64_t a = 0; a < A; ++a) e[a] += std::fabs(x[a] - y[a]);
  }
#pragma omp simd
  for (int64_t a = 0; a < A; ++a) e[a] = exp_nonpositive(-e[a]);
}

template <class T>
inline T sign(T x) {
  return T(x > T(0)) - T(x < T(0));
}

// The loop both passes share: m transposed to [B, C, A] (mt), rows i in blocks of kRows (one
// task each), samples j in tiles of kCols; each row gets `acc_size` accumulators (zeroed) and a
// vector e of A values. pair(i, j, mt, acc_i, e) adds the pair's terms; finish(i, acc_i) writes
// row i once all j are done.
template <class T, class Pair, class Finish>
void tiled_pairs(const MinibatchDiscDims& d, const T* m, int64_t acc_size, const Pair& pair,
                 const Finish& finish) {
  const int64_t B = d.batch, A = d.kernels, C = d.dims;
  T* mt = host_scratch<T>(size_t(B * A * C), 0);
  to_kernel_major(d, m, mt);
  const int64_t blocks = (B + kRows - 1) / kRows;
#pragma omp parallel for schedule(dynamic) if (B * B * A * C > kParallelMinWork)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * kRows, i1 = std::min(B, i0 + kRows);
    T* acc = host_scratch<T>(size_t(kRows * acc_size + A), 1);  // kRows rows of accumulators, then e
    T* e = acc + kRows * acc_size;
    std::fill(acc, acc + kRows * acc_size, T(0));
    for (int64_t j0 = 0; j0 < B; j0 += kCols) {
      const int64_t j1 = std::min(B, j0 + kCols);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) pair(i, j, mt, acc + (i - i0) * acc_size, e);
    }
    for (int64_t i = i0; i < i1; ++i) finish(i, acc + (i - i0) * acc_size);
  }
}

}  // namespace

template <class T>
void mbdisc_forward(const Exec&, const MinibatchDiscDims& d, const T* m, T* o) {
  check_mbdisc_dims(d, "mbdisc_forward");
  const int64_t A = d.kernels, C = d.dims;
  if (d.batch == 0) return;
  tiled_pairs(
      d, m, A,
      [&](int64_t i, int64_t j, const T* mt, T* sum, T* e) {
        pair_similarity(A, C, mt + i * C * A, mt + j * C * A, e);
#pragma omp simd
        for (int64_t a = 0; a < A; ++a) sum[a] += e[a];
      },
      [&](int64_t i, const T* sum) { std::copy(sum, sum + A, o + i * d.ldo); });
}

template <class T>
void mbdisc_backward(const Exec&, const MinibatchDiscDims& d, const T* m, const T* dout, T* dm) {
  check_mbdisc_dims(d, "mbdisc_backward");
  const int64_t A = d.kernels, C = d.dims;
  if (d.batch == 0) return;
  tiled_pairs(
      d, m, C * A,  // row k of dm in the [C, A] layout
      [&](int64_t k, int64_t j, const T* mt, T* g, T* e) {
        const T* mk = mt + k * C * A;
        const T* mj = mt + j * C * A;
        const T* dok = dout + k * d.ldo;
        const T* doj = dout + j * d.ldo;
        pair_similarity(A, C, mk, mj, e);
#pragma omp simd
        for (int64_t a = 0; a < A; ++a) e[a] *= dok[a] + doj[a];  // the pair's weight
        for (int64_t c = 0; c < C; ++c) {
          const T* x = mk + c * A;
          const T* y = mj + c * A;
          T* gc = g + c * A;
#pragma omp simd
          for (int64_t a = 0; a < A; ++a) gc[a] -= e[a] * sign(x[a] - y[a]);
        }
      },
      [&](int64_t k, const T* g) {
        for (int64_t a = 0; a < A; ++a)
          for (int64_t c = 0; c < C; ++c) dm[(k * A + a) * C + c] = g[c * A + a];
      });
}

#define GANCU_INSTANTIATE(T)                                                            \
  template void mbdisc_forward<T>(const Exec&, const MinibatchDiscDims&, const T*, T*); \
  template void mbdisc_backward<T>(const Exec&, const MinibatchDiscDims&, const T*, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
