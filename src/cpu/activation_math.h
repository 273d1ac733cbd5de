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

#include "gancu/op_types.h"

namespace gancu::cpu {

template <class T>
inline T sigmoid(T x) {
  // Split on the sign so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
inline T act_forward(T x, Act kind, T slope) {
  switch (kind) {
    case Act::None:
      return x;
    case Act::ReLU:
      return x > T(0) ? x : T(0);
    case Act::LeakyReLU:
      return x > T(0) ? x : slope * x;
    case Act::Tanh:
      return std::tanh(x);
    case Act::Sigmoid:
      return sigmoid(x);
  }
  return x;
}

// d act / d pre, expressed through y = act(pre).
template <class T>
inline T act_grad_from_output(T y, Act kind, T slope) {
  switch (kind) {
    case Act::None:
      return T(1);
    case Act::ReLU:
      return y > T(0) ? T(1) : T(0);
    case Act::LeakyReLU:
      return y > T(0) ? T(1) : slope;
    case Act::Tanh:
      return T(1) - y * y;
    case Act::Sigmoid:
      return y * (T(1) - y);
  }
  return T(1);
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
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
      return;
    case Act::LeakyReLU:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
      return;
    case Act::Tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
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
