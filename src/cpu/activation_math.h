// The activation formulas, shared by every op that fuses an activation (linear, conv, transposed
// conv, batch norm) and by the standalone activation ops, so that all of them agree bit for bit.
//
// Derivatives are taken from the output y, never from the pre-activation: the backward ops then
// need no extra buffer. That works because each activation is monotonic, so y determines the
// branch (relu, lrelu with slope > 0) or the derivative is a function of y (tanh, sigmoid).
//
// The array helpers switch on the kind once, outside the loop, so the loops vectorize.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "gancu/op_types.h"

namespace gancu::cpu {

template <class T>
inline T sigmoid(T x) {
  // Split on the sign so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// exp(y) for float y in [-87, 88] (the caller clamps), in a form the compiler vectorizes (no libm
// call, no branch): range reduction y = k ln2 + r with |r| <= ln2/2 and a degree-7 Taylor
// polynomial for exp(r) (error < 1e-8 relative before rounding), scaled by 2^k through the
// exponent bits.
inline float exp_in_range_vectorizable(float y) {
  // k = round(y / ln2) by the 1.5 * 2^23 trick: adding it leaves the integer in the low mantissa
  // bits. floorf and float-to-int conversions would stop the loop from vectorizing.
  const float shifted = y * 1.44269504088896341f + 12582912.0f;
  const uint32_t ki =
      __builtin_bit_cast(uint32_t, shifted) - 0x4B400000u;  // unsigned: k < 0 and NaN wrap, no UB
  const float k = shifted - 12582912.0f;
  const float r = (y - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;  // ln2 = hi + lo
  float e = 1.0f / 5040.0f;
  e = e * r + 1.0f / 720.0f;
  e = e * r + 1.0f / 120.0f;
  e = e * r + 1.0f / 24.0f;
  e = e * r + 1.0f / 6.0f;
  e = e * r + 0.5f;
  e = e * r + 1.0f;
  e = e * r + 1.0f;
  const uint32_t bits = (ki + 127u) << 23;     // 2^k, -126 <= k <= 127
  return e * __builtin_bit_cast(float, bits);  // memcpy would block vectorization
}

// tanh for float in a form the compiler vectorizes (no libm call, no branch): glibc's tanhf is
// scalar and costs ~15 ns, which made tanh the most expensive part of a generator's output
// layer. Accurate to a few ulp (tests/cpu_elementwise_test.cpp checks 4 ulp against double):
//   |x| < 0.55: the odd Taylor series to x^17 (next term < 1e-8 relative);
//   otherwise:  1 - 2 / (exp(2|x|) + 1) with the sign of x (exp_in_range_vectorizable);
//   |2x| is clamped at 20, where tanh is 1 in float.
inline float tanh_vectorizable(float x) {
  const float a = std::fabs(x), x2 = x * x;
  float p = 6404582.0f / 10854718875.0f;
  p = p * x2 - 929569.0f / 638512875.0f;
  p = p * x2 + 21844.0f / 6081075.0f;
  p = p * x2 - 1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = x + x * x2 * p;

  const float y = 2.0f * a > 20.0f ? 20.0f : 2.0f * a;  // not fmin: a libm call; NaN stays NaN
  const float big = std::copysign(1.0f - 2.0f / (exp_in_range_vectorizable(y) + 1.0f), x);
  return a < 0.55f ? small : big;
}

// exp(x) for x <= 0 in float, in a form the compiler vectorizes (glibc's expf is a scalar call),
// for the pairwise kernels of minibatch discrimination, which take one exp per pair of samples
// per kernel (tests/cpu_minibatch_test.cpp checks 4 ulp against double). x is clamped at -87 (exp(-87)
// ~ 1.6e-38, the smallest normal floats), so the result is never denormal; NaN stays NaN.
inline float exp_nonpositive_vectorizable(float x) {
  return exp_in_range_vectorizable(x < -87.0f ? -87.0f : x);
}

// y[i] = act(x[i]) for i < n. x and y may alias. Serial: callers parallelize over rows.
template <class T>
inline void act_forward_array(int64_t n, const T* x, T* y, Activation act) {
  const T slope = T(act.slope);
  switch (act.kind) {
    case Act::None:
      if (x != y)
        for (int64_t i = 0; i < n; ++i) y[i] = x[i];
      return;
    case Act::ReLU:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN passes through, as in PyTorch
      return;
    case Act::LeakyReLU:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
      return;
    case Act::Tanh:
      if constexpr (std::is_same_v<T, float>) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) y[i] = tanh_vectorizable(x[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      }
      return;
    case Act::Sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
      return;
  }
}

// y[row, c] = act(y[row, c] + bias[c]) over `rows` rows of `cols`; bias may be null.
// Serial: callers parallelize over row blocks.
template <class T>
inline void bias_act_rows(int64_t rows, int64_t cols, T* y, const T* bias, Activation act) {
  if (bias) {
    for (int64_t r = 0; r < rows; ++r) {
      T* row = y + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
    }
  }
  if (act.kind != Act::None) act_forward_array(rows * cols, y, y, act);
}

// The same over a large [rows, cols] buffer, in parallel.
template <class T>
inline void bias_act_rows_parallel(int64_t rows, int64_t cols, T* y, const T* bias, Activation act) {
  if (!bias && act.kind == Act::None) return;
  // Blocks of ~16k values: large enough to amortize the scheduling, small enough to balance.
  const int64_t block = std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
    bias_act_rows(r1 - r0, cols, y + r0 * cols, bias, act);
  }
}

// g[i] = g[i] * act'(y[i]) (or into dst, which may alias g), and optionally dst += instead of =.
// Serial; see act_backward_parallel.
template <class T>
inline void act_backward_array(int64_t n, const T* y, const T* g, T* dst, bool accumulate, Activation act) {
  const T slope = T(act.slope);
  switch (act.kind) {
#define GANCU_ACT_BWD_LOOP(EXPR)                                          \
  if (accumulate) {                                                       \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) dst[i] += (EXPR); \
  } else {                                                                \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) dst[i] = (EXPR);  \
  }
    case Act::None:
      GANCU_ACT_BWD_LOOP(g[i]) return;
    case Act::ReLU:
      GANCU_ACT_BWD_LOOP(y[i] > T(0) ? g[i] : T(0)) return;
    case Act::LeakyReLU:
      GANCU_ACT_BWD_LOOP(y[i] > T(0) ? g[i] : slope * g[i]) return;
    case Act::Tanh:
      GANCU_ACT_BWD_LOOP(g[i] * (T(1) - y[i] * y[i])) return;
    case Act::Sigmoid:
      GANCU_ACT_BWD_LOOP(g[i] * (y[i] * (T(1) - y[i]))) return;
#undef GANCU_ACT_BWD_LOOP
  }
}

// g * act'(y) for one value: the same selects and products as act_backward_array.
template <class T>
inline T act_backward_one(T g, T y, Activation act) {
  switch (act.kind) {
    case Act::ReLU:
      return y > T(0) ? g : T(0);
    case Act::LeakyReLU:
      return y > T(0) ? g : T(act.slope) * g;
    case Act::Tanh:
      return g * (T(1) - y * y);
    case Act::Sigmoid:
      return g * (y * (T(1) - y));
    default:
      return g;
  }
}

// act''(z) / act'(z) as a function of y = act(z): tanh -2y, sigmoid 1 - 2y, 0 for the
// piecewise-linear ones. The second-order term of a tangent's backward is this times ty dty.
template <class T>
inline T act_curvature(T y, Act kind) {
  if (kind == Act::Tanh) return T(-2) * y;
  if (kind == Act::Sigmoid) return T(1) - T(2) * y;
  return T(0);
}

inline bool act_is_smooth(Act kind) {
  return kind == Act::Tanh || kind == Act::Sigmoid;
}

// Elementwise work over n values split into blocks for OpenMP. Small arrays stay serial: a
// parallel region costs a few microseconds.
template <class F>
inline void parallel_blocks(int64_t n, F&& f) {
  constexpr int64_t kBlock = 32768;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * kBlock;
    f(i0, std::min(n, i0 + kBlock));
  }
}

// The in-place first step of every backward with a fused activation: dy *= act'(y).
template <class T>
inline void act_backward_inplace(int64_t n, const T* y, T* dy, Activation act) {
  if (act.kind == Act::None) return;
  parallel_blocks(
      n, [&](int64_t i0, int64_t i1) { act_backward_array(i1 - i0, y + i0, dy + i0, dy + i0, false, act); });
}

}  // namespace gancu::cpu
