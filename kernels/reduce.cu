// Bias gradient with the activation's backward fused: for a [rows, channels] gradient dy (NHWC
// or [batch, features]) and the layer's output y,
//   dy[i, c] *= act'(y[i, c])     (in place, when there is an activation)
//   db[c]    += sum_i dy[i, c]    (when db is not null)
// in one pass over dy and y, instead of an elementwise pass followed by a reduction pass.
//
// Deterministic: each block sums a fixed tile of rows and channels in a fixed order into the
// context's scratch, and a second small launch adds the partials of all row splits in order;
// no floating-point atomics, so the sums are the same bits on every run.
//
// Limits: channels up to what the reduce scratch holds for one split (about 500K); rows any.
#include <cuda_runtime.h>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"

namespace gancu::cuda {

namespace {

__global__ void colsum_dact_kernel(int64_t rows, int channels, int64_t rows_per_split, const float* y,
                                   float* dy, Act kind, float slope, float* partials) {
  extern __shared__ float sh[];  // [blockDim.y][blockDim.x]
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_split;
  const int64_t r1 = min(rows, r0 + rows_per_split);
  float sum = 0.0f;
  if (c < channels) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += blockDim.y) {
      const int64_t i = r * channels + c;
      float g = dy[i];
      if (kind != Act::None) {
        g = act_backward(g, y[i], kind, slope);
        dy[i] = g;
      }
      sum += g;
    }
  }
  sh[threadIdx.y * blockDim.x + threadIdx.x] = sum;
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {  // blockDim.y is a power of two
    if (int(threadIdx.y) < s)
      sh[threadIdx.y * blockDim.x + threadIdx.x] += sh[(threadIdx.y + s) * blockDim.x + threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < channels) partials[int64_t(blockIdx.y) * channels + c] = sh[threadIdx.x];
}

__global__ void colsum_finalize_kernel(int channels, int splits, const float* partials, float* db) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double s = 0.0;  // the splits' partials, added in order (in double: up to thousands of them)
  for (int k = 0; k < splits; ++k) s += double(partials[int64_t(k) * channels + c]);
  db[c] += float(s);
}

}  // namespace

void bias_grad_dact(const Exec& ex, int64_t rows, int channels, const float* y, float* dy, float* db,
                    Activation act) {
  if (rows <= 0 || channels <= 0) return;
  if (db == nullptr && act.kind == Act::None) return;
  CudaContext& ctx = context(ex);
  const ReduceGeometry g = reduce_geometry(rows, channels, ctx, 1);
  GANCU_CHECK(int64_t(g.splits) * channels <= int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2),
              "bias gradient: ", channels, " channels do not fit the reduction scratch");
  float* partials = scratch_partials(ctx);
  const dim3 block(g.tile_c, g.rows_per_iter);
  const dim3 grid(g.col_tiles, g.splits);
  colsum_dact_kernel<<<grid, block, kThreads * sizeof(float), ctx.stream>>>(
      rows, channels, g.rows_per_split, y, dy, act.kind, act.slope, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  if (db) {
    colsum_finalize_kernel<<<(channels + kThreads - 1) / kThreads, kThreads, 0, ctx.stream>>>(
        channels, g.splits, partials, db);
    GANCU_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace gancu::cuda
