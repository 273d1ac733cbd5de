// The source taps of bilinear resizing along one axis (ops.h, resize_bilinear_forward), one
// function for the CPU twin and the CUDA kernels, so that both read the same pixels with the same
// weights. PyTorch's rule for align_corners=False: output coordinate j of `out` reads source
// coordinate src = (j + 0.5) * in / out - 0.5, clamped below at 0; the taps are i0 = floor(src)
// and i0 + 1 (i0 itself at the last pixel), weighted 1 - frac(src) and frac(src).
#pragma once

#include <cstdint>

#include "gancu/rng.h"  // GANCU_HD

namespace gancu {

template <class T>
struct BilinearTap {
  int i0, i1;  // the two source pixels (equal at the last pixel)
  T l0, l1;    // their weights, l0 + l1 = 1
};

template <class T>
GANCU_HD BilinearTap<T> bilinear_tap(int j, int in, int out) {
  const T scale = T(in) / T(out);
  T src = scale * (T(j) + T(0.5)) - T(0.5);
  if (src < T(0)) src = T(0);
  BilinearTap<T> t;
  t.i0 = int(src);
  if (t.i0 > in - 1) t.i0 = in - 1;  // never reached (src < in - 1/2); a guard against rounding
  t.i1 = t.i0 < in - 1 ? t.i0 + 1 : t.i0;
  t.l1 = src - T(t.i0);
  t.l0 = T(1) - t.l1;
  return t;
}

// The weight with which output coordinate j's taps read source pixel i (0 when they do not).
template <class T>
GANCU_HD T bilinear_weight(const BilinearTap<T>& t, int i) {
  return (t.i0 == i ? t.l0 : T(0)) + (t.i1 == i ? t.l1 : T(0));
}

// A range [first, last] of output coordinates that holds every j whose taps read source pixel i
// (empty when first > last): those with src(j) in [i - 1, i + 1), widened by one on each side
// against rounding. Callers test each j with bilinear_weight. Integer arithmetic, so that host and
// device agree.
GANCU_HD void bilinear_covering(int i, int in, int out, int& first, int& last) {
  // src(j) >= i - 1  <=>  j >= ((2i - 1) out - in) / (2 in);  src(j) < i + 1  <=>  j < ((2i + 3) out - in) /
  // (2 in)
  const int64_t den = 2 * int64_t(in);
  const int64_t lo = (2 * int64_t(i) - 1) * out - in, hi = (2 * int64_t(i) + 3) * out - in;
  const int64_t f = (lo >= 0 ? lo / den : -((-lo + den - 1) / den)) - 1;  // floor, widened
  const int64_t l = (hi >= 0 ? (hi + den - 1) / den : -(-hi / den)) + 1;  // ceil, widened
  first = int(f < 0 ? 0 : f);
  last = int(l > out - 1 ? out - 1 : l);
}

}  // namespace gancu
