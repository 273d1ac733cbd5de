// Block-wise access to the Philox streams of rng.h. philox_uniform / philox_normal compute a whole
// 4-word block for each element; the ops walk a range of elements block by block instead (4x
// fewer Philox evaluations) through rng.h's uniform_from_block / normal_from_block, the same
// arithmetic, so every element equals the scalar function's value bit for bit
// (tests/cpu_random_test.cpp checks that).
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

}  // namespace gancu::cpu
