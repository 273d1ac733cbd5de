// Small utilities of the CPU backend: fill, add_into, add, increment_counter.
#include "cpu/activation_math.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void fill(const Exec&, int64_t n, T* out, T value) {
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = value;
  });
}

template <class T>
void add_into(const Exec&, int64_t n, const T* src, T* dst) {
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
  });
}

template <class T>
void add(const Exec&, int64_t n, const T* a, const T* b, T* y) {
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) y[i] = a[i] + b[i];
  });
}

template <class T>
void increment_counter(const Exec&, int64_t* counter) {
  *counter += 1;
}

#define GANCU_INSTANTIATE(T)                                          \
  template void fill<T>(const Exec&, int64_t, T*, T);                 \
  template void add_into<T>(const Exec&, int64_t, const T*, T*);      \
  template void add<T>(const Exec&, int64_t, const T*, const T*, T*); \
  template void increment_counter<T>(const Exec&, int64_t*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
