// One adversarial loss term (op_types.h, LossTerm: BCE, least squares, hinge, linear), fused with
// its gradient and its statistics (see ops.h): one launch reads the n critic outputs once, writes
// d(logits), and adds the scaled mean loss and the mean score (D's probability for BCE, the raw
// score otherwise) to two device scalars.
//
// Why fused: the loss value, its gradient and the score share every transcendental (BCE:
// exp(-|l|)), and a separate reduction would read the logits a second time and cost launches.
//
// Deterministic: one block; each thread sums a fixed strided subset in double, then a fixed
// shared-memory tree adds the threads' sums. No atomics. Limits: a single block is right for the
// logits of a GAN batch (n up to ~64K: one value per image, or per patch for PatchGAN-sized
// outputs); far larger n would want a two-stage grid.
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
    gan_loss_kernel(LossTerm term, int64_t n, const float* logits, float* dlogits, float* loss_sum,
                    float* score_sum) {
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
    if (threadIdx.x < s) {
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

}  // namespace

template <class T>
void gan_loss(const Exec& ex, const LossTerm& term, int64_t n, const T* logits, T* dlogits, T* loss_sum,
              T* score_sum) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  gan_loss_kernel<<<1, kLossThreads, 0, stream_of(ex)>>>(term, n, logits, dlogits, loss_sum, score_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void gan_loss<float>(const Exec&, const LossTerm&, int64_t, const float*, float*, float*, float*);

}  // namespace gancu::cuda
