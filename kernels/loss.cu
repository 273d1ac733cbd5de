// Binary cross-entropy with logits, fused with its gradient and its statistics (see ops.h):
// one launch reads the n logits once and writes d(logits), and adds the mean loss and the mean
// sigmoid (D's average output probability, for the log) to two device scalars.
//
// Why fused: the loss value, its gradient and the probability share every transcendental
// (exp(-|l|)), and a separate reduction would read the logits a second time and cost launches.
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

__global__ void __launch_bounds__(kLossThreads)
    bce_kernel(int64_t n, const float* logits, float target, float grad_over_n, float* dlogits,
               float* loss_sum, float* prob_sum) {
  __shared__ double sh_loss[kLossThreads];
  __shared__ double sh_prob[kLossThreads];
  double acc_loss = 0.0, acc_prob = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float l = logits[i];
    const float e = expf(-fabsf(l));  // exp(-|l|) in (0, 1]: never overflows
    const float loss = fmaxf(l, 0.0f) - l * target + log1pf(e);
    const float prob = l >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    if (dlogits) dlogits[i] = grad_over_n * (prob - target);
    acc_loss += double(loss);
    acc_prob += double(prob);
  }
  sh_loss[threadIdx.x] = acc_loss;
  sh_prob[threadIdx.x] = acc_prob;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sh_loss[threadIdx.x] += sh_loss[threadIdx.x + s];
      sh_prob[threadIdx.x] += sh_prob[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (loss_sum) *loss_sum += float(sh_loss[0] / double(n));
    if (prob_sum) *prob_sum += float(sh_prob[0] / double(n));
  }
}

}  // namespace

template <class T>
void bce_with_logits(const Exec& ex, int64_t n, const T* logits, float target, float grad_scale, T* dlogits,
                     T* loss_sum, T* prob_sum) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  const float grad_over_n = float(grad_scale) / float(n);
  bce_kernel<<<1, kLossThreads, 0, stream_of(ex)>>>(n, logits, target, grad_over_n, dlogits, loss_sum,
                                                    prob_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void bce_with_logits<float>(const Exec&, int64_t, const float*, float, float, float*, float*,
                                     float*);

}  // namespace gancu::cuda
