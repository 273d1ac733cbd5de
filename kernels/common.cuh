// Device helpers shared by the kernel files: activations and their derivatives, launch sizes,
// alignment tests, and the geometry of the deterministic per-channel reductions.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda_context.h"
#include "gancu/op_types.h"

namespace gancu::cuda {

constexpr int kThreads = 256;  // threads per block of the elementwise kernels

// The coordinates of flat index i into an NHWC tensor of h x w x c images (the kernels that run
// one thread per pixel value).
struct NhwcIndex {
  int n, h, w, c;
};
__device__ __forceinline__ NhwcIndex nhwc_index(int64_t i, int h, int w, int c) {
  NhwcIndex at;
  at.c = int(i % c);
  int64_t rest = i / c;
  at.w = int(rest % w);
  rest /= w;
  at.h = int(rest % h);
  at.n = int(rest / h);
  return at;
}

// Split on the sign so that exp never overflows (the CPU backend's formula).
__device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

// y = act(x)
__device__ __forceinline__ float act_forward(float x, Act kind, float slope) {
  switch (kind) {
    case Act::ReLU:
      return x < 0.0f ? 0.0f : x;  // NaN passes through, as in PyTorch
    case Act::LeakyReLU:
      return x > 0.0f ? x : slope * x;
    case Act::Tanh:
      return tanhf(x);
    case Act::Sigmoid:
      return sigmoid(x);
    default:
      return x;
  }
}

// dy * act'(x), written in terms of the output y (see op_types.h). ReLU and LeakyReLU select
// rather than multiply, as the CPU does: a dead unit passes 0 even when dy is inf or NaN, where
// `dy * 0` would be NaN.
__device__ __forceinline__ float act_backward(float dy, float y, Act kind, float slope) {
  switch (kind) {
    case Act::ReLU:
      return y > 0.0f ? dy : 0.0f;
    case Act::LeakyReLU:
      return y > 0.0f ? dy : slope * dy;
    case Act::Tanh:
      return dy * (1.0f - y * y);
    case Act::Sigmoid:
      return dy * (y * (1.0f - y));
    default:
      return dy;
  }
}

// act''(z) / act'(z) as a function of y = act(z): tanh -2y, sigmoid 1 - 2y, 0 for the
// piecewise-linear ones (the second-order term of a tangent's backward is this times ty dty).
__device__ __forceinline__ float act_curvature(float y, Act kind) {
  if (kind == Act::Tanh) return -2.0f * y;
  if (kind == Act::Sigmoid) return 1.0f - 2.0f * y;
  return 0.0f;
}

__host__ __device__ __forceinline__ bool act_is_smooth(Act kind) {
  return kind == Act::Tanh || kind == Act::Sigmoid;
}

// K sums over the block, each by the same fixed shared-memory tree: v[k] holds this thread's
// value on entry and the block's sum on return, in every thread. blockDim.x is a power of two;
// `sh` holds K * blockDim.x doubles. Contains barriers: every thread of the block must call it.
template <int K>
__device__ __forceinline__ void block_sums(double (&v)[K], double* sh) {
  const int t = threadIdx.x, n = blockDim.x;
  for (int k = 0; k < K; ++k) sh[k * n + t] = v[k];
  __syncthreads();
  for (int s = n / 2; s > 0; s >>= 1) {
    if (t < s)
      for (int k = 0; k < K; ++k) sh[k * n + t] += sh[k * n + t + s];
    __syncthreads();
  }
  for (int k = 0; k < K; ++k) v[k] = sh[k * n];
  __syncthreads();  // every thread has read the sums: sh may be reused
}

// ---- Two-stage sums over a flat array (losses, the spread of a batch) ----------------------------
// Stage 1: `sum_blocks(n)` blocks of kSumThreads threads; block b reduces its own contiguous
// range (sum_range) and writes K double partials [b][K]. Stage 2: one block of kSumThreads adds
// the partials in block order (sum_partials). The block count depends on n only, never on the
// device, so the order of the additions and the result do too.
constexpr int kSumThreads = 256;
constexpr int kMaxSumBlocks = 1024;

inline int sum_blocks(int64_t n) {
  const int64_t per_block = int64_t(kSumThreads) * 8;
  return int(std::max<int64_t>(1, std::min<int64_t>(kMaxSumBlocks, (n + per_block - 1) / per_block)));
}

// This block's range [i0, i1) of the n values.
__device__ __forceinline__ void sum_range(int64_t n, int64_t& i0, int64_t& i1) {
  const int64_t chunk = (n + gridDim.x - 1) / gridDim.x;
  i0 = min(n, int64_t(blockIdx.x) * chunk);
  i1 = min(n, i0 + chunk);
}

// Stage 2: v[k] = the sum over `blocks` partials [b][K], in every thread. `sh` as block_sums.
template <int K>
__device__ __forceinline__ void sum_partials(int blocks, const double* partials, double (&v)[K], double* sh) {
  for (int k = 0; k < K; ++k) v[k] = 0.0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x)
    for (int k = 0; k < K; ++k) v[k] += partials[int64_t(b) * K + k];
  block_sums<K>(v, sh);
}

// Blocks for a grid-stride loop over `work` items: enough to fill the device a few times over,
// never more than the work needs.
inline int grid_for(int64_t work, const CudaContext& ctx, int threads = kThreads) {
  const int64_t needed = (work + threads - 1) / threads;
  const int64_t cap = int64_t(std::max(ctx.sm_count, 1)) * 16;
  return int(std::max<int64_t>(1, std::min(needed, cap)));
}

inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Geometry of a per-channel reduction over a [rows, channels] matrix (NHWC: channels fastest).
// A block is tile_c x (kThreads / tile_c) threads: threadIdx.x walks tile_c neighbouring
// channels (coalesced), threadIdx.y walks rows. blockIdx.x picks the channel tile, blockIdx.y
// the split of rows. Each block writes one partial per channel; a second launch adds the
// partials of all splits in a fixed order, so the result does not depend on scheduling.
struct ReduceGeometry {
  int tile_c = 32;
  int rows_per_iter = 8;  // blockDim.y
  int col_tiles = 1;
  int splits = 1;  // gridDim.y
  int64_t rows_per_split = 0;
};

inline ReduceGeometry reduce_geometry(int64_t rows, int channels, const CudaContext& ctx,
                                      int floats_per_partial) {
  ReduceGeometry g;
  int tc = 1;
  while (tc < channels && tc < 32) tc *= 2;
  g.tile_c = tc;
  g.rows_per_iter = kThreads / tc;
  g.col_tiles = (channels + tc - 1) / tc;
  // Aim for ~4 blocks per multiprocessor, at least 4 row iterations per thread, and partials that
  // fit the context's scratch.
  const int64_t target_blocks = int64_t(std::max(ctx.sm_count, 1)) * 4;
  int64_t splits = std::max<int64_t>(1, target_blocks / g.col_tiles);
  const int64_t max_by_rows = std::max<int64_t>(1, rows / (int64_t(g.rows_per_iter) * 4));
  splits = std::min(splits, max_by_rows);
  const int64_t max_by_scratch =
      int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2) / (int64_t(channels) * floats_per_partial);
  splits = std::max<int64_t>(1, std::min(splits, max_by_scratch));
  splits = std::min<int64_t>(splits, 65535);
  int64_t per = (rows + splits - 1) / splits;
  per = (per + g.rows_per_iter - 1) / g.rows_per_iter * g.rows_per_iter;
  g.rows_per_split = per;
  g.splits = int((rows + per - 1) / per);
  if (g.splits < 1) g.splits = 1;
  return g;
}

// The scratch halves: [0, half) holds the partials, [half, end) per-channel results that a
// later launch of the same op reads (batch-norm coefficients).
inline float* scratch_partials(const CudaContext& ctx) {
  return static_cast<float*>(ctx.reduce_scratch);
}
inline float* scratch_results(const CudaContext& ctx) {
  return static_cast<float*>(ctx.reduce_scratch) + ctx.reduce_scratch_bytes / sizeof(float) / 2;
}

// Per-channel column sum with optional fused activation backward, used by the bias gradients
// of linear and convolution layers (gemm.cu and conv.cu; defined in reduce.cu):
//   dy[i, c] *= act'(y[i, c])            (in place, when act is not None)
//   db[c] += sum_i dy[i, c]              (when db is not null; deterministic)
void bias_grad_dact(const Exec& ex, int64_t rows, int channels, const float* y, float* dy, float* db,
                    Activation act);

// y[i, c] = act(y[i, c] + b[c]) over a [rows, channels] matrix; b may be null (elementwise.cu).
void bias_act(const Exec& ex, int64_t rows, int channels, const float* b, float* y, Activation act);

}  // namespace gancu::cuda
