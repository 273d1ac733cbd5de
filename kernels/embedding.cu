// Learned class embeddings and the projection discriminator's term on the CUDA backend (ops.h,
// "Class labels"). A sample's class is the position of the largest value of its label row
// (label_class, as the CPU twin reads it).
//
// The table gradient is a scatter-add that PyTorch does with atomics (its sum order varies from
// run to run); here one thread per table entry (class, value) walks the samples in order and adds
// those of its class, so every run gives the same bits, and the CPU twin's bits. Its cost is
// classes x dim x samples label reads: small for the label tables of conditional GANs (tens of
// classes). The forward ops are one thread per output value (lookup) or per sample (projection,
// summed over the features in order, as the CPU).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__device__ __forceinline__ int label_class(const float* row, int classes) {
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (row[c] > row[best]) best = c;
  return best;
}

__global__ void embedding_forward_kernel(EmbeddingDims d, const float* label, const float* table, float* y) {
  const int64_t total = d.samples * d.dim;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t s = i / d.dim, k = i % d.dim;
    y[i] = table[int64_t(label_class(label + s * d.classes, d.classes)) * d.dim + k];
  }
}

__global__ void embedding_backward_kernel(EmbeddingDims d, const float* label, const float* dy,
                                          const float* scale, float* dtable) {
  const int64_t total = int64_t(d.classes) * d.dim;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int c = int(i / d.dim), k = int(i % d.dim);
    float sum = dtable[i];
    for (int64_t s = 0; s < d.samples; ++s) {
      if (label_class(label + s * d.classes, d.classes) != c) continue;
      sum += scale ? scale[s] * dy[s * d.dim + k] : dy[s * d.dim + k];
    }
    dtable[i] = sum;
  }
}

__global__ void projection_forward_kernel(EmbeddingDims d, const float* label, const float* table,
                                          const float* x, float* y) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; s < d.samples; s += stride) {
    const float* row = table + int64_t(label_class(label + s * d.classes, d.classes)) * d.dim;
    float sum = 0.0f;
    for (int k = 0; k < d.dim; ++k) sum += row[k] * x[s * d.dim + k];
    y[s] = sum;
  }
}

__global__ void projection_backward_kernel(EmbeddingDims d, const float* label, const float* table,
                                           const float* dy, float* dx, bool accumulate) {
  const int64_t total = d.samples * d.dim;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t s = i / d.dim, k = i % d.dim;
    const float v = dy[s] * table[int64_t(label_class(label + s * d.classes, d.classes)) * d.dim + k];
    dx[i] = accumulate ? dx[i] + v : v;
  }
}

}  // namespace

template <class T>
void embedding_forward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* table, T* y) {
  static_assert(std::is_same_v<T, float>);
  check_embedding_dims(d, "embedding_forward");
  if (d.samples <= 0) return;
  CudaContext& ctx = context(ex);
  embedding_forward_kernel<<<grid_for(d.samples * d.dim, ctx), kThreads, 0, ctx.stream>>>(d, label, table, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void embedding_backward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* dy, const T* scale,
                        T* dtable) {
  static_assert(std::is_same_v<T, float>);
  check_embedding_dims(d, "embedding_backward");
  if (d.samples <= 0) return;
  CudaContext& ctx = context(ex);
  embedding_backward_kernel<<<grid_for(int64_t(d.classes) * d.dim, ctx), kThreads, 0, ctx.stream>>>(
      d, label, dy, scale, dtable);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void projection_forward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* table, const T* x,
                        T* y) {
  static_assert(std::is_same_v<T, float>);
  check_embedding_dims(d, "projection_forward");
  if (d.samples <= 0) return;
  CudaContext& ctx = context(ex);
  projection_forward_kernel<<<grid_for(d.samples, ctx), kThreads, 0, ctx.stream>>>(d, label, table, x, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void projection_backward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* table, const T* dy,
                         T* dx, bool accumulate_dx) {
  static_assert(std::is_same_v<T, float>);
  check_embedding_dims(d, "projection_backward");
  if (d.samples <= 0 || dx == nullptr) return;
  CudaContext& ctx = context(ex);
  projection_backward_kernel<<<grid_for(d.samples * d.dim, ctx), kThreads, 0, ctx.stream>>>(
      d, label, table, dy, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void embedding_forward<float>(const Exec&, const EmbeddingDims&, const float*, const float*, float*);
template void embedding_backward<float>(const Exec&, const EmbeddingDims&, const float*, const float*,
                                        const float*, float*);
template void projection_forward<float>(const Exec&, const EmbeddingDims&, const float*, const float*,
                                        const float*, float*);
template void projection_backward<float>(const Exec&, const EmbeddingDims&, const float*, const float*,
                                         const float*, float*, bool);

}  // namespace gancu::cuda
