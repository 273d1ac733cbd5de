#include "cpu/conv_direct.h"

#include <algorithm>

#include "cpu/parallel.h"

namespace gancu::cpu {
namespace {

// The taps of output column q that fall inside the image: s in [lo, hi), starting at image
// column w0 + lo.
struct TapRange {
  int w0, lo, hi;
  TapRange(const ConvDims& d, int q)
      : w0(q * d.stride - d.pad), lo(std::max(0, -w0)), hi(std::min(d.s, d.w - w0)) {}
  int64_t len(int64_t c) const { return hi > lo ? (hi - lo) * c : 0; }
};

}  // namespace

template <class T>
void conv_direct_forward(const ConvDims& d, const T* img, const T* w, T* pix, bool accumulate) {
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C;
  const int64_t rows = int64_t(d.n) * d.p;
#pragma omp parallel for schedule(static)
  for (int64_t np = 0; np < rows; ++np) {
    const int64_t n = np / d.p;
    const int p = int(np % d.p);
    const T* image = img + n * d.h * d.w * C;
    for (int q = 0; q < d.q; ++q) {
      const TapRange t(d, q);
      const int64_t len = t.len(C);
      T* out = pix + (np * d.q + q) * d.k;
      for (int k = 0; k < d.k; ++k) {
        T acc = 0;
        for (int r = 0; r < d.r; ++r) {
          const int h = p * d.stride - d.pad + r;
          if (h < 0 || h >= d.h) continue;
          const T* xs = image + (int64_t(h) * d.w + t.w0 + t.lo) * C;
          const T* ws = w + k * RSC + (int64_t(r) * d.s + t.lo) * C;
#pragma omp simd reduction(+ : acc)
          for (int64_t j = 0; j < len; ++j) acc += xs[j] * ws[j];
        }
        out[k] = accumulate ? out[k] + acc : acc;
      }
    }
  }
}

template <class T>
void conv_direct_adjoint(const ConvDims& d, const T* pix, const T* w, T* img, bool accumulate) {
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C, HWC = int64_t(d.h) * d.w * C;
  // One image per iteration: taps of neighbouring pixels overlap, images do not.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < d.n; ++n) {
    T* image = img + n * HWC;
    if (!accumulate) std::fill(image, image + HWC, T(0));
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q) {
        const TapRange t(d, q);
        const int64_t len = t.len(C);
        const T* g = pix + ((n * d.p + p) * d.q + q) * d.k;
        for (int r = 0; r < d.r; ++r) {
          const int h = p * d.stride - d.pad + r;
          if (h < 0 || h >= d.h) continue;
          T* xs = image + (int64_t(h) * d.w + t.w0 + t.lo) * C;
          for (int k = 0; k < d.k; ++k) {
            const T gk = g[k];
            const T* ws = w + k * RSC + (int64_t(r) * d.s + t.lo) * C;
#pragma omp simd
            for (int64_t j = 0; j < len; ++j) xs[j] += gk * ws[j];
          }
        }
      }
  }
}

template <class T>
void conv_direct_weight_grad(const ConvDims& d, const T* img, const T* pix, T* dw) {
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C, KRSC = d.k * RSC;
  const int64_t rows = int64_t(d.n) * d.p;
  double* sums = host_scratch<double>(size_t(KRSC), 2);
  // Per-part accumulators in T: each part sums only rows/parts rows, and the parts are added
  // in double.
  reduce_rows<T>(rows, int64_t(d.q) * KRSC, KRSC, sums, [&](int64_t r0, int64_t r1, T* acc) {
    for (int64_t np = r0; np < r1; ++np) {
      const int64_t n = np / d.p;
      const int p = int(np % d.p);
      const T* image = img + n * d.h * d.w * C;
      for (int q = 0; q < d.q; ++q) {
        const TapRange t(d, q);
        const int64_t len = t.len(C);
        const T* g = pix + (np * d.q + q) * d.k;
        for (int r = 0; r < d.r; ++r) {
          const int h = p * d.stride - d.pad + r;
          if (h < 0 || h >= d.h) continue;
          const T* xs = image + (int64_t(h) * d.w + t.w0 + t.lo) * C;
          for (int k = 0; k < d.k; ++k) {
            const T gk = g[k];
            T* a = acc + k * RSC + (int64_t(r) * d.s + t.lo) * C;
#pragma omp simd
            for (int64_t j = 0; j < len; ++j) a[j] += gk * xs[j];
          }
        }
      }
    }
  });
  for (int64_t i = 0; i < KRSC; ++i) dw[i] += T(sums[i]);
}

#define GANCU_INSTANTIATE(T)                                                           \
  template void conv_direct_forward<T>(const ConvDims&, const T*, const T*, T*, bool); \
  template void conv_direct_adjoint<T>(const ConvDims&, const T*, const T*, T*, bool); \
  template void conv_direct_weight_grad<T>(const ConvDims&, const T*, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
