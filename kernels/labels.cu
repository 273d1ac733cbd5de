// Class labels on the CUDA backend (ops.h, "Class labels"): the fake batch's classes drawn on the
// device from the step counter (so a captured graph draws new ones at every replay), and one-hot
// rows. One thread per class or per label value; rng.h's philox_class is the definition both
// backends share.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::cuda {

namespace {

__global__ void draw_classes_kernel(int64_t n, int classes, uint64_t seed, uint32_t stream,
                                    const int64_t* step, int32_t* out) {
  const uint64_t s = uint64_t(*step);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = philox_class(seed, stream, s, uint64_t(i), classes);
}

__global__ void one_hot_kernel(int64_t n, int classes, const int32_t* labels, float* out) {
  const int64_t total = n * classes;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride)
    out[i] = labels[i / classes] == int32_t(i % classes) ? 1.0f : 0.0f;
}

}  // namespace

template <class T>
void draw_classes(const Exec& ex, int64_t n, int classes, uint64_t seed, uint32_t stream, const int64_t* step,
                  int32_t* out) {
  GANCU_CHECK(classes >= 1, "draw_classes: ", classes, " classes");
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  draw_classes_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(n, classes, seed, stream, step, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void one_hot(const Exec& ex, int64_t n, int classes, const int32_t* labels, T* out) {
  static_assert(std::is_same_v<T, float>);
  GANCU_CHECK(classes >= 1, "one_hot: ", classes, " classes");
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  one_hot_kernel<<<grid_for(n * classes, ctx), kThreads, 0, ctx.stream>>>(n, classes, labels, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void draw_classes<float>(const Exec&, int64_t, int, uint64_t, uint32_t, const int64_t*, int32_t*);
template void one_hot<float>(const Exec&, int64_t, int, const int32_t*, float*);

}  // namespace gancu::cuda
