#include "gancu/op_types.h"

#include "gancu/check.h"

namespace gancu {

const char* act_name(Act a) {
  switch (a) {
    case Act::None:
      return "none";
    case Act::ReLU:
      return "relu";
    case Act::LeakyReLU:
      return "lrelu";
    case Act::Tanh:
      return "tanh";
    case Act::Sigmoid:
      return "sigmoid";
  }
  return "?";
}

ConvDims ConvDims::conv(int n, int h, int w, int c, int k, int r, int s, int stride, int pad) {
  return conv(n, h, w, c, k, r, s, stride, pad, pad);
}

ConvDims ConvDims::conv(int n, int h, int w, int c, int k, int r, int s, int stride, int pad_h, int pad_w) {
  ConvDims d{n, h, w, c, k, r, s, stride, pad_h, pad_w, 0, 0};
  if (stride < 1 || pad_h < 0 || pad_w < 0 || r < 1 || s < 1)
    usage_error("convolution: kernel, stride and padding must be positive");
  if (h + 2 * pad_h < r || w + 2 * pad_w < s)
    usage_error("convolution: a ", r, "x", s, " kernel does not fit a ", h, "x", w, " input padded by ",
                pad_h, "x", pad_w);
  d.p = (h + 2 * pad_h - r) / stride + 1;
  d.q = (w + 2 * pad_w - s) / stride + 1;
  return d;
}

ConvDims ConvDims::transposed(int n, int p, int q, int k, int c, int r, int s, int stride, int pad) {
  return transposed(n, p, q, k, c, r, s, stride, pad, pad);
}

ConvDims ConvDims::transposed(int n, int p, int q, int k, int c, int r, int s, int stride, int pad_h,
                              int pad_w) {
  if (stride < 1 || pad_h < 0 || pad_w < 0 || r < 1 || s < 1)
    usage_error("transposed convolution: kernel, stride and padding must be positive");
  const int h = (p - 1) * stride - 2 * pad_h + r;
  const int w = (q - 1) * stride - 2 * pad_w + s;
  if (h < 1 || w < 1) usage_error("transposed convolution: output would be ", h, "x", w);
  ConvDims d = conv(n, h, w, c, k, r, s, stride, pad_h, pad_w);
  GANCU_CHECK(d.p == p && d.q == q, "transposed convolution dims do not round-trip");
  return d;
}

PoolDims PoolDims::make(int n, int h, int w, int c, int k, int stride, int pad, bool include_pad) {
  if (k < 1 || stride < 1 || pad < 0)
    usage_error("pooling: kernel and stride must be positive, padding >= 0");
  if (pad * 2 > k) usage_error("pooling: padding ", pad, " is more than half the kernel ", k);
  if (h + 2 * pad < k || w + 2 * pad < k)
    usage_error("pooling: a ", k, "x", k, " window does not fit a ", h, "x", w, " input padded by ", pad);
  PoolDims d{n, h, w, c, k, stride, pad, 0, 0, include_pad};
  d.p = (h + 2 * pad - k) / stride + 1;
  d.q = (w + 2 * pad - k) / stride + 1;
  return d;
}

void check_layernorm_dims(const LayerNormDims& d, const char* op) {
  GANCU_CHECK(d.rows >= 0 && d.cols >= 1 && d.channels >= 1 && d.cols % d.channels == 0, op, ": ", d.cols,
              " columns do not hold whole positions of ", d.channels, " channels");
}

void check_embedding_dims(const EmbeddingDims& d, const char* op) {
  GANCU_CHECK(d.samples >= 0 && d.classes >= 1 && d.dim >= 1, op, ": ", d.samples, " samples, ", d.classes,
              " classes, ", d.dim, " values per class");
}

void check_concat_part(const ConcatPart& part, const char* op) {
  GANCU_CHECK(part.samples >= 0 && part.positions >= 1 && part.src_channels >= 0 && part.offset >= 0 &&
                  part.offset + part.src_channels <= part.dst_channels,
              op, ": channels [", part.offset, ", ", part.offset + part.src_channels, ") do not fit ",
              part.dst_channels);
}

void check_mbdisc_dims(const MinibatchDiscDims& d, const char* op) {
  GANCU_CHECK(d.batch >= 0 && d.kernels >= 1 && d.dims >= 1 && d.ldo >= d.kernels, op, ": ", d.kernels,
              " kernels of ", d.dims, " dims do not fit rows of ", d.ldo, " values");
}

void check_mbstd_dims(const MinibatchStdDims& d, const char* op) {
  GANCU_CHECK(d.batch >= 0 && d.positions >= 1 && d.channels >= 1 && d.eps > 0.0f, op,
              ": needs positions >= 1, channels >= 1 and eps > 0");
}

void check_resize_dims(const ResizeDims& d, const char* op) {
  GANCU_CHECK(d.n >= 0 && d.h >= 1 && d.w >= 1 && d.c >= 1 && d.out_h >= 1 && d.out_w >= 1, op,
              ": cannot resize ", d.h, "x", d.w, "x", d.c, " images to ", d.out_h, "x", d.out_w);
}

}  // namespace gancu
