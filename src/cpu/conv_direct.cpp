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

// Sums of 4 dot products sharing one filter: x0..x3 are 4 output pixels' windows. Four
// independent accumulator chains: a single dot product is bound by the latency of its one chain
// of fused multiply-adds, not by loads or arithmetic.
template <class T>
inline void dot4(int64_t len, const T* w, const T* x0, const T* x1, const T* x2, const T* x3, T* acc) {
  T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
  for (int64_t j = 0; j < len; ++j) {
    a0 += x0[j] * w[j];
    a1 += x1[j] * w[j];
    a2 += x2[j] * w[j];
    a3 += x3[j] * w[j];
  }
  acc[0] += a0;
  acc[1] += a1;
  acc[2] += a2;
  acc[3] += a3;
}

template <class T>
void conv_direct_forward(const ConvDims& d, const T* img, const T* w, T* pix, bool accumulate) {
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C;
  const int64_t rows = int64_t(d.n) * d.p;
  const int64_t xstep = int64_t(d.stride) * C;  // between the windows of neighbouring pixels
#pragma omp parallel for schedule(static)
  for (int64_t np = 0; np < rows; ++np) {
    const int64_t n = np / d.p;
    const int p = int(np % d.p);
    const T* image = img + n * d.h * d.w * C;
    T* out_row = pix + np * d.q * d.k;
    for (int q = 0; q < d.q;) {
      // Four pixels at once where all their taps are inside the image row.
      if (q + 3 < d.q && TapRange(d, q).lo == 0 && TapRange(d, q + 3).hi == d.s) {
        const int w0 = q * d.stride - d.pad;
        for (int k = 0; k < d.k; ++k) {
          T acc[4] = {0, 0, 0, 0};
          for (int r = 0; r < d.r; ++r) {
            const int h = p * d.stride - d.pad + r;
            if (h < 0 || h >= d.h) continue;
            const T* xs = image + (int64_t(h) * d.w + w0) * C;
            dot4(int64_t(d.s) * C, w + k * RSC + int64_t(r) * d.s * C, xs, xs + xstep, xs + 2 * xstep,
                 xs + 3 * xstep, acc);
          }
          for (int i = 0; i < 4; ++i) {
            T& o = out_row[int64_t(q + i) * d.k + k];
            o = accumulate ? o + acc[i] : acc[i];
          }
        }
        q += 4;
        continue;
      }
      const TapRange t(d, q);
      const int64_t len = t.len(C);
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
        T& o = out_row[int64_t(q) * d.k + k];
        o = accumulate ? o + acc : acc;
      }
      ++q;
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
