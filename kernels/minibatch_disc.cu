// Minibatch discrimination (Salimans et al. 2016) on the CUDA backend: the pairwise statistics of
// projected features m [B, A, C] (ops.h; CPU twin src/cpu/minibatch_disc.cpp)
//   o[i, a]   = sum_j exp(-sum_c |m[i,a,c] - m[j,a,c]|)
//   dm[k,a,c] = -sum_j (do[k,a] + do[j,a]) exp(-sum_c' |m[k,a,c'] - m[j,a,c']|) sign(m[k,a,c] - m[j,a,c])
//
// Why fused and tiled: the usual implementation broadcasts m[i] - m[j] into a B x B x A x C
// tensor (4 GiB at B = 2048, A = 100, C = 5) and runs five elementwise passes over it. Here a
// block of kRowsPerBlock rows i and kLanes kernels a walks the batch in tiles of kTileJ samples:
// the tile's m[j, a0:a0+kLanes, :] (and do[j, a0:a0+kLanes] backward) is staged in shared memory
// by coalesced loads, each thread keeps its own m[i, a, :] (and its accumulators) in registers
// and adds the tile's terms; the distances are recomputed backward rather than stored. Memory
// beyond m and dm: none. Each output is summed over j in ascending order by one thread, as the
// CPU twin does, so the two differ only by expf against the CPU's polynomial exp (a few ulp).
//
// Limits: dims (C) <= kMaxDims, the register arrays' size (the layer refuses more at config
// time); B and A * C fit int32 per sample offsets in int64 arithmetic.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

constexpr int kLanes = 32;        // kernels a per block (one warp)
constexpr int kRowsPerBlock = 8;  // rows i per block (one per warp)
constexpr int kTileJ = 16;        // samples j staged per tile
constexpr int kMaxDims = 16;

// Stages sm[jj][c][lane] = m[j0 + jj, a0 + lane, c] (0 outside the batch or the kernels), and
// optionally sdo[jj][lane] = do[j0 + jj, a0 + lane]. Consecutive threads read consecutive floats
// of a sample's slice m[j, a0:a0+kLanes, :].
__device__ __forceinline__ void stage_tile(const MinibatchDiscDims d, const float* __restrict__ m,
                                           const float* __restrict__ dout, int64_t j0, int a0,
                                           float (*sm)[kMaxDims][kLanes], float (*sdo)[kLanes]) {
  const int C = d.dims;
  const int per_sample = kLanes * C;
  const int t = threadIdx.y * kLanes + threadIdx.x;
  for (int idx = t; idx < kTileJ * per_sample; idx += kLanes * kRowsPerBlock) {
    const int jj = idx / per_sample, e = idx % per_sample;
    const int lane = e / C, c = e % C;
    const int64_t j = j0 + jj;
    const int a = a0 + lane;
    sm[jj][c][lane] = (j < d.batch && a < d.kernels) ? m[(j * d.kernels + a) * C + c] : 0.0f;
  }
  if (sdo) {
    for (int idx = t; idx < kTileJ * kLanes; idx += kLanes * kRowsPerBlock) {
      const int jj = idx / kLanes, lane = idx % kLanes;
      const int64_t j = j0 + jj;
      const int a = a0 + lane;
      sdo[jj][lane] = (j < d.batch && a < d.kernels) ? dout[j * d.ldo + a] : 0.0f;
    }
  }
}

// This thread's row against staged sample jj: exp(-sum_c |row[c] - tile[c][lane]|).
__device__ __forceinline__ float similarity(const float (&row)[kMaxDims], const float (*tile)[kLanes],
                                            int lane, int C) {
  float dist = 0.0f;
#pragma unroll
  for (int c = 0; c < kMaxDims; ++c)
    if (c < C) dist += fabsf(row[c] - tile[c][lane]);
  return expf(-dist);
}

// This thread's row m[i, a, :] in registers (zeros past C, or when the thread has no row).
__device__ __forceinline__ void load_row(const MinibatchDiscDims& d, const float* __restrict__ m, int64_t i,
                                         int a, bool active, float (&row)[kMaxDims]) {
#pragma unroll
  for (int c = 0; c < kMaxDims; ++c)
    row[c] = (active && c < d.dims) ? m[(i * d.kernels + a) * d.dims + c] : 0.0f;
}

// grid (ceil(A / kLanes), ceil(B / kRowsPerBlock)), block (kLanes, kRowsPerBlock).
__global__ void __launch_bounds__(kLanes* kRowsPerBlock)
    mbdisc_forward_kernel(const MinibatchDiscDims d, const float* __restrict__ m, float* __restrict__ o) {
  __shared__ float sm[kTileJ][kMaxDims][kLanes];
  const int C = d.dims;
  const int lane = threadIdx.x;
  const int a = blockIdx.x * kLanes + lane;
  const int64_t i = int64_t(blockIdx.y) * kRowsPerBlock + threadIdx.y;
  const bool active = i < d.batch && a < d.kernels;
  float mi[kMaxDims];
  load_row(d, m, i, a, active, mi);
  float sum = 0.0f;
  for (int64_t j0 = 0; j0 < d.batch; j0 += kTileJ) {
    stage_tile(d, m, nullptr, j0, blockIdx.x * kLanes, sm, nullptr);
    __syncthreads();
    const int jn = int(d.batch - j0 < kTileJ ? d.batch - j0 : int64_t(kTileJ));
    for (int jj = 0; jj < jn; ++jj) {
      sum += similarity(mi, sm[jj], lane, C);
    }
    __syncthreads();
  }
  if (active) o[i * d.ldo + a] = sum;
}

__device__ __forceinline__ float sign(float x) {
  return float(x > 0.0f) - float(x < 0.0f);
}

__global__ void __launch_bounds__(kLanes* kRowsPerBlock)
    mbdisc_backward_kernel(const MinibatchDiscDims d, const float* __restrict__ m,
                           const float* __restrict__ dout, float* __restrict__ dm) {
  __shared__ float sm[kTileJ][kMaxDims][kLanes];
  __shared__ float sdo[kTileJ][kLanes];
  const int C = d.dims;
  const int lane = threadIdx.x;
  const int a = blockIdx.x * kLanes + lane;
  const int64_t k = int64_t(blockIdx.y) * kRowsPerBlock + threadIdx.y;
  const bool active = k < d.batch && a < d.kernels;
  float mk[kMaxDims], g[kMaxDims];
  load_row(d, m, k, a, active, mk);
#pragma unroll
  for (int c = 0; c < kMaxDims; ++c) g[c] = 0.0f;
  const float dok = active ? dout[k * d.ldo + a] : 0.0f;
  for (int64_t j0 = 0; j0 < d.batch; j0 += kTileJ) {
    stage_tile(d, m, dout, j0, blockIdx.x * kLanes, sm, sdo);
    __syncthreads();
    const int jn = int(d.batch - j0 < kTileJ ? d.batch - j0 : int64_t(kTileJ));
    for (int jj = 0; jj < jn; ++jj) {
      const float w = similarity(mk, sm[jj], lane, C) * (dok + sdo[jj][lane]);
#pragma unroll
      for (int c = 0; c < kMaxDims; ++c)
        if (c < C) g[c] -= w * sign(mk[c] - sm[jj][c][lane]);
    }
    __syncthreads();
  }
  if (active) {
#pragma unroll
    for (int c = 0; c < kMaxDims; ++c)
      if (c < C) dm[(k * d.kernels + a) * C + c] = g[c];
  }
}

dim3 mbdisc_grid(const MinibatchDiscDims& d) {
  return dim3(unsigned((d.kernels + kLanes - 1) / kLanes),
              unsigned((d.batch + kRowsPerBlock - 1) / kRowsPerBlock));
}

void check_limits(const MinibatchDiscDims& d, const char* op) {
  check_mbdisc_dims(d, op);
  GANCU_CHECK(d.dims <= kMaxDims, op, ": at most ", kMaxDims, " dims per kernel on CUDA, got ", d.dims);
  GANCU_CHECK((d.batch + kRowsPerBlock - 1) / kRowsPerBlock <= 65535, op, ": batch ", d.batch, " too large");
}

}  // namespace

template <class T>
void mbdisc_forward(const Exec& ex, const MinibatchDiscDims& d, const T* m, T* o) {
  static_assert(std::is_same_v<T, float>);
  check_limits(d, "mbdisc_forward");
  if (d.batch == 0) return;
  CudaContext& ctx = context(ex);
  mbdisc_forward_kernel<<<mbdisc_grid(d), dim3(kLanes, kRowsPerBlock), 0, ctx.stream>>>(d, m, o);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void mbdisc_backward(const Exec& ex, const MinibatchDiscDims& d, const T* m, const T* dout, T* dm) {
  static_assert(std::is_same_v<T, float>);
  check_limits(d, "mbdisc_backward");
  if (d.batch == 0) return;
  CudaContext& ctx = context(ex);
  mbdisc_backward_kernel<<<mbdisc_grid(d), dim3(kLanes, kRowsPerBlock), 0, ctx.stream>>>(d, m, dout, dm);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void mbdisc_forward<float>(const Exec&, const MinibatchDiscDims&, const float*, float*);
template void mbdisc_backward<float>(const Exec&, const MinibatchDiscDims&, const float*, const float*,
                                     float*);

}  // namespace gancu::cuda
