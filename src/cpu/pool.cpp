// Max and average pooling on the CPU, NHWC: x [n, h, w, c] -> y [n, p, q, c] (see PoolDims).
//
// Forward walks each output row (n, p) and each window in row-major order, channels innermost
// (contiguous in NHWC, so the channel loops vectorize).
//
// Backward is a gather over input pixels: dx[n, h, w, :] sums the dy of every window that covers
// (h, w). Overlapping windows (stride < k) therefore add into dx without races, and each pixel's
// sum runs in a fixed order (windows by increasing p, then q), so the result does not depend on
// the thread count. Max pooling keeps no index buffer: a pixel receives a window's dy when it is
// the first position of that window (row-major) whose value equals the window's output y. Max
// pooling propagates NaN (as PyTorch): a window holding a NaN outputs NaN, and its gradient goes
// to its first NaN.
//
// The tangent of max pooling (maxpool2d_jvp) follows the same rule forward: each output takes the
// tangent of its window's first position that holds the output value (0 if none does, which only
// a y that is not this x's maximum can cause).
#include <algorithm>

#include "cpu/parallel.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// The valid tap range [lo, hi) of a window that starts at `start` over an axis of `size` pixels.
inline void window_range(int start, int k, int size, int& lo, int& hi) {
  lo = std::max(0, -start);
  hi = std::min(k, size - start);
}

// The windows along one axis that cover pixel `i`: [first, last], empty when first > last.
inline void covering_windows(int i, int k, int stride, int pad, int out, int& first, int& last) {
  // Window o covers [o s - pad, o s - pad + k): o s <= i + pad and o s > i + pad - k.
  const int hi = i + pad;
  first = hi - k + 1 <= 0 ? 0 : (hi - k + 1 + stride - 1) / stride;
  last = std::min(out - 1, hi / stride);
}

template <class T>
inline bool same_value(T a, T b) {
  return a == b || (a != a && b != b);  // NaN matches NaN: the max of a window holding a NaN
}

// Parallel over `rows` rows of `row_work` values each, when there is enough work.
template <class F>
void for_rows(int64_t rows, int64_t row_work, F&& f) {
#pragma omp parallel for schedule(static) if (rows * row_work > kParallelMinWork && rows > 1)
  for (int64_t r = 0; r < rows; ++r) f(r);
}

// One output position's window: its valid taps [r0, r1) x [s0, s1) and the offsets (of channel 0)
// of its output and of its taps.
struct Window {
  int64_t out;   // y[n, p, q, 0]
  int64_t base;  // x[n, h0, w0, 0], h0 and w0 possibly in the padding: only valid taps are read
  int64_t row_stride, pixel_stride;
  int r0, r1, s0, s1;
  int64_t tap(int r, int s) const { return base + r * row_stride + s * pixel_stride; }
};

// f(window) for every output position, in parallel over the output rows (n, p).
template <class F>
void for_each_window(const PoolDims& d, F&& f) {
  const int64_t C = d.c;
  for_rows(int64_t(d.n) * d.p, int64_t(d.q) * C * d.k * d.k, [&](int64_t row) {
    const int n = int(row / d.p), p = int(row % d.p);
    const int h0 = p * d.stride - d.pad;
    Window win;
    win.row_stride = int64_t(d.w) * C;
    win.pixel_stride = C;
    window_range(h0, d.k, d.h, win.r0, win.r1);
    for (int q = 0; q < d.q; ++q) {
      const int w0 = q * d.stride - d.pad;
      window_range(w0, d.k, d.w, win.s0, win.s1);
      win.out = (row * d.q + q) * C;
      win.base = ((int64_t(n) * d.h + h0) * d.w + w0) * C;
      f(win);
    }
  });
}

void check_dims(const PoolDims& d, const char* what) {
  // pad <= k / 2 (PoolDims::make): every window holds at least one pixel.
  GANCU_CHECK(d.k >= 1 && d.stride >= 1 && d.pad >= 0 && d.p >= 1 && d.q >= 1 && 2 * d.pad <= d.k, what,
              ": bad PoolDims");
}

}  // namespace

template <class T>
void maxpool2d_forward(const Exec&, const PoolDims& d, const T* x, T* y) {
  check_dims(d, "maxpool2d_forward");
  const int64_t C = d.c;
  for_each_window(d, [&](const Window& win) {
    T* yo = y + win.out;
    bool first = true;
    for (int r = win.r0; r < win.r1; ++r)
      for (int s = win.s0; s < win.s1; ++s) {
        const T* xi = x + win.tap(r, s);
        if (first) {
          std::copy(xi, xi + C, yo);
          first = false;
          continue;
        }
        // Strictly greater: the first position holding the max wins; a NaN, once there, stays.
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) yo[c] = (xi[c] > yo[c] || xi[c] != xi[c]) ? xi[c] : yo[c];
      }
  });
}

template <class T>
void maxpool2d_backward(const Exec&, const PoolDims& d, const T* x, const T* y, const T* dy, T* dx,
                        bool accumulate_dx) {
  check_dims(d, "maxpool2d_backward");
  if (!dx) return;
  const int64_t C = d.c;
  const int k = d.k;
  for_rows(int64_t(d.n) * d.h, int64_t(d.w) * C * k * k, [&](int64_t row) {
    const int n = int(row / d.h), h = int(row % d.h);
    int p_first, p_last;
    covering_windows(h, k, d.stride, d.pad, d.p, p_first, p_last);
    for (int w = 0; w < d.w; ++w) {
      int q_first, q_last;
      covering_windows(w, k, d.stride, d.pad, d.q, q_first, q_last);
      const T* xi = x + ((int64_t(n) * d.h + h) * d.w + w) * C;
      T* dxi = dx + ((int64_t(n) * d.h + h) * d.w + w) * C;
      if (!accumulate_dx) std::fill(dxi, dxi + C, T(0));
      for (int p = p_first; p <= p_last; ++p) {
        const int h0 = p * d.stride - d.pad;
        int r0, r1;
        window_range(h0, k, d.h, r0, r1);
        for (int q = q_first; q <= q_last; ++q) {
          const int w0 = q * d.stride - d.pad;
          int s0, s1;
          window_range(w0, k, d.w, s0, s1);
          const int64_t o = ((int64_t(n) * d.p + p) * d.q + q) * C;
          const T* yo = y + o;
          const T* dyo = dy + o;
          for (int64_t c = 0; c < C; ++c) {
            if (!same_value(xi[c], yo[c])) continue;
            // (h, w) holds the max; does an earlier position of the window hold it too?
            bool earlier = false;
            for (int r = r0; r < r1 && !earlier; ++r) {
              const int hh = h0 + r;
              if (hh > h) break;
              for (int s = s0; s < s1; ++s) {
                const int ww = w0 + s;
                if (hh == h && ww >= w) break;
                if (same_value(x[((int64_t(n) * d.h + hh) * d.w + ww) * C + c], yo[c])) {
                  earlier = true;
                  break;
                }
              }
            }
            if (!earlier) dxi[c] += dyo[c];
          }
        }
      }
    }
  });
}

template <class T>
void maxpool2d_jvp(const Exec&, const PoolDims& d, const T* x, const T* y, const T* tx, T* ty) {
  check_dims(d, "maxpool2d_jvp");
  for_each_window(d, [&](const Window& win) {
    for (int64_t c = 0; c < d.c; ++c) {
      // The first tap (row-major) that holds the window's output: where backward routes dy.
      T t = T(0);
      bool found = false;
      for (int r = win.r0; r < win.r1 && !found; ++r)
        for (int s = win.s0; s < win.s1; ++s) {
          const int64_t i = win.tap(r, s) + c;
          if (same_value(x[i], y[win.out + c])) {
            t = tx[i];
            found = true;
            break;
          }
        }
      ty[win.out + c] = t;
    }
  });
}

// The divisor of an average pooling window with valid taps [r0, r1) x [s0, s1): k * k when the
// padding counts (as zeros), else the taps inside the image.
inline int avg_divisor(const PoolDims& d, int r0, int r1, int s0, int s1) {
  return d.include_pad ? d.k * d.k : (r1 - r0) * (s1 - s0);
}

template <class T>
void avgpool2d_forward(const Exec&, const PoolDims& d, const T* x, T* y) {
  check_dims(d, "avgpool2d_forward");
  const int64_t C = d.c;
  for_each_window(d, [&](const Window& win) {
    const T area = T(avg_divisor(d, win.r0, win.r1, win.s0, win.s1));
    T* yo = y + win.out;
    std::fill(yo, yo + C, T(0));
    for (int r = win.r0; r < win.r1; ++r)
      for (int s = win.s0; s < win.s1; ++s) {
        const T* xi = x + win.tap(r, s);
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) yo[c] += xi[c];
      }
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yo[c] /= area;
  });
}

template <class T>
void avgpool2d_backward(const Exec&, const PoolDims& d, const T* dy, T* dx, bool accumulate_dx) {
  check_dims(d, "avgpool2d_backward");
  if (!dx) return;
  const int64_t C = d.c;
  for_rows(int64_t(d.n) * d.h, int64_t(d.w) * C * d.k * d.k, [&](int64_t row) {
    const int n = int(row / d.h), h = int(row % d.h);
    int p_first, p_last;
    covering_windows(h, d.k, d.stride, d.pad, d.p, p_first, p_last);
    for (int w = 0; w < d.w; ++w) {
      int q_first, q_last;
      covering_windows(w, d.k, d.stride, d.pad, d.q, q_first, q_last);
      T* dxi = dx + ((int64_t(n) * d.h + h) * d.w + w) * C;
      if (!accumulate_dx) std::fill(dxi, dxi + C, T(0));
      for (int p = p_first; p <= p_last; ++p) {
        int r0, r1;
        window_range(p * d.stride - d.pad, d.k, d.h, r0, r1);
        for (int q = q_first; q <= q_last; ++q) {
          int s0, s1;
          window_range(q * d.stride - d.pad, d.k, d.w, s0, s1);
          const T area = T(avg_divisor(d, r0, r1, s0, s1));
          const T* dyo = dy + ((int64_t(n) * d.p + p) * d.q + q) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dxi[c] += dyo[c] / area;
        }
      }
    }
  });
}

#define GANCU_INSTANTIATE(T)                                                                                 \
  template void maxpool2d_forward<T>(const Exec&, const PoolDims&, const T*, T*);                            \
  template void maxpool2d_backward<T>(const Exec&, const PoolDims&, const T*, const T*, const T*, T*, bool); \
  template void maxpool2d_jvp<T>(const Exec&, const PoolDims&, const T*, const T*, const T*, T*);            \
  template void avgpool2d_forward<T>(const Exec&, const PoolDims&, const T*, T*);                            \
  template void avgpool2d_backward<T>(const Exec&, const PoolDims&, const T*, T*, bool);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
