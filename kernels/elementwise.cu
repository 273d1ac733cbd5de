// Elementwise ops of the CUDA backend: activation forward/backward and the second-order part of
// an activation's tangent backward, dropout (Philox mask, redrawn in backward), fill, add_into,
// add, increment_counter, the bias + activation epilogue of the
// layers, fill_noise, and the on-device batch gather (uint8 -> float through the epoch's Feistel
// permutation).
//
// What is fused and why: every kernel here is memory bound, so each does its whole job in one
// pass (bias and activation together; dropout's mask recomputed from Philox instead of stored and
// re-read; gather, permutation and normalization together). Where all pointers are 16-byte
// aligned the kernels move float4s, with a scalar tail.
//
// Limits: the random ops (dropout, fill_noise, gather) read the step counter from device memory
// at run time, so one captured graph serves every step. fill_noise calls rng.h's philox_normal /
// philox_uniform per element (a Philox block is recomputed for each of its four words: the noise
// batch is small, and this keeps a single implementation of the stream's definition). bias_act
// works on tensors of fewer than 2^31 elements (32-bit channel arithmetic).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::cuda {

namespace {

// ---- A generic map: out[i] = op(i, a[i], b[i], out[i]) ------------------------------------------
// Op tells which inputs it reads (kReadA, kReadB, reads_out()), so that a null pointer is never
// dereferenced and unread buffers cost no traffic.
template <class Op>
__global__ void map_kernel(int64_t n, const float* a, const float* b, float* out, Op op, bool vec) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool ro = op.reads_out();
  int64_t start = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t v = tid; v < n4; v += stride) {
      float4 av = make_float4(0.f, 0.f, 0.f, 0.f), bv = av, ov = av;
      if (Op::kReadA) av = reinterpret_cast<const float4*>(a)[v];
      if (Op::kReadB) bv = reinterpret_cast<const float4*>(b)[v];
      if (ro) ov = reinterpret_cast<const float4*>(out)[v];
      const int64_t i = 4 * v;
      float4 r;
      r.x = op(i + 0, av.x, bv.x, ov.x);
      r.y = op(i + 1, av.y, bv.y, ov.y);
      r.z = op(i + 2, av.z, bv.z, ov.z);
      r.w = op(i + 3, av.w, bv.w, ov.w);
      reinterpret_cast<float4*>(out)[v] = r;
    }
    start = n4 * 4;
  }
  for (int64_t i = start + tid; i < n; i += stride) {
    const float av = Op::kReadA ? a[i] : 0.f;
    const float bv = Op::kReadB ? b[i] : 0.f;
    const float ov = ro ? out[i] : 0.f;
    out[i] = op(i, av, bv, ov);
  }
}

template <class Op>
void launch_map(const Exec& ex, int64_t n, const float* a, const float* b, float* out, const Op& op) {
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  const bool vec = aligned16(out) && (!Op::kReadA || aligned16(a)) && (!Op::kReadB || aligned16(b));
  const int grid = grid_for(vec ? (n + 3) / 4 : n, ctx);
  map_kernel<Op><<<grid, kThreads, 0, ctx.stream>>>(n, a, b, out, op, vec);
  GANCU_CUDA_CHECK_LAUNCH();
}

struct ActFwdOp {
  static constexpr bool kReadA = true, kReadB = false;
  Act kind;
  float slope;
  __device__ bool reads_out() const { return false; }
  __device__ float operator()(int64_t, float x, float, float) const { return act_forward(x, kind, slope); }
};

// a = y, b = dy
struct ActBwdOp {
  static constexpr bool kReadA = true, kReadB = true;
  Act kind;
  float slope;
  bool acc;
  __device__ bool reads_out() const { return acc; }
  __device__ float operator()(int64_t, float y, float dy, float o) const {
    const float g = act_backward(dy, y, kind, slope);
    return acc ? o + g : g;
  }
};

struct FillOp {
  static constexpr bool kReadA = false, kReadB = false;
  float value;
  __device__ bool reads_out() const { return false; }
  __device__ float operator()(int64_t, float, float, float) const { return value; }
};

struct AddIntoOp {
  static constexpr bool kReadA = true, kReadB = false;
  __device__ bool reads_out() const { return true; }
  __device__ float operator()(int64_t, float s, float, float o) const { return o + s; }
};

struct AddOp {
  static constexpr bool kReadA = true, kReadB = true;
  __device__ bool reads_out() const { return false; }
  __device__ float operator()(int64_t, float a, float b, float) const { return a + b; }
};

// Inverted dropout. The mask of element i is philox_uniform(seed, stream, step, i) >= p, drawn
// again in backward; forward and backward read the same step.
struct DropoutOp {
  static constexpr bool kReadA = true, kReadB = false;
  float p, scale;
  uint64_t seed;
  uint32_t stream;
  const int64_t* step;
  bool acc;
  __device__ bool reads_out() const { return acc; }
  __device__ float operator()(int64_t i, float x, float, float o) const {
    const float u = philox_uniform(seed, stream, uint64_t(*step), uint64_t(i), 0.0f, 1.0f);
    const float v = u >= p ? x * scale : 0.0f;
    return acc ? o + v : v;
  }
};

// 1 / (1 - p); p >= 1 keeps nothing (every uniform draw is < 1), so the scale is then moot.
float dropout_scale(float p) {
  return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}

// y[i, c] = act(y[i, c] + b[c]), i over rows. 32-bit index arithmetic (n < 2^31, checked).
__global__ void bias_act_kernel(uint32_t n, uint32_t channels, const float* b, float* y, Act kind,
                                float slope, bool vec) {
  const uint32_t stride = gridDim.x * blockDim.x;
  const uint32_t tid = blockIdx.x * blockDim.x + threadIdx.x;
  uint32_t start = 0;
  if (vec) {  // channels % 4 == 0: the four lanes of a float4 share a row
    const uint32_t n4 = n / 4;
    for (uint32_t v = tid; v < n4; v += stride) {
      float4 r = reinterpret_cast<float4*>(y)[v];
      if (b) {
        const uint32_t c = (4 * v) % channels;
        const float4 bb = *reinterpret_cast<const float4*>(b + c);
        r.x += bb.x;
        r.y += bb.y;
        r.z += bb.z;
        r.w += bb.w;
      }
      r.x = act_forward(r.x, kind, slope);
      r.y = act_forward(r.y, kind, slope);
      r.z = act_forward(r.z, kind, slope);
      r.w = act_forward(r.w, kind, slope);
      reinterpret_cast<float4*>(y)[v] = r;
    }
    start = n4 * 4;
  }
  for (uint32_t i = start + tid; i < n; i += stride) {
    float v = y[i];
    if (b) v += b[i % channels];
    y[i] = act_forward(v, kind, slope);
  }
}

// dz = act'(y) dy + curvature(y) ty dty (dy null: 0). Four inputs: not a map_kernel.
__global__ void act_second_order_kernel(int64_t n, const float* y, const float* ty, const float* dty,
                                        const float* dy, float* dz, Act kind, float slope) {
  const bool smooth = act_is_smooth(kind);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float yi = y[i];
    const float first = dy ? act_backward(dy[i], yi, kind, slope) : 0.0f;
    dz[i] = smooth ? first + act_curvature(yi, kind) * ty[i] * dty[i] : first;
  }
}

__global__ void increment_kernel(int64_t* counter) {
  *counter += 1;
}

__global__ void fill_noise_kernel(int64_t n, float* out, NoiseKind kind, uint64_t seed, uint32_t stream,
                                  const int64_t* step) {
  const uint64_t s = uint64_t(*step);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = kind == NoiseKind::Normal ? philox_normal(seed, stream, s, uint64_t(i))
                                       : philox_uniform(seed, stream, s, uint64_t(i), -1.0f, 1.0f);
  }
}

// The data-set index of batch row b at step *step (see BatchGather).
__device__ __forceinline__ uint32_t gather_index(const BatchGather& g, int64_t step, int b) {
  // The CPU throws on a negative step; here it would start the Feistel cycle walk outside [0, n),
  // where it need not end. Only a corrupted counter gets here: clamp rather than hang.
  step = step < 0 ? 0 : step;
  const int64_t global = g.global_batch > 0 ? g.global_batch : g.batch;
  const int64_t per_epoch = g.num_images / global;
  const int64_t epoch = step / per_epoch;
  const int64_t pos = (step % per_epoch) * global + g.first + b;
  return feistel_permute(uint32_t(pos), uint32_t(g.num_images), g.seed, uint32_t(epoch));
}

// One block per batch row: thread 0 walks the permutation, all threads copy and scale the image.
// out = fma(u8, scale, shift): one rounding, as the CPU backend's explicit std::fma, so both
// backends agree bit for bit (the test checks it).
__global__ void gather_batch_kernel(BatchGather g, const uint8_t* images, const int64_t* step, float* out,
                                    bool vec) {
  __shared__ uint32_t idx;
  const int b = blockIdx.x;
  if (threadIdx.x == 0) idx = gather_index(g, *step, b);
  __syncthreads();
  const uint8_t* src = images + int64_t(idx) * g.image_elems;
  float* dst = out + int64_t(b) * g.image_elems;
  if (vec) {  // image_elems % 4 == 0, images and out 16-byte aligned
    const int64_t n4 = g.image_elems / 4;
    for (int64_t v = threadIdx.x; v < n4; v += blockDim.x) {
      const uchar4 u = reinterpret_cast<const uchar4*>(src)[v];
      float4 r;
      r.x = __fmaf_rn(float(u.x), g.scale, g.shift);
      r.y = __fmaf_rn(float(u.y), g.scale, g.shift);
      r.z = __fmaf_rn(float(u.z), g.scale, g.shift);
      r.w = __fmaf_rn(float(u.w), g.scale, g.shift);
      reinterpret_cast<float4*>(dst)[v] = r;
    }
  } else {
    for (int64_t e = threadIdx.x; e < g.image_elems; e += blockDim.x)
      dst[e] = __fmaf_rn(float(src[e]), g.scale, g.shift);
  }
}

__global__ void gather_labels_kernel(BatchGather g, const uint8_t* labels, const int64_t* step,
                                     int32_t* out) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < g.batch) out[b] = int32_t(labels[gather_index(g, *step, b)]);
}

void check_gather(const BatchGather& g) {
  const int64_t global = g.global_batch > 0 ? g.global_batch : g.batch;
  GANCU_CHECK(g.batch > 0 && g.num_images >= global, "gather: ", g.num_images,
              " images cannot fill a batch of ", global);
  GANCU_CHECK(g.first >= 0 && g.first + g.batch <= global, "gather: rows [", g.first, ", ", g.first + g.batch,
              ") outside the global batch of ", global);
  GANCU_CHECK(g.num_images <= int64_t(UINT32_MAX), "gather: more than 2^32 images");
}

}  // namespace

// ---- Shared with the layer files ---------------------------------------------------------------

void bias_act(const Exec& ex, int64_t rows, int channels, const float* b, float* y, Activation act) {
  const int64_t n = rows * channels;
  if (n <= 0 || (b == nullptr && act.kind == Act::None)) return;
  GANCU_CHECK(n < (int64_t(1) << 31), "bias_act: tensor of ", n, " elements (limit 2^31)");
  CudaContext& ctx = context(ex);
  const bool vec = channels % 4 == 0 && aligned16(y) && (b == nullptr || aligned16(b));
  const int grid = grid_for(vec ? n / 4 : n, ctx);
  bias_act_kernel<<<grid, kThreads, 0, ctx.stream>>>(uint32_t(n), uint32_t(channels), b, y, act.kind,
                                                     act.slope, vec);
  GANCU_CUDA_CHECK_LAUNCH();
}

// ---- The ops of ops.h ---------------------------------------------------------------------------

template <class T>
void activation_forward(const Exec& ex, int64_t n, const T* x, T* y, Activation act) {
  static_assert(std::is_same_v<T, float>);
  if (act.kind == Act::None) {
    if (x != y && n > 0)
      GANCU_CUDA_CHECK(
          cudaMemcpyAsync(y, x, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream_of(ex)));
    return;
  }
  launch_map(ex, n, x, nullptr, y, ActFwdOp{act.kind, act.slope});
}

template <class T>
void activation_backward(const Exec& ex, int64_t n, const T* y, const T* dy, T* dx, bool accumulate_dx,
                         Activation act) {
  static_assert(std::is_same_v<T, float>);
  if (dx == nullptr) return;
  launch_map(ex, n, y, dy, dx, ActBwdOp{act.kind, act.slope, accumulate_dx});
}

template <class T>
void dropout_forward(const Exec& ex, int64_t n, const T* x, T* y, float p, uint64_t seed, uint32_t stream,
                     const int64_t* step) {
  static_assert(std::is_same_v<T, float>);
  launch_map(ex, n, x, nullptr, y, DropoutOp{p, dropout_scale(p), seed, stream, step, false});
}

template <class T>
void dropout_backward(const Exec& ex, int64_t n, const T* dy, T* dx, bool accumulate_dx, float p,
                      uint64_t seed, uint32_t stream, const int64_t* step) {
  static_assert(std::is_same_v<T, float>);
  if (dx == nullptr) return;
  launch_map(ex, n, dy, nullptr, dx, DropoutOp{p, dropout_scale(p), seed, stream, step, accumulate_dx});
}

template <class T>
void fill(const Exec& ex, int64_t n, T* out, T value) {
  static_assert(std::is_same_v<T, float>);
  launch_map(ex, n, nullptr, nullptr, out, FillOp{value});
}

template <class T>
void add_into(const Exec& ex, int64_t n, const T* src, T* dst) {
  static_assert(std::is_same_v<T, float>);
  launch_map(ex, n, src, nullptr, dst, AddIntoOp{});
}

template <class T>
void add(const Exec& ex, int64_t n, const T* a, const T* b, T* y) {
  static_assert(std::is_same_v<T, float>);
  launch_map(ex, n, a, b, y, AddOp{});
}

template <class T>
void activation_second_order(const Exec& ex, int64_t n, const T* y, const T* ty, const T* dty, const T* dy,
                             T* dz, Activation act) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  act_second_order_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(n, y, ty, dty, dy, dz, act.kind,
                                                                         act.slope);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void increment_counter(const Exec& ex, int64_t* counter) {
  increment_kernel<<<1, 1, 0, stream_of(ex)>>>(counter);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void fill_noise(const Exec& ex, int64_t n, T* out, NoiseKind kind, uint64_t seed, uint32_t stream,
                const int64_t* step) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  GANCU_CHECK(n <= (int64_t(1) << 34), "fill_noise: more than 2^34 values in one stream");
  CudaContext& ctx = context(ex);
  fill_noise_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(n, out, kind, seed, stream, step);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void gather_batch(const Exec& ex, const BatchGather& g, const uint8_t* images, const int64_t* step, T* out) {
  static_assert(std::is_same_v<T, float>);
  check_gather(g);
  if (g.image_elems <= 0) return;
  const bool vec =
      g.image_elems % 4 == 0 && (reinterpret_cast<uintptr_t>(images) & 3u) == 0 && aligned16(out);
  gather_batch_kernel<<<g.batch, kThreads, 0, stream_of(ex)>>>(g, images, step, out, vec);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void gather_labels(const Exec& ex, const BatchGather& g, const uint8_t* labels, const int64_t* step,
                   int32_t* out) {
  check_gather(g);
  gather_labels_kernel<<<(g.batch + kThreads - 1) / kThreads, kThreads, 0, stream_of(ex)>>>(g, labels, step,
                                                                                            out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void activation_forward<float>(const Exec&, int64_t, const float*, float*, Activation);
template void activation_backward<float>(const Exec&, int64_t, const float*, const float*, float*, bool,
                                         Activation);
template void dropout_forward<float>(const Exec&, int64_t, const float*, float*, float, uint64_t, uint32_t,
                                     const int64_t*);
template void dropout_backward<float>(const Exec&, int64_t, const float*, float*, bool, float, uint64_t,
                                      uint32_t, const int64_t*);
template void fill<float>(const Exec&, int64_t, float*, float);
template void add_into<float>(const Exec&, int64_t, const float*, float*);
template void add<float>(const Exec&, int64_t, const float*, const float*, float*);
template void activation_second_order<float>(const Exec&, int64_t, const float*, const float*, const float*,
                                             const float*, float*, Activation);
template void increment_counter<float>(const Exec&, int64_t*);
template void fill_noise<float>(const Exec&, int64_t, float*, NoiseKind, uint64_t, uint32_t, const int64_t*);
template void gather_batch<float>(const Exec&, const BatchGather&, const uint8_t*, const int64_t*, float*);
template void gather_labels<float>(const Exec&, const BatchGather&, const uint8_t*, const int64_t*, int32_t*);

}  // namespace gancu::cuda
