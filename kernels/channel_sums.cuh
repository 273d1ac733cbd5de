// The per-channel pair of sums that the normalization layers' backward passes need, over a
// [rows, channels] matrix (NHWC: channels fastest): a[c] = sum_i term_a(i), b[c] = sum_i term_b(i).
// The tiling of ReduceGeometry (common.cuh): a block is tile_c x rows_per_iter threads over a tile
// of channels and one split of the rows; each thread adds its rows in order, a fixed shared-memory
// tree adds the threads of a column, and the block writes double partials [split][2][channels]
// (the first scratch half) that a finalize adds over the splits in order.
//
// Precision: everything is summed in double, as the CPU twins do. In float, a thread's sum over
// hundreds of rows of dy (x - mean), whose terms cancel, lost enough to move a whole training
// step's update by 2e-3 relative (found by the emulated CUDA tests, CudaTraining.*SgdStep*).
// The bytes read are the same; the extra cost is double adds, far below the memory time.
//
// Term: term(i, row, c, a, b) adds value i = row * channels + c's contributions to a and b (it
// may also rewrite the value in place, as batch norm and layer norm do with dy *= act'(y)).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gancu::cuda {

// Dynamic shared memory of channel_pair_sums_kernel for `threads` threads per block.
constexpr size_t channel_pair_sums_shared(int threads) {
  return 2 * size_t(threads) * sizeof(double);
}
// Floats of scratch per channel and split (two double partials): reduce_geometry's argument.
constexpr int kChannelPairFloats = 4;

template <class Term>
__global__ void channel_pair_sums_kernel(int64_t rows, int channels, int64_t rows_per_split, Term term,
                                         double* partials) {
  extern __shared__ double sh[];  // 2 x [blockDim.y][blockDim.x]
  const int nthreads = blockDim.x * blockDim.y;
  double* sh_a = sh;
  double* sh_b = sh + nthreads;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_split;
  const int64_t r1 = min(rows, r0 + rows_per_split);
  double sa = 0.0, sb = 0.0;
  if (c < channels)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += blockDim.y) term(r * channels + c, r, c, sa, sb);
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  sh_a[t] = sa;
  sh_b[t] = sb;
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {
    if (int(threadIdx.y) < s) {
      sh_a[t] += sh_a[t + s * blockDim.x];
      sh_b[t] += sh_b[t + s * blockDim.x];
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < channels) {
    double* p = partials + int64_t(blockIdx.y) * 2 * channels;
    p[c] = sh_a[threadIdx.x];
    p[channels + c] = sh_b[threadIdx.x];
  }
}

// A finalize's totals of channel c: its two partials added over the splits, in split order.
__device__ __forceinline__ void channel_pair_totals(const double* partials, int splits, int channels, int c,
                                                    double& a, double& b) {
  a = 0.0;
  b = 0.0;
  for (int k = 0; k < splits; ++k) {
    const double* p = partials + int64_t(k) * 2 * channels;
    a += p[c];
    b += p[channels + c];
  }
}

}  // namespace gancu::cuda
