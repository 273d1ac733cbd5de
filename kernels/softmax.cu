// Softmax over rows, and softmax cross-entropy against integer labels fused with its gradient and
// its statistics (see ops.h), on the CUDA backend.
//
// One warp per row (eight rows per block, rows grid-strided): the lanes stride over the row's
// classes, and the row's maximum, first argmax and sum of exp(l - max) are combined with xor
// shuffles, a fixed butterfly, so every row's result is the same bits on every run. Rows are
// shifted by their maximum before exp, so logits of +-1000 stay finite; the cross-entropy is
// logsumexp(l) - l[label] = max + log(sum) - l[label].
//
// Why fused: the loss, the gradient (softmax - onehot) and the accuracy count all need the row's
// max and sum of exps; computing them in one pass reads the logits from DRAM once (the three
// sweeps of a row hit L1/L2), and the gradient is written in the same launch.
//
// Deterministic sums, no atomics: each block adds its rows' losses and correct counts (in double,
// in row order per warp, then warp order) into one partial in the context's reduction scratch;
// one more single-block launch adds the partials in a fixed order and adds loss / n and the count
// to the device scalars. The grid is at most kMaxBlocks blocks, fixed by n alone, so the partition
// (and the bits) do not depend on the device.
//
// Labels: the CPU throws on a label outside [0, classes); a kernel cannot, so here such a row is
// treated as having no target: it adds nothing to the loss or the correct count, and its
// dlogits are written as zeros (the mean still divides by n). Labels come from gather_labels of a
// validated data set, where this does not happen.
//
// Limits: classes < 2^31; n up to 2^63 rows (grid-strided). Performance is best for classes of
// ~32 and more (a narrower row leaves lanes idle; the classifiers of the evaluation have 10 to
// 1000 classes, and the row counts are batch sizes, so this never dominates).
#include <cuda_runtime.h>

#include <climits>
#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // warps per block
constexpr int kMaxBlocks = 1024;
constexpr int kFinalThreads = 256;

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// The larger value; on equal values the smaller index (the first maximum, torch.argmax's rule).
__device__ __forceinline__ void warp_argmax(float& v, int& idx) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) {
      v = ov;
      idx = oi;
    }
  }
}

// The number of blocks for n rows.
int blocks_for(int64_t n) {
  return int(std::min<int64_t>((n + kRowsPerBlock - 1) / kRowsPerBlock, kMaxBlocks));
}

__global__ void __launch_bounds__(kRowsPerBlock * 32)
    softmax_kernel(int64_t n, int classes, const float* __restrict__ logits, float* __restrict__ probs) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * kRowsPerBlock;
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32; row < n; row += warps) {
    const float* l = logits + row * classes;
    float* p = probs + row * classes;
    float m = -INFINITY;
    for (int j = lane; j < classes; j += 32) m = fmaxf(m, l[j]);
    m = warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < classes; j += 32) s += expf(l[j] - m);
    const float inv = 1.0f / warp_sum(s);
    for (int j = lane; j < classes; j += 32) p[j] = expf(l[j] - m) * inv;
  }
}

// partials: [gridDim.x][2] (loss, correct) or null when no sum is wanted.
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    softmax_ce_kernel(int64_t n, int classes, const float* logits, const int32_t* __restrict__ labels,
                      float grad_over_n, float* dlogits, double* __restrict__ partials) {
  __shared__ double sh[kRowsPerBlock][2];
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int64_t warps = int64_t(gridDim.x) * kRowsPerBlock;
  double acc_loss = 0.0, acc_correct = 0.0;
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp; row < n; row += warps) {
    const float* l = logits + row * classes;
    const int label = labels[row];
    const bool valid = label >= 0 && label < classes;
    const float l_label = valid ? l[label] : 0.0f;  // read before dl[] is written (dl may alias l)
    float m = -INFINITY;
    int arg = INT_MAX;
    for (int j = lane; j < classes; j += 32) {
      const float v = l[j];
      if (v > m) {  // strict: the lane's first maximum
        m = v;
        arg = j;
      }
    }
    warp_argmax(m, arg);
    float s = 0.0f;
    for (int j = lane; j < classes; j += 32) s += expf(l[j] - m);
    s = warp_sum(s);
    if (dlogits) {
      float* dl = dlogits + row * classes;
      const float inv = 1.0f / s;
      for (int j = lane; j < classes; j += 32) {
        const float p = expf(l[j] - m) * inv;
        dl[j] = valid ? grad_over_n * (j == label ? p - 1.0f : p) : 0.0f;
      }
    }
    if (valid) {
      // (m - l_label) first and in double: for a confident row, log(s) is far below the spacing
      // of floats near m and would be lost in m + log(s) (the CPU sums in double too).
      acc_loss += (double(m) - double(l_label)) + double(logf(s));
      acc_correct += arg == label ? 1.0 : 0.0;
    }
  }
  if (partials == nullptr) return;
  if (lane == 0) {
    sh[warp][0] = acc_loss;
    sh[warp][1] = acc_correct;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double sl = 0.0, sc = 0.0;
    for (int w = 0; w < kRowsPerBlock; ++w) {
      sl += sh[w][0];
      sc += sh[w][1];
    }
    partials[2 * blockIdx.x] = sl;
    partials[2 * blockIdx.x + 1] = sc;
  }
}

__global__ void __launch_bounds__(kFinalThreads)
    ce_finalize_kernel(int parts, const double* __restrict__ partials, int64_t n, float* loss_sum,
                       float* correct_sum) {
  __shared__ double sl[kFinalThreads], sc[kFinalThreads];
  double a = 0.0, b = 0.0;
  for (int i = threadIdx.x; i < parts; i += kFinalThreads) {
    a += partials[2 * i];
    b += partials[2 * i + 1];
  }
  sl[threadIdx.x] = a;
  sc[threadIdx.x] = b;
  __syncthreads();
  for (int s = kFinalThreads / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) {
      sl[threadIdx.x] += sl[threadIdx.x + s];
      sc[threadIdx.x] += sc[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (loss_sum) *loss_sum += float(sl[0] / double(n));
    if (correct_sum) *correct_sum += float(sc[0]);
  }
}

}  // namespace

template <class T>
void softmax(const Exec& ex, int64_t n, int classes, const T* logits, T* probs) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  GANCU_CHECK(classes >= 1, "softmax over ", classes, " classes");
  softmax_kernel<<<blocks_for(n), kRowsPerBlock * 32, 0, stream_of(ex)>>>(n, classes, logits, probs);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void softmax_cross_entropy(const Exec& ex, int64_t n, int classes, const T* logits, const int32_t* labels,
                           float grad_scale, T* dlogits, T* loss_sum, T* correct_sum) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  GANCU_CHECK(classes >= 1, "softmax_cross_entropy over ", classes, " classes");
  CudaContext& ctx = context(ex);
  const int blocks = blocks_for(n);
  const bool sums = loss_sum != nullptr || correct_sum != nullptr;
  if (!sums && dlogits == nullptr) return;
  double* partials = nullptr;
  if (sums) {
    GANCU_CHECK(size_t(blocks) * 2 * sizeof(double) <= ctx.reduce_scratch_bytes,
                "softmax_cross_entropy: partials do not fit the reduction scratch");
    partials = static_cast<double*>(ctx.reduce_scratch);
  }
  const float grad_over_n = float(double(grad_scale) / double(n));
  softmax_ce_kernel<<<blocks, kRowsPerBlock * 32, 0, ctx.stream>>>(n, classes, logits, labels, grad_over_n,
                                                                   dlogits, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  if (sums) {
    ce_finalize_kernel<<<1, kFinalThreads, 0, ctx.stream>>>(blocks, partials, n, loss_sum, correct_sum);
    GANCU_CUDA_CHECK_LAUNCH();
  }
}

template void softmax<float>(const Exec&, int64_t, int, const float*, float*);
template void softmax_cross_entropy<float>(const Exec&, int64_t, int, const float*, const int32_t*, float,
                                           float*, float*, float*);

}  // namespace gancu::cuda
