// Lowering a convolution to GEMM, NHWC: the column matrix of a batch of images and its adjoint.
//
// col is [nb * p * q, r * s * c]: row (n, p, q) holds the receptive field of output pixel (p, q),
// tap (r, s) at columns [(r s_count + s) c, +c), zeros where the tap falls into the padding. In
// NHWC the taps s of one filter row r read consecutive pixels of one image row, so each (n, p,
// q, r) is one contiguous copy of up to s*c values: the lowering is a sequence of memcpy calls.
#pragma once

#include <cstddef>

#include "gancu/op_types.h"

namespace gancu::cpu {

// True when col would equal the image itself ([n h w, c]): 1x1 kernel, stride 1, no padding.
inline bool conv_is_pointwise(const ConvDims& d) {
  return d.r == 1 && d.s == 1 && d.stride == 1 && d.pad == 0;
}

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
