// sample_mixture on the CPU: point i of step *step is mixture.h's mixture_point, the one
// definition both backends call, written as out[2i] = x, out[2i + 1] = y.
#include "gancu/mixture.h"

#include "cpu/activation_math.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void sample_mixture(const Exec&, const Mixture2D& mix, int64_t n, const int64_t* step, T* out) {
  if (n <= 0) return;
  GANCU_CHECK(mix.modes >= 1, "sample_mixture: ", mix.modes, " modes");
  GANCU_CHECK(n <= (int64_t(1) << 32), "sample_mixture: more than 2^32 points in one step");
  const uint64_t s = uint64_t(*step);
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float x, y;
      mixture_point(mix, s, uint64_t(i), &x, &y);
      out[2 * i] = T(x);
      out[2 * i + 1] = T(y);
    }
  });
}

template void sample_mixture<float>(const Exec&, const Mixture2D&, int64_t, const int64_t*, float*);
template void sample_mixture<double>(const Exec&, const Mixture2D&, int64_t, const int64_t*, double*);

}  // namespace gancu::cpu
