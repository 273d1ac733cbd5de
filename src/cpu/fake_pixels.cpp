// Fakes for D's pre-training on the CPU (ops.h, histogram_pixels / permute_positions): pixels by
// inverse CDF of the data's pixel histogram, and images with their pixel positions permuted.
#include <cmath>

#include "cpu/parallel.h"
#include "gancu/ops.h"
#include "gancu/pixel_cdf.h"

namespace gancu::cpu {

template <class T>
void histogram_pixels(const Exec&, int64_t n, const float* cdf, float scale, float shift, T* inout) {
#pragma omp parallel for schedule(static) if (n > kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    const float u = (float(inout[i]) + 1.0f) * 0.5f;
    inout[i] = T(std::fma(float(cdf_bin(u, cdf)), scale, shift));  // as gather_batch scales a uint8 pixel
  }
}

template <class T>
void permute_positions(const Exec&, int64_t rows, int64_t positions, int channels, const int32_t* perm,
                       const T* in, T* out) {
#pragma omp parallel for schedule(static) if (rows * positions * channels > kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < positions; ++p)
      for (int c = 0; c < channels; ++c)
        out[(r * positions + p) * channels + c] = in[(r * positions + perm[p]) * channels + c];
}

#define GANCU_INSTANTIATE(T)                                                               \
  template void histogram_pixels<T>(const Exec&, int64_t, const float*, float, float, T*); \
  template void permute_positions<T>(const Exec&, int64_t, int64_t, int, const int32_t*, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
