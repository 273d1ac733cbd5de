// Direct (column-free) convolution products for convolutions with few filters (small k).
//
// With k of 1 to 4, the GEMMs of the column method have an output dimension of k: they are
// memory bound on a column matrix r*s times the size of the image (115 MB for DCGAN's last
// 28x28x64 -> 28x28x1 layer at batch 64), so lowering costs far more than the arithmetic. These
// loops instead walk the image in place: for one output pixel and filter row r, the taps s read
// consecutive pixels of one image row (NHWC), so each product is one contiguous dot product (or
// axpy) of s*c values, with the image row hot in L1.
#pragma once

#include "gancu/op_types.h"

namespace gancu::cpu {

// Where the direct products beat the column method (checked in bench/cpu_ops_bench.cpp).
inline bool conv_use_direct(const ConvDims& d) {
  return d.k <= 4;
}

// pix[n, p, q, k] (+)= sum over taps of img[n, h, w, c] w[k, r, s, c]   (the convolution)
template <class T>
void conv_direct_forward(const ConvDims& d, const T* img, const T* w, T* pix, bool accumulate);

// img[n, h, w, c] (+)= its adjoint: every pixel's k values spread back over its taps
template <class T>
void conv_direct_adjoint(const ConvDims& d, const T* pix, const T* w, T* img, bool accumulate);

// dw[k, r, s, c] += sum over n, p, q of pix[n, p, q, k] img[n, h, w, c]
template <class T>
void conv_direct_weight_grad(const ConvDims& d, const T* img, const T* pix, T* dw);

}  // namespace gancu::cpu
