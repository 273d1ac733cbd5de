// The inverse-CDF lookup of D pre-training's histogram fakes (ops.h, histogram_pixels), one
// function for the CPU twin and the CUDA kernel, so that both pick the same bin for every u.
#pragma once

#include "gancu/rng.h"  // GANCU_HD

namespace gancu {

// The smallest b in [0, 255] with u < cdf[b] (cdf: 256 non-decreasing values, cdf[255] = 1 > u),
// by binary search.
GANCU_HD int cdf_bin(float u, const float* cdf) {
  int lo = 0, hi = 255;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (u < cdf[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

}  // namespace gancu
