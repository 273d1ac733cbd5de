#include "cpu/conv_direct.h"

#include <algorithm>
#include <cstring>

#include "cpu/im2col.h"
#include "cpu/parallel.h"

namespace gancu::cpu {
namespace {

// The taps of output column q that fall inside the image: s in [lo, hi), starting at image
// column w0 + lo.
struct TapRange {
  int w0, lo, hi;
  TapRange(const ConvDims& d, int q)
      : w0(q * d.stride - d.pad_w), lo(std::max(0, -w0)), hi(std::min(d.s, d.w - w0)) {}
  int64_t len(int64_t c) const { return hi > lo ? (hi - lo) * c : 0; }
};

// 16 values as one GCC vector, so that a pixel's running sum stays in registers.
template <class T>
struct Vec16;
template <>
struct Vec16<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct Vec16<double> {
  typedef double type __attribute__((vector_size(128)));
};
template <class T>
using V16 = typename Vec16<T>::type;

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
#pragma omp parallel for schedule(static) if (d.y_elems() * RSC > kParallelMinWork)
  for (int64_t np = 0; np < rows; ++np) {
    const int64_t n = np / d.p;
    const int p = int(np % d.p);
    const T* image = img + n * d.h * d.w * C;
    T* out_row = pix + np * d.q * d.k;
    for (int q = 0; q < d.q;) {
      // Four pixels at once where all their taps are inside the image row.
      if (q + 3 < d.q && TapRange(d, q).lo == 0 && TapRange(d, q + 3).hi == d.s) {
        const int w0 = q * d.stride - d.pad_w;
        for (int k = 0; k < d.k; ++k) {
          T acc[4] = {0, 0, 0, 0};
          for (int r = 0; r < d.r; ++r) {
            const int h = p * d.stride - d.pad_h + r;
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
          const int h = p * d.stride - d.pad_h + r;
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

// The adjoint as a gather for c = 16 NB: each image pixel sums its taps in NB vector registers
// and is stored once (the scatter loads and stores the image for every tap).
template <int NB, class T>
void adjoint_gather(const ConvDims& d, const T* pix, const T* w, T* img, bool accumulate) {
  constexpr int64_t C = 16 * NB;
  const int64_t RSC = int64_t(d.r) * d.s * C;
  const TapTable& by_row = cached_tap_table(d.h, d.r, d.p, d.stride, d.pad_h);
  const TapTable& by_col = cached_tap_table(d.w, d.s, d.q, d.stride, d.pad_w);
  const int64_t rows = int64_t(d.n) * d.h;
#pragma omp parallel for schedule(static) if (d.y_elems() * RSC > kParallelMinWork)
  for (int64_t nh = 0; nh < rows; ++nh) {
    const int64_t n = nh / d.h;
    const int h = int(nh % d.h);
    const T* pix_n = pix + n * d.p * d.q * d.k;
    const int r0 = by_row.first[size_t(h)], nr = by_row.count[size_t(h)];
    for (int x = 0; x < d.w; ++x) {
      T* out = img + (nh * d.w + x) * C;
      const int s0 = by_col.first[size_t(x)], ns = by_col.count[size_t(x)];
      V16<T> acc[NB];
      for (int b = 0; b < NB; ++b) {
        acc[b] = V16<T>{};
        if (accumulate) std::memcpy(&acc[b], out + 16 * b, sizeof(acc[b]));
      }
      for (int i = r0; i < r0 + nr; ++i)
        for (int j = s0; j < s0 + ns; ++j) {
          const T* g = pix_n + (int64_t(by_row.out[size_t(i)]) * d.q + by_col.out[size_t(j)]) * d.k;
          const T* wt = w + (int64_t(by_row.tap[size_t(i)]) * d.s + by_col.tap[size_t(j)]) * C;
          for (int k = 0; k < d.k; ++k) {
            const T gk = g[k];
            const T* wk = wt + k * RSC;
            for (int b = 0; b < NB; ++b) {
              V16<T> wv;
              std::memcpy(&wv, wk + 16 * b, sizeof(wv));
              acc[b] += gk * wv;
            }
          }
        }
      for (int b = 0; b < NB; ++b) std::memcpy(out + 16 * b, &acc[b], sizeof(acc[b]));
    }
  }
}

template <class T>
void conv_direct_adjoint(const ConvDims& d, const T* pix, const T* w, T* img, bool accumulate) {
  switch (d.c) {  // the gather for the channel counts it is compiled for
    case 16:
      return adjoint_gather<1>(d, pix, w, img, accumulate);
    case 32:
      return adjoint_gather<2>(d, pix, w, img, accumulate);
    case 64:
      return adjoint_gather<4>(d, pix, w, img, accumulate);
    case 128:
      return adjoint_gather<8>(d, pix, w, img, accumulate);
    default:
      break;
  }
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C, HWC = int64_t(d.h) * d.w * C;
  // Scatter, one image per iteration: taps of neighbouring pixels overlap, images do not.
#pragma omp parallel for schedule(static) if (d.y_elems() * RSC > kParallelMinWork)
  for (int64_t n = 0; n < d.n; ++n) {
    T* image = img + n * HWC;
    if (!accumulate) std::fill(image, image + HWC, T(0));
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q) {
        const TapRange t(d, q);
        const int64_t len = t.len(C);
        const T* g = pix + ((n * d.p + p) * d.q + q) * d.k;
        for (int r = 0; r < d.r; ++r) {
          const int h = p * d.stride - d.pad_h + r;
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
  const int64_t xstep = int64_t(d.stride) * C;
  double* sums = host_scratch<double>(size_t(KRSC), 2);
  // Per-part accumulators in T: each part sums only rows/parts rows, and the parts are added
  // in double.
  reduce_rows<T>(rows, int64_t(d.q) * KRSC, KRSC, sums, [&](int64_t r0, int64_t r1, T* acc) {
    for (int64_t np = r0; np < r1; ++np) {
      const int64_t n = np / d.p;
      const int p = int(np % d.p);
      const T* image = img + n * d.h * d.w * C;
      for (int q = 0; q < d.q;) {
        // Four pixels whose taps are all inside the row update the accumulator in one pass
        // (one load and store of it per four multiply-adds).
        const bool four = q + 3 < d.q && TapRange(d, q).lo == 0 && TapRange(d, q + 3).hi == d.s;
        const int n_px = four ? 4 : 1;
        const TapRange t(d, q);
        const int64_t len = four ? int64_t(d.s) * C : t.len(C);
        const T* g = pix + (np * d.q + q) * d.k;
        for (int r = 0; r < d.r; ++r) {
          const int h = p * d.stride - d.pad_h + r;
          if (h < 0 || h >= d.h) continue;
          const T* xs = image + (int64_t(h) * d.w + t.w0 + t.lo) * C;
          for (int k = 0; k < d.k; ++k) {
            T* a = acc + k * RSC + (int64_t(r) * d.s + t.lo) * C;
            if (four) {
              const T g0 = g[k], g1 = g[d.k + k], g2 = g[2 * d.k + k], g3 = g[3 * d.k + k];
              const T *x0 = xs, *x1 = xs + xstep, *x2 = xs + 2 * xstep, *x3 = xs + 3 * xstep;
#pragma omp simd
              for (int64_t j = 0; j < len; ++j) a[j] += g0 * x0[j] + g1 * x1[j] + g2 * x2[j] + g3 * x3[j];
            } else {
              const T gk = g[k];
#pragma omp simd
              for (int64_t j = 0; j < len; ++j) a[j] += gk * xs[j];
            }
          }
        }
        q += n_px;
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
