// The centres of the 2-d Gaussian mixtures (Mixture2D in op_types.h), for the sampling op on both
// backends and for the metrics that count which modes a generator covers.
#pragma once

#include "gancu/op_types.h"
#include "gancu/rng.h"

namespace gancu {

GANCU_HD void mixture_center(const Mixture2D& m, int mode, float* cx, float* cy) {
  if (m.grid) {
    int side = 1;
    while (side * side < m.modes) ++side;
    const float offset = 0.5f * float(side - 1);
    *cx = (float(mode % side) - offset) * m.scale;
    *cy = (float(mode / side) - offset) * m.scale;
  } else {
    const float angle = 6.2831853071795864769f * float(mode) / float(m.modes);
    *cx = m.scale * cosf(angle);
    *cy = m.scale * sinf(angle);
  }
}

// Point i of the sample of step `step`: block i of the Philox stream gives the mode (word 0) and
// the two normals (words 2, 3 through Box-Muller), so each point costs one block.
GANCU_HD void mixture_point(const Mixture2D& m, uint64_t step, uint64_t i, float* x, float* y) {
  const Philox4 r = philox_block(m.seed, kStreamMixture, step, uint32_t(i));
  const int mode = int(r.v[0] % uint32_t(m.modes));
  float cx, cy;
  mixture_center(m, mode, &cx, &cy);
  *x = cx + m.std * normal_from_block(r, 2);
  *y = cy + m.std * normal_from_block(r, 3);
}

}  // namespace gancu
