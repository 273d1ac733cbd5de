#include "cpu/im2col.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"

namespace gancu::cpu {

const TapTable& cached_tap_table(int size, int taps, int outs, int stride, int pad) {
  thread_local std::map<std::array<int, 5>, TapTable> cache;
  const std::array<int, 5> key{size, taps, outs, stride, pad};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, TapTable(size, taps, outs, stride, pad)).first;
  return it->second;
}

template <class T>
void im2col(const ConvDims& d, int nb, const T* img, T* col) {
  const int64_t C = d.c, SC = int64_t(d.s) * C, RSC = d.r * SC;
  const int64_t rows = int64_t(nb) * d.p;
#pragma omp parallel for schedule(static) if (rows * d.q * RSC > kParallelMinWork)
  for (int64_t np = 0; np < rows; ++np) {
    const int64_t n = np / d.p;
    const int p = int(np % d.p);
    const T* image = img + n * d.h * d.w * C;
    T* dst_row = col + np * d.q * RSC;
    for (int q = 0; q < d.q; ++q) {
      const int w0 = q * d.stride - d.pad_w;
      const int s_lo = std::max(0, -w0), s_hi = std::min(d.s, d.w - w0);
      for (int r = 0; r < d.r; ++r) {
        T* dst = dst_row + int64_t(q) * RSC + r * SC;
        const int h = p * d.stride - d.pad_h + r;
        if (h < 0 || h >= d.h || s_hi <= s_lo) {
          std::fill(dst, dst + SC, T(0));
          continue;
        }
        const T* src = image + (int64_t(h) * d.w + w0 + s_lo) * C;
        const int64_t lo = s_lo * C, hi = s_hi * C;
        if (SC <= 16) {  // a few values (grayscale input): calls to memcpy/memset would dominate
          for (int64_t j = 0; j < SC; ++j) dst[j] = (j >= lo && j < hi) ? src[j - lo] : T(0);
          continue;
        }
        std::fill(dst, dst + lo, T(0));
        std::memcpy(dst + lo, src, sizeof(T) * (hi - lo));
        std::fill(dst + hi, dst + SC, T(0));
      }
    }
  }
}

// One image row of col2im. CC > 0 fixes the channel count at compile time, so that the sum of a
// pixel's taps stays in registers (with a run-time count of 1, each tap's add would wait for the
// previous one's store).
template <int CC, class T>
void col2im_row(const ConvDims& d, const TapTable& by_row, const TapTable& by_col, int h, const T* col_n,
                T* out_row, bool accumulate) {
  const int64_t C = CC > 0 ? CC : d.c, RSC = int64_t(d.r) * d.s * C;
  const int r0 = by_row.first[size_t(h)], nr = by_row.count[size_t(h)];
  for (int w = 0; w < d.w; ++w) {
    T* out = out_row + int64_t(w) * C;
    const int s0 = by_col.first[size_t(w)], ns = by_col.count[size_t(w)];
    if constexpr (CC > 0) {
      T acc[CC];
      for (int c = 0; c < CC; ++c) acc[c] = accumulate ? out[c] : T(0);
      for (int i = r0; i < r0 + nr; ++i)
        for (int j = s0; j < s0 + ns; ++j) {
          const T* src = col_n + (int64_t(by_row.out[size_t(i)]) * d.q + by_col.out[size_t(j)]) * RSC +
                         (int64_t(by_row.tap[size_t(i)]) * d.s + by_col.tap[size_t(j)]) * C;
          for (int c = 0; c < CC; ++c) acc[c] += src[c];
        }
      for (int c = 0; c < CC; ++c) out[c] = acc[c];
    } else {
      if (!accumulate) std::fill(out, out + C, T(0));
      for (int i = r0; i < r0 + nr; ++i)
        for (int j = s0; j < s0 + ns; ++j) {
          const T* src = col_n + (int64_t(by_row.out[size_t(i)]) * d.q + by_col.out[size_t(j)]) * RSC +
                         (int64_t(by_row.tap[size_t(i)]) * d.s + by_col.tap[size_t(j)]) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) out[c] += src[c];
        }
    }
  }
}

template <class T>
void col2im(const ConvDims& d, int nb, const T* col, T* img, bool accumulate, const T* bias, Activation act) {
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C;
  const int64_t rows = int64_t(nb) * d.h;
  const TapTable& by_row = cached_tap_table(d.h, d.r, d.p, d.stride, d.pad_h);
  const TapTable& by_col = cached_tap_table(d.w, d.s, d.q, d.stride, d.pad_w);
#pragma omp parallel for schedule(static) if (int64_t(nb) * d.p * d.q * RSC > kParallelMinWork)
  for (int64_t nh = 0; nh < rows; ++nh) {
    const int64_t n = nh / d.h;
    const int h = int(nh % d.h);
    T* out_row = img + nh * d.w * C;
    const T* col_n = col + n * d.p * d.q * RSC;
    switch (d.c) {
      case 1:
        col2im_row<1>(d, by_row, by_col, h, col_n, out_row, accumulate);
        break;
      case 3:
        col2im_row<3>(d, by_row, by_col, h, col_n, out_row, accumulate);
        break;
      default:
        col2im_row<0>(d, by_row, by_col, h, col_n, out_row, accumulate);
        break;
    }
    bias_act_rows<T>(d.w, C, out_row, bias, act);
  }
}

template void im2col<float>(const ConvDims&, int, const float*, float*);
template void im2col<double>(const ConvDims&, int, const double*, double*);
template void col2im<float>(const ConvDims&, int, const float*, float*, bool, const float*, Activation);
template void col2im<double>(const ConvDims&, int, const double*, double*, bool, const double*, Activation);

}  // namespace gancu::cpu
