// Optimizers of the CUDA backend: Adam, SGD and RMSprop (PyTorch's formulations, see ops.h), each
// one launch over a whole flat parameter buffer; and WGAN's weight clipping (clamp_values) over the
// same buffer.
//
// Why fused: an optimizer step is pure memory traffic (Adam reads p, g, m, v and writes p, m, v:
// 28 bytes per parameter); one pass over all parameters of a network, float4-vectorized where the
// four buffers are 16-byte aligned (scalar tail), instead of a launch per tensor.
//
// RMSprop's step count is only counted (no bias correction): thread 0 of the update kernel
// increments it, since no thread of that kernel reads it. clamp_values selects (v < lo ? lo :
// v > hi ? hi : v) instead of fminf/fmaxf, which would turn a NaN into a bound: NaN stays NaN, as
// on the CPU and in torch.clamp.
//
// Adam's step count t lives in device memory so that a captured graph replays correctly: the
// update kernel reads t and uses t + 1 for the bias corrections (computed in double, as the CPU
// backend does), and a second one-thread launch then stores t + 1. Readers never race with the
// increment, because the increment is a separate kernel ordered after them on the stream. The
// hyperparameters (lr, betas, ...) are read from device memory by every thread at each launch,
// for the same reason: a learning-rate change (Optimizer::set_lr) reaches a captured graph. SGD
// uses momentum when it is given a momentum buffer (the buffer exists exactly when the config's
// momentum is not 0).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

struct AdamCoef {
  float b1, b2, eps, wd, step, bc2_sqrt;
};

__device__ __forceinline__ AdamCoef adam_coef(const AdamHyper& h, const int64_t* t) {
  const double tn = double(*t + 1);
  const double bc1 = 1.0 - pow(double(h.beta1), tn);
  const double bc2 = 1.0 - pow(double(h.beta2), tn);
  return AdamCoef{h.beta1, h.beta2, h.eps, h.weight_decay, float(double(h.lr) / bc1), float(sqrt(bc2))};
}

__device__ __forceinline__ void adam_one(const AdamCoef& k, float& p, float g, float& m, float& v) {
  g = g + k.wd * p;
  m = k.b1 * m + (1.0f - k.b1) * g;
  v = k.b2 * v + (1.0f - k.b2) * g * g;
  p -= k.step * (m / (sqrtf(v) / k.bc2_sqrt + k.eps));
}

__global__ void adam_kernel(int64_t n, float* param, const float* grad, float* m, float* v,
                            const AdamHyper* h, const int64_t* t, bool vec) {
  const AdamCoef k = adam_coef(*h, t);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t start = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += stride) {
      float4 p4 = reinterpret_cast<float4*>(param)[i];
      const float4 g4 = reinterpret_cast<const float4*>(grad)[i];
      float4 m4 = reinterpret_cast<float4*>(m)[i];
      float4 v4 = reinterpret_cast<float4*>(v)[i];
      adam_one(k, p4.x, g4.x, m4.x, v4.x);
      adam_one(k, p4.y, g4.y, m4.y, v4.y);
      adam_one(k, p4.z, g4.z, m4.z, v4.z);
      adam_one(k, p4.w, g4.w, m4.w, v4.w);
      reinterpret_cast<float4*>(param)[i] = p4;
      reinterpret_cast<float4*>(m)[i] = m4;
      reinterpret_cast<float4*>(v)[i] = v4;
    }
    start = n4 * 4;
  }
  for (int64_t i = start + tid; i < n; i += stride) adam_one(k, param[i], grad[i], m[i], v[i]);
}

__global__ void increment_t_kernel(int64_t* t) {
  *t += 1;
}

__device__ __forceinline__ void sgd_one(float lr, float mom, float wd, bool use_mom, float& p, float g,
                                        float* buf) {
  const float d = g + wd * p;
  if (use_mom) {
    const float b = mom * *buf + d;
    *buf = b;
    p -= lr * b;
  } else {
    p -= lr * d;
  }
}

__global__ void sgd_kernel(int64_t n, float* param, const float* grad, float* buf, const SgdHyper* hyper,
                           bool vec) {
  const SgdHyper h = *hyper;
  const bool use_mom = buf != nullptr;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t start = 0;
  float unused[4];
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += stride) {
      float4 p4 = reinterpret_cast<float4*>(param)[i];
      const float4 g4 = reinterpret_cast<const float4*>(grad)[i];
      float4 b4 = use_mom ? reinterpret_cast<float4*>(buf)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
      sgd_one(h.lr, h.momentum, h.weight_decay, use_mom, p4.x, g4.x, use_mom ? &b4.x : &unused[0]);
      sgd_one(h.lr, h.momentum, h.weight_decay, use_mom, p4.y, g4.y, use_mom ? &b4.y : &unused[1]);
      sgd_one(h.lr, h.momentum, h.weight_decay, use_mom, p4.z, g4.z, use_mom ? &b4.z : &unused[2]);
      sgd_one(h.lr, h.momentum, h.weight_decay, use_mom, p4.w, g4.w, use_mom ? &b4.w : &unused[3]);
      reinterpret_cast<float4*>(param)[i] = p4;
      if (use_mom) reinterpret_cast<float4*>(buf)[i] = b4;
    }
    start = n4 * 4;
  }
  for (int64_t i = start + tid; i < n; i += stride)
    sgd_one(h.lr, h.momentum, h.weight_decay, use_mom, param[i], grad[i], use_mom ? buf + i : &unused[0]);
}

// One thread per parameter, no float4 path (Adam's): RMSprop is WGAN's optimizer, whose critics
// have a few million parameters; worth adding only if a profile shows the difference.
__global__ void rmsprop_kernel(int64_t n, float* param, const float* grad, float* sq_avg,
                               const RmspropHyper* hyper, int64_t* t) {
  const RmspropHyper h = *hyper;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (tid == 0) *t += 1;
  for (int64_t i = tid; i < n; i += stride) {
    float p = param[i];
    const float g = grad[i] + h.weight_decay * p;
    const float v = h.alpha * sq_avg[i] + (1.0f - h.alpha) * g * g;
    sq_avg[i] = v;
    p -= h.lr * (g / (sqrtf(v) + h.eps));
    param[i] = p;
  }
}

__global__ void clamp_kernel(int64_t n, float* x, float lo, float hi) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = x[i];
    x[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

}  // namespace

template <class T>
void adam_step(const Exec& ex, int64_t n, T* param, const T* grad, T* m, T* v, const AdamHyper* h,
               int64_t* t) {
  static_assert(std::is_same_v<T, float>);
  CudaContext& ctx = context(ex);
  if (n > 0) {
    const bool vec = aligned16(param) && aligned16(grad) && aligned16(m) && aligned16(v);
    adam_kernel<<<grid_for(vec ? (n + 3) / 4 : n, ctx), kThreads, 0, ctx.stream>>>(n, param, grad, m, v, h, t,
                                                                                   vec);
    GANCU_CUDA_CHECK_LAUNCH();
  }
  increment_t_kernel<<<1, 1, 0, ctx.stream>>>(t);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void sgd_step(const Exec& ex, int64_t n, T* param, const T* grad, T* momentum_buf, const SgdHyper* h) {
  static_assert(std::is_same_v<T, float>);
  const bool use_mom = momentum_buf != nullptr;
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  const bool vec = aligned16(param) && aligned16(grad) && (!use_mom || aligned16(momentum_buf));
  sgd_kernel<<<grid_for(vec ? (n + 3) / 4 : n, ctx), kThreads, 0, ctx.stream>>>(n, param, grad, momentum_buf,
                                                                                h, vec);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void rmsprop_step(const Exec& ex, int64_t n, T* param, const T* grad, T* sq_avg, const RmspropHyper* h,
                  int64_t* t) {
  static_assert(std::is_same_v<T, float>);
  CudaContext& ctx = context(ex);
  const int64_t m = std::max<int64_t>(n, 0);  // n <= 0: one thread still counts the step
  rmsprop_kernel<<<grid_for(m, ctx), kThreads, 0, ctx.stream>>>(m, param, grad, sq_avg, h, t);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void clamp_values(const Exec& ex, int64_t n, T* x, float lo, float hi) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  clamp_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(n, x, lo, hi);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void adam_step<float>(const Exec&, int64_t, float*, const float*, float*, float*, const AdamHyper*,
                               int64_t*);
template void sgd_step<float>(const Exec&, int64_t, float*, const float*, float*, const SgdHyper*);
template void rmsprop_step<float>(const Exec&, int64_t, float*, const float*, float*, const RmspropHyper*,
                                  int64_t*);
template void clamp_values<float>(const Exec&, int64_t, float*, float, float);

}  // namespace gancu::cuda
