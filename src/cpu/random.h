// Block-wise access to the Philox streams of rng.h. philox_uniform / philox_normal compute a whole
// 4-word block for each element; the ops below walk a range of elements block by block instead
// (4x fewer Philox evaluations) with exactly the same arithmetic, so every element equals the
// scalar function's value bit for bit (tests/cpu_random_test.cpp checks that).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "gancu/rng.h"

namespace gancu::cpu {

// Calls f(i, block) for i in [i0, i1), where block is the Philox block holding element i.
template <class F>
inline void for_each_philox_element(uint64_t seed, uint32_t stream, uint64_t step, int64_t i0, int64_t i1,
                                    F&& f) {
  for (int64_t i = i0; i < i1;) {
    const Philox4 r = philox_block(seed, stream, step, uint32_t(uint64_t(i) >> 2));
    const int64_t end = std::min(i1, (i | 3) + 1);
    for (; i < end; ++i) f(i, r);
  }
}

// philox_uniform's value for element i of its block r.
inline float uniform_from_block(const Philox4& r, int64_t i, float lo, float hi) {
  return lo + (hi - lo) * uniform_open01(r.v[i & 3]);
}

// philox_normal's value for element i of its block r.
inline float normal_from_block(const Philox4& r, int64_t i) {
  const int pair = int(i & 2);
  const float u1 = uniform_open01(r.v[pair]);
  const float u2 = uniform_open01(r.v[pair + 1]);
  const float radius = sqrtf(-2.0f * logf(u1));
  const float angle = 6.2831853071795864769f * u2;
  return (i & 1) ? radius * sinf(angle) : radius * cosf(angle);
}

}  // namespace gancu::cpu
