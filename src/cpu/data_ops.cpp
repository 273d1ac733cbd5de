// Data and noise ops on the CPU: latent noise from Philox, and the batch gather through the
// epoch's Feistel permutation (see rng.h), uint8 -> T scaling fused in.
#include <cmath>
#include <limits>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "cpu/random.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// The data-set index of batch row i at step `step`.
struct BatchIndex {
  uint32_t n, epoch;
  uint64_t seed, base;
  BatchIndex(const BatchGather& g, int64_t step) {
    GANCU_CHECK(g.num_images > 0 && g.num_images <= int64_t(std::numeric_limits<uint32_t>::max()),
                "gather: ", g.num_images, " images do not fit the 32-bit permutation");
    GANCU_CHECK(step >= 0, "gather: negative step ", step);
    const int64_t global = g.global_batch > 0 ? g.global_batch : g.batch;
    GANCU_CHECK(g.first >= 0 && g.first + g.batch <= global, "gather: rows [", g.first, ", ",
                g.first + g.batch, ") outside the global batch of ", global);
    const int64_t per_epoch = global > 0 ? g.num_images / global : 0;
    if (per_epoch == 0)
      runtime_error("batch gather: batch size ", global, " is larger than the data set (", g.num_images,
                    " images)");
    n = uint32_t(g.num_images);
    epoch = uint32_t(step / per_epoch);
    seed = g.seed;
    base = uint64_t(step % per_epoch) * uint64_t(global) + uint64_t(g.first);
  }
  uint32_t operator()(int i) const { return feistel_permute(uint32_t(base + uint64_t(i)), n, seed, epoch); }
};

}  // namespace

template <class T>
void fill_noise(const Exec&, int64_t n, T* out, NoiseKind kind, uint64_t seed, uint32_t stream,
                const int64_t* step) {
  const uint64_t s = uint64_t(*step);
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    if (kind == NoiseKind::Normal)
      for_each_philox_element(seed, stream, s, i0, i1,
                              [&](int64_t i, const Philox4& r) { out[i] = T(normal_from_block(r, i)); });
    else
      for_each_philox_element(seed, stream, s, i0, i1, [&](int64_t i, const Philox4& r) {
        out[i] = T(uniform_from_block(r, i, -1.0f, 1.0f));
      });
  });
}

template <class T>
void gather_batch(const Exec&, const BatchGather& g, const uint8_t* images, const int64_t* step, T* out) {
  const BatchIndex index(g, *step);
  const int64_t E = g.image_elems;
  const T scale = T(g.scale), shift = T(g.shift);
#pragma omp parallel for schedule(static) if (int64_t(g.batch) * E > kParallelMinWork)
  for (int i = 0; i < g.batch; ++i) {
    const uint8_t* src = images + int64_t(index(i)) * E;
    T* dst = out + int64_t(i) * E;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e)
      dst[e] = std::fma(T(src[e]), scale, shift);  // explicit fma: the CUDA twin uses __fmaf_rn, bit for bit
  }
}

template <class T>
void gather_labels(const Exec&, const BatchGather& g, const uint8_t* labels, const int64_t* step,
                   int32_t* out) {
  const BatchIndex index(g, *step);
  for (int i = 0; i < g.batch; ++i) out[i] = int32_t(labels[index(i)]);
}

#define GANCU_INSTANTIATE(T)                                                                            \
  template void fill_noise<T>(const Exec&, int64_t, T*, NoiseKind, uint64_t, uint32_t, const int64_t*); \
  template void gather_batch<T>(const Exec&, const BatchGather&, const uint8_t*, const int64_t*, T*);   \
  template void gather_labels<T>(const Exec&, const BatchGather&, const uint8_t*, const int64_t*, int32_t*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
