// Inverted dropout on the CPU. The mask is never stored: element i is kept iff its uniform draw
// of (seed, stream, *step) is >= p, so backward (and the CUDA backend) redraw the same mask.
#include "cpu/activation_math.h"
#include "cpu/random.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// out[i] (+)= keep(i) ? in[i] / (1 - p) : 0
template <class T>
void apply_mask(int64_t n, const T* in, T* out, bool accumulate, float p, uint64_t seed, uint32_t stream,
                uint64_t step) {
  // p >= 1 keeps nothing (the uniform draws are < 1); 1 / (1 - p) would be inf.
  const T scale = p < 1.0f ? T(1) / (T(1) - T(p)) : T(0);
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    for_each_philox_element(seed, stream, step, i0, i1, [&](int64_t i, const Philox4& r) {
      const T v = uniform_from_block(r, i, 0.0f, 1.0f) >= p ? in[i] * scale : T(0);
      out[i] = accumulate ? out[i] + v : v;
    });
  });
}

}  // namespace

template <class T>
void dropout_forward(const Exec&, int64_t n, const T* x, T* y, float p, uint64_t seed, uint32_t stream,
                     const int64_t* step) {
  apply_mask(n, x, y, false, p, seed, stream, uint64_t(*step));
}

template <class T>
void dropout_backward(const Exec&, int64_t n, const T* dy, T* dx, bool accumulate_dx, float p, uint64_t seed,
                      uint32_t stream, const int64_t* step) {
  if (dx) apply_mask(n, dy, dx, accumulate_dx, p, seed, stream, uint64_t(*step));
}

#define GANCU_INSTANTIATE(T)                                                                             \
  template void dropout_forward<T>(const Exec&, int64_t, const T*, T*, float, uint64_t, uint32_t,        \
                                   const int64_t*);                                                      \
  template void dropout_backward<T>(const Exec&, int64_t, const T*, T*, bool, float, uint64_t, uint32_t, \
                                    const int64_t*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
