// Bilinear resizing on the CUDA backend (op_types.h, ResizeDims; see ops.h): PyTorch's
// F.interpolate(mode='bilinear', align_corners=False, antialias=False), NHWC. The taps and weights
// of each output coordinate come from gancu/bilinear_taps.h, the function the CPU twin calls.
//
// Forward: one thread per output value, channels fastest, so that a warp reads runs of
// neighbouring channels of each of its 2 x 2 source pixels (coalesced).
//
// Backward is a gather, one thread per input value: dx sums weight * dy over the output pixels
// that read it (bilinear_covering bounds them; rows, then columns, in increasing order, as the CPU
// twin). No atomics, so the sums are the same bits on every run; an upscale by f costs each
// thread about (2 f + 3)^2 weight tests, cheap next to the convolutions that follow a resize.
//
// Not fused: a resize is its own layer (Inception's input); its neighbours carry the epilogues.
// Limits: tensors of fewer than 2^63 values.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/bilinear_taps.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__global__ void resize_forward_kernel(ResizeDims d, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t total = int64_t(d.n) * d.out_h * d.out_w * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const NhwcIndex at = nhwc_index(i, d.out_h, d.out_w, d.c);
    const BilinearTap<float> th = bilinear_tap<float>(at.h, d.h, d.out_h);
    const BilinearTap<float> tw = bilinear_tap<float>(at.w, d.w, d.out_w);
    const float* top = x + (int64_t(at.n) * d.h + th.i0) * d.w * d.c + at.c;
    const float* bottom = x + (int64_t(at.n) * d.h + th.i1) * d.w * d.c + at.c;
    const float a = top[int64_t(tw.i0) * d.c], b = top[int64_t(tw.i1) * d.c];
    const float e = bottom[int64_t(tw.i0) * d.c], f = bottom[int64_t(tw.i1) * d.c];
    y[i] = th.l0 * (tw.l0 * a + tw.l1 * b) + th.l1 * (tw.l0 * e + tw.l1 * f);
  }
}

__global__ void resize_backward_kernel(ResizeDims d, const float* __restrict__ dy, float* dx,
                                       bool accumulate) {
  const int64_t total = int64_t(d.n) * d.h * d.w * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const NhwcIndex at = nhwc_index(i, d.h, d.w, d.c);
    int oy_first, oy_last, ox_first, ox_last;
    bilinear_covering(at.h, d.h, d.out_h, oy_first, oy_last);
    bilinear_covering(at.w, d.w, d.out_w, ox_first, ox_last);
    const float* dy_n = dy + int64_t(at.n) * d.out_h * d.out_w * d.c + at.c;
    float acc = accumulate ? dx[i] : 0.0f;
    for (int oy = oy_first; oy <= oy_last; ++oy) {
      const float wh = bilinear_weight(bilinear_tap<float>(oy, d.h, d.out_h), at.h);
      if (wh == 0.0f) continue;
      for (int ox = ox_first; ox <= ox_last; ++ox) {
        const float ww = bilinear_weight(bilinear_tap<float>(ox, d.w, d.out_w), at.w);
        if (ww == 0.0f) continue;
        acc += wh * ww * dy_n[(int64_t(oy) * d.out_w + ox) * d.c];
      }
    }
    dx[i] = acc;
  }
}

}  // namespace

template <class T>
void resize_bilinear_forward(const Exec& ex, const ResizeDims& d, const T* x, T* y) {
  static_assert(std::is_same_v<T, float>);
  check_resize_dims(d, "resize_bilinear_forward");
  const int64_t total = d.y_elems();
  if (total <= 0) return;
  CudaContext& ctx = context(ex);
  resize_forward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, x, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void resize_bilinear_backward(const Exec& ex, const ResizeDims& d, const T* dy, T* dx, bool accumulate_dx) {
  static_assert(std::is_same_v<T, float>);
  check_resize_dims(d, "resize_bilinear_backward");
  const int64_t total = d.x_elems();
  if (dx == nullptr || total <= 0) return;
  CudaContext& ctx = context(ex);
  resize_backward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, dy, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void resize_bilinear_forward<float>(const Exec&, const ResizeDims&, const float*, float*);
template void resize_bilinear_backward<float>(const Exec&, const ResizeDims&, const float*, float*, bool);

}  // namespace gancu::cuda
