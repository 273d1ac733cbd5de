// Concatenation along channels on the CUDA backend (op_types.h, ConcatPart; see ops.h): each input
// is copied into its channels of the output, and its gradient read back from them.
//
// One thread per value of the input, channels fastest, so that a warp reads and writes runs of
// neighbouring channels. The gradient of a broadcast input (a per-sample vector repeated at every
// position) is a sum over the positions: one thread per (sample, channel) adds them in position
// order, in float, the order and precision of the CPU twin, so both give the same bits. No atomics.
//
// Not fused: a concatenation is the graph's join of two buffers; its neighbours carry the
// epilogues. Limits: the output has fewer than 2^63 values.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__global__ void concat_forward_kernel(ConcatPart part, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t src = part.src_channels;
  const int64_t total = part.samples * part.positions * src;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t row = i / src, k = i % src;  // row = sample * positions + position
    const int64_t from = part.broadcast ? (row / part.positions) * src + k : i;
    y[row * part.dst_channels + part.offset + k] = x[from];
  }
}

__global__ void concat_backward_kernel(ConcatPart part, const float* __restrict__ dy, float* dx,
                                       bool accumulate) {
  const int64_t src = part.src_channels;
  const int64_t total = part.samples * (part.broadcast ? 1 : part.positions) * src;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t row = i / src, k = i % src;
    float v;
    if (part.broadcast) {  // row is the sample
      v = 0.0f;
      for (int64_t p = 0; p < part.positions; ++p)
        v += dy[(row * part.positions + p) * part.dst_channels + part.offset + k];
    } else {
      v = dy[row * part.dst_channels + part.offset + k];
    }
    dx[i] = accumulate ? dx[i] + v : v;
  }
}

}  // namespace

template <class T>
void concat_forward(const Exec& ex, const ConcatPart& part, const T* x, T* y) {
  static_assert(std::is_same_v<T, float>);
  check_concat_part(part, "concat_forward");
  const int64_t total = part.samples * part.positions * part.src_channels;
  if (total <= 0) return;
  CudaContext& ctx = context(ex);
  concat_forward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(part, x, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void concat_backward(const Exec& ex, const ConcatPart& part, const T* dy, T* dx, bool accumulate_dx) {
  static_assert(std::is_same_v<T, float>);
  check_concat_part(part, "concat_backward");
  const int64_t total = part.samples * (part.broadcast ? 1 : part.positions) * part.src_channels;
  if (dx == nullptr || total <= 0) return;
  CudaContext& ctx = context(ex);
  concat_backward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(part, dy, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void concat_forward<float>(const Exec&, const ConcatPart&, const float*, float*);
template void concat_backward<float>(const Exec&, const ConcatPart&, const float*, float*, bool);

}  // namespace gancu::cuda
