// Concatenation along channels on the CPU (op_types.h, ConcatPart): each input is copied into its
// channels of the output, and its gradient is read back from them (summed over the positions when
// the input is a per-sample vector broadcast to every position).
#include <algorithm>

#include "cpu/parallel.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {}  // namespace

template <class T>
void concat_forward(const Exec&, const ConcatPart& part, const T* x, T* y) {
  check_concat_part(part, "concat_forward");
  const int64_t rows = part.samples * part.positions, src = part.src_channels;
#pragma omp parallel for schedule(static) if (rows * src > kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T* from = x + (part.broadcast ? r / part.positions : r) * src;
    std::copy(from, from + src, y + r * part.dst_channels + part.offset);
  }
}

template <class T>
void concat_backward(const Exec&, const ConcatPart& part, const T* dy, T* dx, bool accumulate_dx) {
  check_concat_part(part, "concat_backward");
  if (!dx) return;
  const int64_t src = part.src_channels, P = part.positions;
  if (!part.broadcast) {
    const int64_t rows = part.samples * P;
#pragma omp parallel for schedule(static) if (rows * src > kParallelMinWork)
    for (int64_t r = 0; r < rows; ++r) {
      const T* from = dy + r * part.dst_channels + part.offset;
      T* to = dx + r * src;
      for (int64_t k = 0; k < src; ++k) to[k] = accumulate_dx ? to[k] + from[k] : from[k];
    }
    return;
  }
  // Broadcast: each value's gradient is the sum over the positions, added in position order in T
  // (the CUDA kernel adds in the same order).
#pragma omp parallel for schedule(static) if (part.samples * P * src > kParallelMinWork)
  for (int64_t s = 0; s < part.samples; ++s) {
    T* to = dx + s * src;
    for (int64_t k = 0; k < src; ++k) {
      T sum = T(0);
      for (int64_t p = 0; p < P; ++p) sum += dy[(s * P + p) * part.dst_channels + part.offset + k];
      to[k] = accumulate_dx ? to[k] + sum : sum;
    }
  }
}

#define GANCU_INSTANTIATE(T)                                                     \
  template void concat_forward<T>(const Exec&, const ConcatPart&, const T*, T*); \
  template void concat_backward<T>(const Exec&, const ConcatPart&, const T*, T*, bool);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
