// Gradient penalties of the CUDA backend (see ops.h): the points where WGAN-GP (interpolation)
// and DRAGAN (perturbation) evaluate the critic's input gradient, and the penalty of those
// gradients with its gradient v, the tangent of the forward-mode pass.
//
// Random numbers: element i of the Philox stream (seed, stream, *step) through rng.h's
// philox_uniform, exactly as the CPU backend (src/cpu/penalty.cpp) numbers them, read from the
// device step counter so that a captured graph draws new points at each replay. Each thread
// evaluates the Philox block of its own elements (the per-sample draw is recomputed per value:
// these are small batches and it keeps one definition of the stream). The outputs use explicit
// __fmaf_rn / __fmul_rn, which nvcc does not contract or reorder, the same operations as the
// CPU's std::fma: with the same draws and inputs both backends round alike (interpolation bit
// for bit; the perturbation up to the last bit of the batch's sigma, a sum in another order).
//
// perturb_samples: sigma is the unbiased std of the whole batch, a two-stage sum (common.cuh) of
// x - x[0] and its square in double (the shift keeps the one-pass variance exact enough for any
// data whose spread is not 1e-8 of its offset), a one-thread finalize that leaves spread * sigma
// in the reduction scratch, then one elementwise pass. Fewer than 2 values: sigma = 0.
//
// gradient_penalty: one block per sample computes ||g_i|| (double tree) and writes v_i in the same
// block (g_i is still in L1/L2); the norms go to the scratch, and one block adds the penalty and
// norm sums in a fixed order. Limits: up to 262,144 samples (the norms fill half the scratch).
//
// Deterministic throughout: fixed block ranges and trees, no atomics.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::cuda {

namespace {

__global__ void interpolate_kernel(int64_t batch, int64_t per_sample, const float* a, const float* b,
                                   float* out, float* eps_out, uint64_t seed, uint32_t stream,
                                   const int64_t* step) {
  const uint64_t s = uint64_t(*step);
  const int64_t n = batch * per_sample;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t sample = i / per_sample;
    const float eps = philox_uniform(seed, stream, s, uint64_t(sample), 0.0f, 1.0f);
    out[i] = __fmaf_rn(eps, a[i], __fmul_rn(1.0f - eps, b[i]));
    if (eps_out && i == sample * per_sample) eps_out[sample] = eps;
  }
}

// Stage 1 of sigma: per block, the sums of (x - x[0]) and (x - x[0])^2 into partials [block][2].
__global__ void __launch_bounds__(kSumThreads)
    spread_partials_kernel(int64_t n, const float* x, double* partials) {
  __shared__ double sh[2 * kSumThreads];
  const double shift = x[0];
  int64_t i0, i1;
  sum_range(n, i0, i1);
  double v[2] = {0.0, 0.0};
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const double d = double(x[i]) - shift;
    v[0] += d;
    v[1] += d * d;
  }
  block_sums<2>(v, sh);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = v[0];
    partials[2 * blockIdx.x + 1] = v[1];
  }
}

// Stage 2: *scaled_sigma = spread * sigma (float, as the CPU rounds it).
__global__ void __launch_bounds__(kSumThreads)
    spread_finalize_kernel(int blocks, const double* partials, int64_t n, float spread, float* scaled_sigma) {
  __shared__ double sh[2 * kSumThreads];
  double v[2];
  sum_partials<2>(blocks, partials, v, sh);
  if (threadIdx.x == 0) {
    double sigma = 0.0;
    if (n >= 2) {
      const double var = (v[1] - v[0] * v[0] / double(n)) / double(n - 1);
      sigma = sqrt(fmax(var, 0.0));
    }
    *scaled_sigma = spread * float(sigma);
  }
}

__global__ void perturb_kernel(int64_t batch, int64_t per_sample, const float* x, const float* scaled_sigma,
                               float* out, float* alpha_out, float* u_out, uint64_t seed, uint32_t stream,
                               const int64_t* step) {
  const uint64_t s = uint64_t(*step);
  const float c = *scaled_sigma;
  const int64_t n = batch * per_sample;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t sample = i / per_sample;
    const float alpha = philox_uniform(seed, stream, s, uint64_t(sample), 0.0f, 1.0f);
    const float u = philox_uniform(seed, stream, s, uint64_t(batch + i), 0.0f, 1.0f);
    out[i] = __fmaf_rn(__fmul_rn(1.0f - alpha, c), u, x[i]);
    if (u_out) u_out[i] = u;
    if (alpha_out && i == sample * per_sample) alpha_out[sample] = alpha;
  }
}

constexpr int kPenaltyThreads = 256;

// One block per sample: norms[i] = ||g_i||, v_i = coef(||g_i||) g_i.
__global__ void __launch_bounds__(kPenaltyThreads)
    penalty_sample_kernel(PenaltyKind kind, int64_t batch, int64_t per_sample, const float* g, float weight,
                          float* v, double* norms) {
  __shared__ double sh[kPenaltyThreads];
  const int64_t i = blockIdx.x;
  const float* gi = g + i * per_sample;
  double sq[1] = {0.0};
  for (int64_t j = threadIdx.x; j < per_sample; j += blockDim.x) sq[0] += double(gi[j]) * double(gi[j]);
  block_sums<1>(sq, sh);
  const double norm = sqrt(sq[0]);
  // dP/dg_i = coef g_i: TwoSided w 2 (|g| - 1) / |g| / B (0 at g = 0), Squared w 2 / B.
  double coef = 2.0 * double(weight) / double(batch);
  if (kind == PenaltyKind::TwoSided) coef = norm > 0.0 ? coef * (norm - 1.0) / norm : 0.0;
  const float c = float(coef);
  float* vi = v + i * per_sample;
  for (int64_t j = threadIdx.x; j < per_sample; j += blockDim.x) vi[j] = c * gi[j];
  if (threadIdx.x == 0) norms[i] = norm;
}

__global__ void __launch_bounds__(kPenaltyThreads)
    penalty_sum_kernel(PenaltyKind kind, int64_t batch, const double* norms, float weight, float* penalty_sum,
                       float* norm_sum) {
  __shared__ double sh[2 * kPenaltyThreads];
  double v[2] = {0.0, 0.0};  // sum of the terms, sum of the norms
  for (int64_t i = threadIdx.x; i < batch; i += blockDim.x) {
    const double t = kind == PenaltyKind::TwoSided ? norms[i] - 1.0 : norms[i];
    v[0] += t * t;
    v[1] += norms[i];
  }
  block_sums<2>(v, sh);
  if (threadIdx.x == 0) {
    if (penalty_sum) *penalty_sum += float(double(weight) * v[0] / double(batch));
    if (norm_sum) *norm_sum += float(v[1] / double(batch));
  }
}

void check_draws(int64_t batch, int64_t values, const char* what) {
  // Element indices are 32-bit Philox block numbers times 4.
  GANCU_CHECK(batch + values <= (int64_t(1) << 34), what, ": more than 2^34 draws in one stream");
}

}  // namespace

template <class T>
void interpolate_samples(const Exec& ex, int64_t batch, int64_t per_sample, const T* a, const T* b, T* out,
                         T* eps_out, uint64_t seed, uint32_t stream, const int64_t* step) {
  static_assert(std::is_same_v<T, float>);
  const int64_t n = batch * per_sample;
  if (n <= 0) return;
  check_draws(batch, 0, "interpolate_samples");
  CudaContext& ctx = context(ex);
  interpolate_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(batch, per_sample, a, b, out, eps_out,
                                                                    seed, stream, step);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void perturb_samples(const Exec& ex, int64_t batch, int64_t per_sample, const T* x, float spread, T* out,
                     T* alpha_out, T* u_out, uint64_t seed, uint32_t stream, const int64_t* step) {
  static_assert(std::is_same_v<T, float>);
  const int64_t n = batch * per_sample;
  if (n <= 0) return;
  check_draws(batch, n, "perturb_samples");
  CudaContext& ctx = context(ex);
  const int blocks = sum_blocks(n);
  double* partials = reinterpret_cast<double*>(scratch_partials(ctx));
  float* scaled_sigma = scratch_results(ctx);
  spread_partials_kernel<<<blocks, kSumThreads, 0, ctx.stream>>>(n, x, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  spread_finalize_kernel<<<1, kSumThreads, 0, ctx.stream>>>(blocks, partials, n, spread, scaled_sigma);
  GANCU_CUDA_CHECK_LAUNCH();
  perturb_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(batch, per_sample, x, scaled_sigma, out,
                                                                alpha_out, u_out, seed, stream, step);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void gradient_penalty(const Exec& ex, PenaltyKind kind, int64_t batch, int64_t per_sample, const T* g,
                      float weight, T* v, T* penalty_sum, T* norm_sum) {
  static_assert(std::is_same_v<T, float>);
  if (batch <= 0) return;
  CudaContext& ctx = context(ex);
  GANCU_CHECK(batch * int64_t(sizeof(double)) <= int64_t(ctx.reduce_scratch_bytes / 2),
              "gradient_penalty: ", batch, " samples exceed the reduction scratch");
  GANCU_CHECK(batch < (int64_t(1) << 31), "gradient_penalty: ", batch, " samples (limit 2^31)");
  double* norms = reinterpret_cast<double*>(scratch_partials(ctx));
  penalty_sample_kernel<<<unsigned(batch), kPenaltyThreads, 0, ctx.stream>>>(kind, batch, per_sample, g,
                                                                             weight, v, norms);
  GANCU_CUDA_CHECK_LAUNCH();
  if (!penalty_sum && !norm_sum) return;
  penalty_sum_kernel<<<1, kPenaltyThreads, 0, ctx.stream>>>(kind, batch, norms, weight, penalty_sum,
                                                            norm_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void interpolate_samples<float>(const Exec&, int64_t, int64_t, const float*, const float*, float*,
                                         float*, uint64_t, uint32_t, const int64_t*);
template void perturb_samples<float>(const Exec&, int64_t, int64_t, const float*, float, float*, float*,
                                     float*, uint64_t, uint32_t, const int64_t*);
template void gradient_penalty<float>(const Exec&, PenaltyKind, int64_t, int64_t, const float*, float, float*,
                                      float*, float*);

}  // namespace gancu::cuda
