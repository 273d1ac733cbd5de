// sample_mixture on the CUDA backend: one thread per point, point i of step *step being
// mixture.h's mixture_point (the definition the CPU backend calls too), written to out[2i, 2i+1].
//
// Nothing to fuse: the sampler is the data set of the 2-d mixture experiments, one Philox block
// and one Box-Muller pair per point, written once. The step is read from device memory at run
// time, so one captured graph draws a new batch at each replay.
//
// Agreement with the CPU: the mode (word 0 of the block) is the same integer on both backends; the
// offsets go through logf/sinf/cosf, whose last bit may differ between CUDA and libm (as for
// fill_noise). Limits: at most 2^32 points per step (the Philox block index is 32-bit).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/mixture.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__global__ void sample_mixture_kernel(Mixture2D mix, int64_t n, const int64_t* step, float* out) {
  const uint64_t s = uint64_t(*step);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float x, y;
    mixture_point(mix, s, uint64_t(i), &x, &y);
    out[2 * i] = x;
    out[2 * i + 1] = y;
  }
}

}  // namespace

template <class T>
void sample_mixture(const Exec& ex, const Mixture2D& mix, int64_t n, const int64_t* step, T* out) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  GANCU_CHECK(mix.modes >= 1, "sample_mixture: ", mix.modes, " modes");
  GANCU_CHECK(n <= (int64_t(1) << 32), "sample_mixture: more than 2^32 points in one step");
  CudaContext& ctx = context(ex);
  sample_mixture_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(mix, n, step, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void sample_mixture<float>(const Exec&, const Mixture2D&, int64_t, const int64_t*, float*);

}  // namespace gancu::cuda
