#include "cpu/im2col.h"

#include <algorithm>
#include <cstring>

#include "cpu/activation_math.h"

namespace gancu::cpu {

template <class T>
void im2col(const ConvDims& d, int nb, const T* img, T* col) {
  const int64_t C = d.c, SC = int64_t(d.s) * C, RSC = d.r * SC;
  const int64_t rows = int64_t(nb) * d.p;
#pragma omp parallel for schedule(static)
  for (int64_t np = 0; np < rows; ++np) {
    const int64_t n = np / d.p;
    const int p = int(np % d.p);
    const T* image = img + n * d.h * d.w * C;
    T* dst_row = col + np * d.q * RSC;
    for (int q = 0; q < d.q; ++q) {
      const int w0 = q * d.stride - d.pad;
      const int s_lo = std::max(0, -w0), s_hi = std::min(d.s, d.w - w0);
      for (int r = 0; r < d.r; ++r) {
        T* dst = dst_row + int64_t(q) * RSC + r * SC;
        const int h = p * d.stride - d.pad + r;
        if (h < 0 || h >= d.h || s_hi <= s_lo) {
          std::fill(dst, dst + SC, T(0));
          continue;
        }
        std::fill(dst, dst + s_lo * C, T(0));
        std::memcpy(dst + s_lo * C, image + (int64_t(h) * d.w + w0 + s_lo) * C,
                    sizeof(T) * (s_hi - s_lo) * C);
        std::fill(dst + s_hi * C, dst + SC, T(0));
      }
    }
  }
}

template <class T>
void col2im(const ConvDims& d, int nb, const T* col, T* img, bool accumulate, const T* bias, Activation act) {
  const int64_t C = d.c, RSC = int64_t(d.r) * d.s * C;
  const int64_t rows = int64_t(nb) * d.h;
  const int st = d.stride;
#pragma omp parallel for schedule(static)
  for (int64_t nh = 0; nh < rows; ++nh) {
    const int64_t n = nh / d.h;
    const int h = int(nh % d.h);
    T* out_row = img + nh * d.w * C;
    const T* col_n = col + n * d.p * d.q * RSC;
    // Filter rows r that reach image row h: h = p*st - pad + r, so r = (h + pad) mod st, +st, ...
    const int r_first = (h + d.pad) % st;
    for (int w = 0; w < d.w; ++w) {
      T* out = out_row + int64_t(w) * C;
      if (!accumulate) std::fill(out, out + C, T(0));
      const int s_first = (w + d.pad) % st;
      for (int r = r_first; r < d.r; r += st) {
        const int p = (h + d.pad - r) / st;
        if (p < 0 || p >= d.p) continue;
        for (int s = s_first; s < d.s; s += st) {
          const int q = (w + d.pad - s) / st;
          if (q < 0 || q >= d.q) continue;
          const T* src = col_n + (int64_t(p) * d.q + q) * RSC + (int64_t(r) * d.s + s) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) out[c] += src[c];
        }
      }
    }
    bias_act_rows<T>(d.w, C, out_row, bias, act);
  }
}

template void im2col<float>(const ConvDims&, int, const float*, float*);
template void im2col<double>(const ConvDims&, int, const double*, double*);
template void col2im<float>(const ConvDims&, int, const float*, float*, bool, const float*, Activation);
template void col2im<double>(const ConvDims&, int, const double*, double*, bool, const double*, Activation);

}  // namespace gancu::cpu
