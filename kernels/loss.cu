// The adversarial objectives of the CUDA backend (see ops.h), each fused with its gradient and
// its statistics:
//
// gan_loss: one loss term (op_types.h, LossTerm: BCE, least squares, hinge, linear). One launch
// reads the n critic outputs once, writes d(logits), and adds the scaled mean loss and the mean
// score (D's probability for BCE, the raw score otherwise) to two device scalars. Fused because
// the value, its gradient and the score share every transcendental (BCE: exp(-|l|)), and a
// separate reduction would read the logits again and cost launches. One block: each thread sums
// a fixed strided subset in double, then a fixed shared-memory tree adds the threads' sums.
// Limits: a single block is right for the logits of a GAN batch (n up to ~64K: one value per
// image, or per patch for PatchGAN-sized outputs); far larger n would want a two-stage grid.
//
// l1_reconstruction_loss (BEGAN): the loss of an auto-encoder's whole output, so n is a batch of
// images (64 x 64x64x3 = 786K values): a two-stage sum (common.cuh) whose first stage also writes
// both gradients, so x and recon are read once. The equilibrium variable k is read on the device.
//
// began_update: one thread (three scalars).
//
// Deterministic: fixed trees and fixed block ranges, partial sums in double, no atomics. Sums may
// differ from the CPU's (which adds in another fixed order) in the last bits of the double before
// it is rounded to float.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

constexpr int kLossThreads = 1024;

// f(l), f'(l) and s(l) of one critic output (the CPU backend's formulas, src/cpu/loss.cpp).
struct LossPoint {
  float value, slope, score;
};

__device__ __forceinline__ LossPoint loss_point(LossKind kind, float l, float t) {
  switch (kind) {
    case LossKind::BCE: {
      const float e = expf(-fabsf(l));  // exp(-|l|) in (0, 1]: never overflows
      const float prob = l >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
      return {fmaxf(l, 0.0f) - l * t + log1pf(e), prob - t, prob};
    }
    case LossKind::LeastSquares:
      return {(l - t) * (l - t) / 2.0f, l - t, l};
    case LossKind::Hinge: {
      const float margin = 1.0f - t * l;
      return {margin < 0.0f ? 0.0f : margin, margin > 0.0f ? -t : 0.0f, l};  // NaN stays; kink: slope 0
    }
    default:  // Linear
      return {-t * l, -t, l};
  }
}

__global__ void __launch_bounds__(kLossThreads)
    gan_loss_kernel(const LossTerm* term_in_memory, int64_t n, const float* logits, float* dlogits,
                    float* loss_sum, float* score_sum) {
  const LossTerm term = *term_in_memory;  // read at each launch: a captured graph follows changes
  __shared__ double sh_loss[kLossThreads];
  __shared__ double sh_score[kLossThreads];
  const float grad_over_n = term.scale / float(n);
  double acc_loss = 0.0, acc_score = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const LossPoint p = loss_point(term.kind, logits[i], term.target);
    if (dlogits) dlogits[i] = grad_over_n * p.slope;
    acc_loss += double(p.value);
    acc_score += double(p.score);
  }
  sh_loss[threadIdx.x] = acc_loss;
  sh_score[threadIdx.x] = acc_score;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) {
      sh_loss[threadIdx.x] += sh_loss[threadIdx.x + s];
      sh_score[threadIdx.x] += sh_score[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (loss_sum) *loss_sum += float(double(term.scale) * sh_loss[0] / double(n));
    if (score_sum) *score_sum += float(sh_score[0] / double(n));
  }
}

// Stage 1 of the L1 loss: the gradients of s |recon - x| (s = scale * k), and per block the sum
// of |recon - x| into partials [block].
__global__ void __launch_bounds__(kSumThreads)
    l1_kernel(int64_t n, const float* x, const float* recon, float scale, const float* k, float* drecon,
              float* dx, bool accumulate_dx, double* partials) {
  __shared__ double sh[kSumThreads];
  const float g = scale * (k ? *k : 1.0f) / float(n);  // the CPU's order: (scale k) / n
  int64_t i0, i1;
  sum_range(n, i0, i1);
  double v[1] = {0.0};
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const float diff = recon[i] - x[i];
    const float sign = diff > 0.0f ? 1.0f : (diff < 0.0f ? -1.0f : 0.0f);  // sign(0) = 0
    if (drecon) drecon[i] = g * sign;
    if (dx) dx[i] = accumulate_dx ? dx[i] - g * sign : -g * sign;
    v[0] += double(fabsf(diff));
  }
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = v[0];
}

__global__ void __launch_bounds__(kSumThreads)
    l1_finalize_kernel(int blocks, const double* partials, int64_t n, float* loss_out, float* loss_sum) {
  __shared__ double sh[kSumThreads];
  double v[1];
  sum_partials<1>(blocks, partials, v, sh);
  if (threadIdx.x == 0) {
    const float loss = float(v[0] / double(n));
    if (loss_out) *loss_out = loss;
    if (loss_sum) *loss_sum += loss;
  }
}

__global__ void began_update_kernel(float* k, const float* loss_real, const float* loss_fake, float gamma,
                                    float lambda_k, float* convergence_sum) {
  const float d = gamma * *loss_real - *loss_fake;
  const float next = *k + lambda_k * d;
  *k = next < 0.0f ? 0.0f : (next > 1.0f ? 1.0f : next);
  if (convergence_sum) *convergence_sum += *loss_real + fabsf(d);
}

}  // namespace

template <class T>
void gan_loss(const Exec& ex, const LossTerm* term, int64_t n, const T* logits, T* dlogits, T* loss_sum,
              T* score_sum) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  gan_loss_kernel<<<1, kLossThreads, 0, stream_of(ex)>>>(term, n, logits, dlogits, loss_sum, score_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void l1_reconstruction_loss(const Exec& ex, int64_t batch, int64_t per_sample, const T* x, const T* recon,
                            float scale, const T* k, T* drecon, T* dx, bool accumulate_dx, T* loss_out,
                            T* loss_sum) {
  static_assert(std::is_same_v<T, float>);
  const int64_t n = batch * per_sample;
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  const int blocks = sum_blocks(n);
  double* partials = reinterpret_cast<double*>(scratch_partials(ctx));
  l1_kernel<<<blocks, kSumThreads, 0, ctx.stream>>>(n, x, recon, scale, k, drecon, dx, accumulate_dx,
                                                    partials);
  GANCU_CUDA_CHECK_LAUNCH();
  if (!loss_out && !loss_sum) return;
  l1_finalize_kernel<<<1, kSumThreads, 0, ctx.stream>>>(blocks, partials, n, loss_out, loss_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void began_update(const Exec& ex, T* k, const T* loss_real, const T* loss_fake, float gamma, float lambda_k,
                  T* convergence_sum) {
  static_assert(std::is_same_v<T, float>);
  began_update_kernel<<<1, 1, 0, stream_of(ex)>>>(k, loss_real, loss_fake, gamma, lambda_k, convergence_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void gan_loss<float>(const Exec&, const LossTerm*, int64_t, const float*, float*, float*, float*);
template void l1_reconstruction_loss<float>(const Exec&, int64_t, int64_t, const float*, const float*, float,
                                            const float*, float*, float*, bool, float*, float*);
template void began_update<float>(const Exec&, float*, const float*, const float*, float, float, float*);

}  // namespace gancu::cuda
