// Max and average pooling of the CUDA backend, NHWC: x [n, h, w, c] -> y [n, p, q, c] over k x k
// windows (see PoolDims and ops.h). Average pooling divides by k * k, or by the window's taps
// inside the image when !include_pad.
//
// Forward: one thread per output element, channels fastest so that a warp reads neighbouring
// channels of each tap (coalesced). The taps are visited in row-major order, as on the CPU, so
// average pooling adds in the same order and max pooling picks the same first maximum.
//
// Backward is a gather, one thread per input element: dx[n, h, w, c] sums the dy of the windows
// that cover (h, w), in a fixed order (by p, then q). Overlapping windows therefore need no
// atomics, and the sums are the same bits on every run. Max pooling stores no argmax: a thread
// takes a window's dy when its own value equals the window's output y and no earlier tap of the
// window (row-major) does; that rereads up to k*k - 1 taps per covering window, which is cheap at
// the pooling sizes of the presets (k <= 3) and costs no index buffer or extra launch.
//
// The tangent of max pooling (maxpool2d_jvp) is a forward-shaped kernel: each output takes the
// tangent of its window's first tap that holds the output value, the rule backward routes by.
//
// Not fused with anything: pooling is a separate layer, and its neighbours (conv + activation)
// already carry their own epilogues. NaN: max pooling propagates it (as PyTorch) and routes the
// gradient to the window's first NaN. Limits: tensors of fewer than 2^63 elements; PoolDims as
// PoolDims::make validates them (pad <= k / 2, so every window holds a pixel).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__device__ __forceinline__ bool same_value(float a, float b) {
  return a == b || (a != a && b != b);
}

// The windows along one axis that cover pixel i: [first, last] (empty when first > last).
__device__ __forceinline__ void covering(int i, int k, int stride, int pad, int out, int& first, int& last) {
  const int hi = i + pad;
  first = hi - k + 1 <= 0 ? 0 : (hi - k + 1 + stride - 1) / stride;
  last = min(out - 1, hi / stride);
}

// The window of output element i (n, p, q, c): its valid taps [r0, r1) x [s0, s1) and the
// offset of tap (r, s).
struct OutputWindow {
  int64_t base, row_stride;  // x[n, h0, w0, c]: h0, w0 may lie in the padding (only valid taps are read)
  int c_stride;
  int r0, r1, s0, s1;
  __device__ __forceinline__ int64_t tap(int r, int s) const {
    return base + r * row_stride + int64_t(s) * c_stride;
  }
};

__device__ __forceinline__ OutputWindow output_window(const PoolDims& d, int64_t i) {
  const NhwcIndex at = nhwc_index(i, d.p, d.q, d.c);
  const int n = at.n, p = at.h, q = at.w, c = at.c;
  const int h0 = p * d.stride - d.pad, w0 = q * d.stride - d.pad;
  return OutputWindow{((int64_t(n) * d.h + h0) * d.w + w0) * d.c + c,
                      int64_t(d.w) * d.c,
                      d.c,
                      max(0, -h0),
                      min(d.k, d.h - h0),
                      max(0, -w0),
                      min(d.k, d.w - w0)};
}

__global__ void maxpool_forward_kernel(PoolDims d, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t total = int64_t(d.n) * d.p * d.q * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const OutputWindow win = output_window(d, i);
    float best = 0.0f;
    bool first = true;
    for (int r = win.r0; r < win.r1; ++r)
      for (int s = win.s0; s < win.s1; ++s) {
        const float v = x[win.tap(r, s)];
        if (first || v > best || v != v) best = v;  // first max wins; a NaN, once there, stays
        if (first) first = false;
      }
    y[i] = best;
  }
}

// ty at each output = tx at the first tap (row-major) that holds the output: where backward
// routes dy. One thread per output element, as the forward.
__global__ void maxpool_jvp_kernel(PoolDims d, const float* __restrict__ x, const float* __restrict__ y,
                                   const float* __restrict__ tx, float* __restrict__ ty) {
  const int64_t total = int64_t(d.n) * d.p * d.q * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const OutputWindow win = output_window(d, i);
    const float yo = y[i];
    float t = 0.0f;
    bool found = false;
    for (int r = win.r0; r < win.r1 && !found; ++r)
      for (int s = win.s0; s < win.s1; ++s) {
        const int64_t j = win.tap(r, s);
        if (same_value(x[j], yo)) {
          t = tx[j];
          found = true;
          break;
        }
      }
    ty[i] = t;
  }
}

__global__ void maxpool_backward_kernel(PoolDims d, const float* __restrict__ x, const float* __restrict__ y,
                                        const float* __restrict__ dy, float* dx, bool accumulate) {
  const int64_t total = int64_t(d.n) * d.h * d.w * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const NhwcIndex at = nhwc_index(i, d.h, d.w, d.c);
    const int n = at.n, h = at.h, w = at.w, c = at.c;
    const float self = x[i];
    int p_first, p_last, q_first, q_last;
    covering(h, d.k, d.stride, d.pad, d.p, p_first, p_last);
    covering(w, d.k, d.stride, d.pad, d.q, q_first, q_last);
    float acc = accumulate ? dx[i] : 0.0f;
    for (int p = p_first; p <= p_last; ++p) {
      const int h0 = p * d.stride - d.pad;
      const int r0 = max(0, -h0);
      for (int q = q_first; q <= q_last; ++q) {
        const int w0 = q * d.stride - d.pad;
        const int s0 = max(0, -w0), s1 = min(d.k, d.w - w0);
        const int64_t o = ((int64_t(n) * d.p + p) * d.q + q) * d.c + c;
        const float yo = y[o];
        if (!same_value(self, yo)) continue;
        // Does a tap before (h, w), in row-major order, hold the maximum too?
        bool earlier = false;
        for (int hh = h0 + r0; hh <= h && !earlier; ++hh)
          for (int s = s0; s < s1; ++s) {
            const int ww = w0 + s;
            if (hh == h && ww >= w) break;
            if (same_value(x[((int64_t(n) * d.h + hh) * d.w + ww) * d.c + c], yo)) {
              earlier = true;
              break;
            }
          }
        if (!earlier) acc += dy[o];
      }
    }
    dx[i] = acc;
  }
}

// The divisor of an average pooling window with valid taps [r0, r1) x [s0, s1): k * k when the
// padding counts (count_include_pad), else the taps inside the image (as the CPU).
__device__ __forceinline__ int avg_divisor(const PoolDims& d, int r0, int r1, int s0, int s1) {
  return d.include_pad ? d.k * d.k : (r1 - r0) * (s1 - s0);
}

__global__ void avgpool_forward_kernel(PoolDims d, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t total = int64_t(d.n) * d.p * d.q * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const OutputWindow win = output_window(d, i);
    const float area = float(avg_divisor(d, win.r0, win.r1, win.s0, win.s1));
    float sum = 0.0f;
    for (int r = win.r0; r < win.r1; ++r)
      for (int s = win.s0; s < win.s1; ++s) sum += x[win.tap(r, s)];
    y[i] = sum / area;
  }
}

__global__ void avgpool_backward_kernel(PoolDims d, const float* __restrict__ dy, float* dx,
                                        bool accumulate) {
  const int64_t total = int64_t(d.n) * d.h * d.w * d.c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const NhwcIndex at = nhwc_index(i, d.h, d.w, d.c);
    const int n = at.n, h = at.h, w = at.w, c = at.c;
    int p_first, p_last, q_first, q_last;
    covering(h, d.k, d.stride, d.pad, d.p, p_first, p_last);
    covering(w, d.k, d.stride, d.pad, d.q, q_first, q_last);
    float acc = accumulate ? dx[i] : 0.0f;
    for (int p = p_first; p <= p_last; ++p) {
      const int h0 = p * d.stride - d.pad;
      const int r0 = max(0, -h0), r1 = min(d.k, d.h - h0);
      for (int q = q_first; q <= q_last; ++q) {
        const int w0 = q * d.stride - d.pad;
        const float area = float(avg_divisor(d, r0, r1, max(0, -w0), min(d.k, d.w - w0)));
        acc += dy[((int64_t(n) * d.p + p) * d.q + q) * d.c + c] / area;
      }
    }
    dx[i] = acc;
  }
}

void check_dims(const PoolDims& d, const char* what) {
  GANCU_CHECK(d.k >= 1 && d.stride >= 1 && d.pad >= 0 && d.p >= 1 && d.q >= 1 && 2 * d.pad <= d.k, what,
              ": bad PoolDims");
}

int64_t in_elems(const PoolDims& d) {
  return int64_t(d.n) * d.h * d.w * d.c;
}
int64_t out_elems(const PoolDims& d) {
  return int64_t(d.n) * d.p * d.q * d.c;
}

}  // namespace

template <class T>
void maxpool2d_forward(const Exec& ex, const PoolDims& d, const T* x, T* y) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "maxpool2d_forward");
  const int64_t total = out_elems(d);
  if (total <= 0) return;
  CudaContext& ctx = context(ex);
  maxpool_forward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, x, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void maxpool2d_backward(const Exec& ex, const PoolDims& d, const T* x, const T* y, const T* dy, T* dx,
                        bool accumulate_dx) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "maxpool2d_backward");
  const int64_t total = in_elems(d);
  if (dx == nullptr || total <= 0) return;
  CudaContext& ctx = context(ex);
  maxpool_backward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, x, y, dy, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void maxpool2d_jvp(const Exec& ex, const PoolDims& d, const T* x, const T* y, const T* tx, T* ty) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "maxpool2d_jvp");
  const int64_t total = out_elems(d);
  if (total <= 0) return;
  CudaContext& ctx = context(ex);
  maxpool_jvp_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, x, y, tx, ty);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void avgpool2d_forward(const Exec& ex, const PoolDims& d, const T* x, T* y) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "avgpool2d_forward");
  const int64_t total = out_elems(d);
  if (total <= 0) return;
  CudaContext& ctx = context(ex);
  avgpool_forward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, x, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void avgpool2d_backward(const Exec& ex, const PoolDims& d, const T* dy, T* dx, bool accumulate_dx) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "avgpool2d_backward");
  const int64_t total = in_elems(d);
  if (dx == nullptr || total <= 0) return;
  CudaContext& ctx = context(ex);
  avgpool_backward_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, dy, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void maxpool2d_forward<float>(const Exec&, const PoolDims&, const float*, float*);
template void maxpool2d_backward<float>(const Exec&, const PoolDims&, const float*, const float*,
                                        const float*, float*, bool);
template void maxpool2d_jvp<float>(const Exec&, const PoolDims&, const float*, const float*, const float*,
                                   float*);
template void avgpool2d_forward<float>(const Exec&, const PoolDims&, const float*, float*);
template void avgpool2d_backward<float>(const Exec&, const PoolDims&, const float*, float*, bool);

}  // namespace gancu::cuda
