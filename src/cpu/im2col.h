// Lowering a convolution to GEMM, NHWC: the column matrix of a batch of images and its adjoint.
//
// col is [nb * p * q, r * s * c]: row (n, p, q) holds the receptive field of output pixel (p, q),
// tap (r, s) at columns [(r s_count + s) c, +c), zeros where the tap falls into the padding. In
// NHWC the taps s of one filter row r read consecutive pixels of one image row, so each (n, p,
// q, r) is one contiguous copy of up to s*c values: the lowering is a sequence of memcpy calls.
#pragma once

#include <cstddef>
#include <vector>

#include "gancu/op_types.h"

namespace gancu::cpu {

// True when col would equal the image itself ([n h w, c]): 1x1 kernel, stride 1, no padding.
inline bool conv_is_pointwise(const ConvDims& d) {
  return d.r == 1 && d.s == 1 && d.stride == 1 && d.pad_h == 0 && d.pad_w == 0;
}

// The taps of a convolution that land on image position x (a row h or a column w): pairs
// (tap, output position) with x = out * stride - pad + tap (pad: that axis's padding), found without a
// division per tap (the inner loops of col2im would otherwise divide for every tap of every pixel).
struct TapTable {
  std::vector<int> first, count, tap, out;  // entries [first[x], first[x] + count[x]) of tap/out
  TapTable(int size, int taps, int outs, int stride, int pad) : first(size_t(size)), count(size_t(size)) {
    for (int x = 0; x < size; ++x) {
      first[size_t(x)] = int(tap.size());
      for (int t = (x + pad) % stride; t < taps; t += stride) {
        const int o = (x + pad - t) / stride;
        if (o < 0) break;
        if (o >= outs) continue;
        tap.push_back(t);
        out.push_back(o);
      }
      count[size_t(x)] = int(tap.size()) - first[size_t(x)];
    }
  }
};

// The table for these arguments, built on first use and kept (per thread) afterwards, so that a
// training step builds none: the loop must not allocate.
const TapTable& cached_tap_table(int size, int taps, int outs, int stride, int pad);

// Bytes of column matrix that one chunk of images may use (the convolution ops run the batch in
// chunks of images that fit it, at least one image). A knob so that tests can force many chunks
// and benchmarks can tune it; change it only before planning workspaces (conv_workspace_bytes).
size_t& conv_column_budget_bytes();

// col = im2col(img) for images [0, nb) of img [nb, h, w, c].
template <class T>
void im2col(const ConvDims& d, int nb, const T* img, T* col);

// img = col2im(col), or img += col2im(col) when `accumulate`: each pixel (n, h, w) gets the sum of
// every col entry whose tap lands on it. Then, per pixel, img = act(img + bias) (bias may be
// null). Written as a gather over output pixels, so that rows are independent (parallel without
// atomics, deterministic) and the epilogue runs while the row is in cache.
template <class T>
void col2im(const ConvDims& d, int nb, const T* col, T* img, bool accumulate, const T* bias, Activation act);

}  // namespace gancu::cpu
