// Fakes for D's pre-training on the CUDA backend (ops.h, histogram_pixels / permute_positions;
// CPU twin src/cpu/fake_pixels.cpp). Elementwise: a binary search of the 256-entry CDF per pixel
// (the table stays in L1), and a gather of pixel positions with the channels kept together.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/ops.h"
#include "gancu/pixel_cdf.h"

namespace gancu::cuda {

namespace {

__global__ void histogram_pixels_kernel(int64_t n, const float* __restrict__ cdf, float scale, float shift,
                                        float* __restrict__ inout) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float u = (inout[i] + 1.0f) * 0.5f;
    inout[i] = __fmaf_rn(float(cdf_bin(u, cdf)), scale, shift);
  }
}

__global__ void permute_positions_kernel(int64_t rows, int64_t positions, int channels,
                                         const int32_t* __restrict__ perm, const float* __restrict__ in,
                                         float* __restrict__ out) {
  const int64_t n = rows * positions * channels;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % channels, rp = i / channels;
    const int64_t p = rp % positions, r = rp / positions;
    out[i] = in[(r * positions + perm[p]) * channels + c];
  }
}

}  // namespace

template <class T>
void histogram_pixels(const Exec& ex, int64_t n, const float* cdf, float scale, float shift, T* inout) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  histogram_pixels_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(n, cdf, scale, shift, inout);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void permute_positions(const Exec& ex, int64_t rows, int64_t positions, int channels, const int32_t* perm,
                       const T* in, T* out) {
  static_assert(std::is_same_v<T, float>);
  const int64_t n = rows * positions * channels;
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  permute_positions_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(rows, positions, channels, perm, in,
                                                                          out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void histogram_pixels<float>(const Exec&, int64_t, const float*, float, float, float*);
template void permute_positions<float>(const Exec&, int64_t, int64_t, int, const int32_t*, const float*,
                                       float*);

}  // namespace gancu::cuda
