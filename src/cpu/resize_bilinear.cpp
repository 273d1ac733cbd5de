// Bilinear resizing on the CPU, NHWC (ops.h, resize_bilinear_forward; the taps and weights come
// from gancu/bilinear_taps.h, shared with the CUDA kernels). Not the data pipeline's antialiased
// uint8 resize (src/data/resize.cpp).
//
// Forward: per output row (n, oy), each output pixel mixes its 2 x 2 source pixels, channels
// innermost (contiguous in NHWC). Backward is a gather over input pixels, as the CUDA kernel: each
// input pixel sums weight * dy over the output pixels that read it, rows then columns in
// increasing order, so the result does not depend on the thread count and needs no atomics.
#include <algorithm>

#include "cpu/parallel.h"
#include "gancu/bilinear_taps.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void resize_bilinear_forward(const Exec&, const ResizeDims& d, const T* x, T* y) {
  check_resize_dims(d, "resize_bilinear_forward");
  const int64_t C = d.c, rows = int64_t(d.n) * d.out_h;
#pragma omp parallel for schedule(static) if (d.y_elems() * 4 > kParallelMinWork)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / d.out_h;
    const BilinearTap<T> th = bilinear_tap<T>(int(row % d.out_h), d.h, d.out_h);
    const T* top = x + (n * d.h + th.i0) * d.w * C;
    const T* bottom = x + (n * d.h + th.i1) * d.w * C;
    T* out = y + row * d.out_w * C;
    for (int ox = 0; ox < d.out_w; ++ox) {
      const BilinearTap<T> tw = bilinear_tap<T>(ox, d.w, d.out_w);
      const T *a = top + tw.i0 * C, *b = top + tw.i1 * C, *c = bottom + tw.i0 * C, *e = bottom + tw.i1 * C;
      T* o = out + ox * C;
#pragma omp simd
      for (int64_t k = 0; k < C; ++k)
        o[k] = th.l0 * (tw.l0 * a[k] + tw.l1 * b[k]) + th.l1 * (tw.l0 * c[k] + tw.l1 * e[k]);
    }
  }
}

template <class T>
void resize_bilinear_backward(const Exec&, const ResizeDims& d, const T* dy, T* dx, bool accumulate_dx) {
  check_resize_dims(d, "resize_bilinear_backward");
  if (!dx) return;
  const int64_t C = d.c, rows = int64_t(d.n) * d.h;
#pragma omp parallel for schedule(static) if (d.y_elems() * 4 > kParallelMinWork)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / d.h;
    const int iy = int(row % d.h);
    int oy_first, oy_last;
    bilinear_covering(iy, d.h, d.out_h, oy_first, oy_last);
    for (int ix = 0; ix < d.w; ++ix) {
      int ox_first, ox_last;
      bilinear_covering(ix, d.w, d.out_w, ox_first, ox_last);
      T* g = dx + (row * d.w + ix) * C;
      if (!accumulate_dx) std::fill(g, g + C, T(0));
      for (int oy = oy_first; oy <= oy_last; ++oy) {
        const T wh = bilinear_weight(bilinear_tap<T>(oy, d.h, d.out_h), iy);
        if (wh == T(0)) continue;
        for (int ox = ox_first; ox <= ox_last; ++ox) {
          const T ww = bilinear_weight(bilinear_tap<T>(ox, d.w, d.out_w), ix);
          if (ww == T(0)) continue;
          const T weight = wh * ww;
          const T* src = dy + ((n * d.out_h + oy) * d.out_w + ox) * C;
#pragma omp simd
          for (int64_t k = 0; k < C; ++k) g[k] += weight * src[k];
        }
      }
    }
  }
}

#define GANCU_INSTANTIATE(T)                                                              \
  template void resize_bilinear_forward<T>(const Exec&, const ResizeDims&, const T*, T*); \
  template void resize_bilinear_backward<T>(const Exec&, const ResizeDims&, const T*, T*, bool);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
