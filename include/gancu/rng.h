// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11), written once for host and
// device so that the CPU and CUDA backends draw the same bits for the same (seed, stream, step).
//
// Nothing here keeps state. A draw is a pure function of (seed, stream, step, index), which is
// what lets a captured CUDA graph replay a step with new noise (it reads `step` from device
// memory), lets `--resume` continue with exactly the numbers an uninterrupted run would draw, and
// lets tests compare whole training steps across backends. Uniform bits are identical on both
// backends; normals go through logf/sincosf, whose last bit may differ between libm and CUDA.
#pragma once

#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define GANCU_HD __host__ __device__ __forceinline__
#else
#define GANCU_HD inline
#endif

namespace gancu {

// Streams separate the uses of one seed so that, for example, drawing more init values never
// shifts the training noise.
enum RngStream : uint32_t {
  kStreamInit = 1,        // parameter initialization (index = parameter's position)
  kStreamNoiseD = 2,      // latent noise of the discriminator steps
  kStreamNoiseG = 3,      // latent noise of the generator step (when not reusing D's batch)
  kStreamData = 4,        // data-set order (keyed per epoch)
  kStreamFixedNoise = 5,  // the fixed noise set of the sample grids
  kStreamMixture = 6,     // the 2-d Gaussian mixture data sets
  kStreamPenalty = 7,     // the points of a gradient penalty (WGAN-GP interpolation, DRAGAN perturbation)
  kStreamPretrain = 8,    // the histogram fakes of D's pre-training
  kStreamClasses = 9,     // the classes of the fake batch of a conditional model (keyed by the data step)
  kStreamDropout = 64,    // + layer index + pass * kDropoutPassStride
};
// Layers per pass in the dropout streams: far more strings than any network has.
constexpr uint32_t kDropoutPassStride = 1u << 16;

struct Philox4 {
  uint32_t v[4];
};

GANCU_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
}

// The bijection itself: 10 rounds over a 128-bit counter under a 64-bit key.
GANCU_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, ctr.v[0], hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += 0x9E3779B9u;  // Weyl sequence: golden ratio
    key1 += 0xBB67AE85u;  // sqrt(3) - 1
  }
  return ctr;
}

// Four 32-bit words for block `block` of (seed, stream, step).
GANCU_HD Philox4 philox_block(uint64_t seed, uint32_t stream, uint64_t step, uint32_t block) {
  return philox4x32_10(Philox4{{block, stream, uint32_t(step), uint32_t(step >> 32)}}, uint32_t(seed),
                       uint32_t(seed >> 32));
}

// A float strictly inside (0, 1): 24 random bits, centred in their interval so that log() of it
// is always finite.
GANCU_HD float uniform_open01(uint32_t bits) {
  return float(bits >> 8) * (1.0f / 16777216.0f) + (0.5f / 16777216.0f);
}

// The value of element i (of any stream) from its block r = philox_block(..., i >> 2): kernels
// that draw several elements of one block compute the block once.
GANCU_HD float uniform_from_block(const Philox4& r, uint64_t i, float lo, float hi) {
  return lo + (hi - lo) * uniform_open01(r.v[i & 3]);
}
// Words (0,1) and (2,3) of a block each give a Box-Muller pair: element 4b+0 is the cosine and
// 4b+1 the sine of the first pair, and so on.
GANCU_HD float normal_from_block(const Philox4& r, uint64_t i) {
  const int pair = int(i & 2);
  const float u1 = uniform_open01(r.v[pair]);
  const float u2 = uniform_open01(r.v[pair + 1]);
  const float radius = sqrtf(-2.0f * logf(u1));
  const float angle = 6.2831853071795864769f * u2;
  return (i & 1) ? radius * sinf(angle) : radius * cosf(angle);
}

// Element `i` of a stream of uniform [lo, hi) numbers: word i%4 of block i/4.
GANCU_HD float philox_uniform(uint64_t seed, uint32_t stream, uint64_t step, uint64_t i, float lo, float hi) {
  return uniform_from_block(philox_block(seed, stream, step, uint32_t(i >> 2)), i, lo, hi);
}

// Element `i` of a stream of classes uniform in [0, classes): floor(u * classes) of the stream's
// uniform u in [0, 1) (the min guards the rounding of u * classes up to classes).
GANCU_HD int32_t philox_class(uint64_t seed, uint32_t stream, uint64_t step, uint64_t i, int classes) {
  const int32_t c = int32_t(philox_uniform(seed, stream, step, i, 0.0f, 1.0f) * float(classes));
  return c < classes - 1 ? c : classes - 1;
}

// Element `i` of a stream of standard normals.
GANCU_HD float philox_normal(uint64_t seed, uint32_t stream, uint64_t step, uint64_t i) {
  return normal_from_block(philox_block(seed, stream, step, uint32_t(i >> 2)), i);
}

// A random permutation of [0, n) that needs no storage: a 4-round Feistel network over the
// smallest even-bit power-of-two domain >= n, walked until it lands inside [0, n) (cycle
// walking; at most 4x the domain, so about 2 walks on average). Used for the data order of each
// epoch so that the batch gather can run on the device with nothing uploaded per epoch.
GANCU_HD uint32_t feistel_permute(uint32_t i, uint32_t n, uint64_t seed, uint32_t epoch) {
  if (n <= 1) return 0;
  int bits = 0;
  while ((uint64_t(1) << bits) < n) ++bits;
  const int half = (bits + 1) / 2;
  const uint32_t mask = (uint32_t(1) << half) - 1u;
  uint32_t x = i;
  do {
    uint32_t left = x >> half, right = x & mask;
    for (uint32_t round = 0; round < 4; ++round) {
      const uint32_t f =
          philox4x32_10(Philox4{{right, round, epoch, kStreamData}}, uint32_t(seed), uint32_t(seed >> 32))
              .v[0] &
          mask;
      const uint32_t next = left ^ f;
      left = right;
      right = next;
    }
    x = (left << half) | right;
  } while (x >= n);
  return x;
}

}  // namespace gancu
