// Class labels on the CPU (ops.h, "Class labels"): the fake batch's classes drawn from Philox
// (rng.h's philox_class, the same definition as the CUDA kernel), and one-hot rows from classes.
#include <algorithm>

#include "gancu/check.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::cpu {

template <class T>
void draw_classes(const Exec&, int64_t n, int classes, uint64_t seed, uint32_t stream, const int64_t* step,
                  int32_t* out) {
  GANCU_CHECK(classes >= 1, "draw_classes: ", classes, " classes");
  const uint64_t s = uint64_t(*step);
  for (int64_t i = 0; i < n; ++i) out[i] = philox_class(seed, stream, s, uint64_t(i), classes);
}

template <class T>
void one_hot(const Exec&, int64_t n, int classes, const int32_t* labels, T* out) {
  GANCU_CHECK(classes >= 1, "one_hot: ", classes, " classes");
  std::fill(out, out + n * classes, T(0));
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] >= 0 && labels[i] < classes) out[i * classes + labels[i]] = T(1);
}

#define GANCU_INSTANTIATE(T)                                                                              \
  template void draw_classes<T>(const Exec&, int64_t, int, uint64_t, uint32_t, const int64_t*, int32_t*); \
  template void one_hot<T>(const Exec&, int64_t, int, const int32_t*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
