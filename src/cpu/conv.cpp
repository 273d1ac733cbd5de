// 2-d convolution and transposed convolution on the CPU, NHWC, filter KRSC, lowered to GEMM.
//
// Three products cover both ops (M = images * p * q, col = im2col of an [n, h, w, c] tensor):
//   conv forward      out[M, k]  = col(x) w^T              (a "forward" product)
//   conv data grad    col2im(g[M, k] w)                     (the adjoint: an [n, h, w, c] result)
//   conv weight grad  dw[k, rsc] += g^T col(x)
// A transposed convolution is the adjoint of the convolution with the same dims, so its forward
// is the data-gradient product, its data gradient is the forward product, and its weight gradient
// is the weight-gradient product with the image-shaped tensor (its dy) and the pixel-shaped one
// (its x) trading places.
//
// The batch runs in chunks of images so that the column matrix stays within a fixed budget of
// workspace at any batch size (and, being small, mostly in cache between im2col and the GEMM).
// Pointwise convolutions need no columns at all: the image is its own column matrix. Convolutions
// with few filters skip the lowering and use the direct loops of conv_direct.h.
#include <algorithm>

#include "cpu/activation_math.h"
#include "cpu/blas.h"
#include "cpu/conv_direct.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

size_t column_bytes_per_image(const ConvDims& d, size_t elem) {
  return size_t(d.p) * d.q * d.r * d.s * d.c * elem;
}

// Pointwise convolutions are one GEMM whatever k is; others with few filters run direct.
bool use_direct(const ConvDims& d) {
  return !conv_is_pointwise(d) && conv_use_direct(d);
}
bool uses_columns(const ConvDims& d) {
  return !conv_is_pointwise(d) && !use_direct(d);
}

// Images per chunk: as many as fit the budget, at least one.
int chunk_images(const ConvDims& d, size_t elem) {
  if (!uses_columns(d)) return std::max(d.n, 1);
  const size_t per_image = std::max<size_t>(column_bytes_per_image(d, elem), 1);
  return int(std::clamp<size_t>(conv_column_budget_bytes() / per_image, 1, size_t(std::max(d.n, 1))));
}

template <class T>
struct ConvPlan {
  ConvDims d;
  int chunk;    // images per chunk
  T* ws;        // column matrix of one chunk (null for pointwise)
  int64_t img;  // h * w * c: elements of one image-shaped tensor
  int64_t pix;  // p * q * k: elements of one pixel-shaped tensor
  int64_t rsc;  // one column-matrix row
};

template <class T>
ConvPlan<T> make_plan(const Exec& ex, const ConvDims& d, const char* who) {
  ConvPlan<T> pl{d,
                 chunk_images(d, sizeof(T)),
                 nullptr,
                 int64_t(d.h) * d.w * d.c,
                 int64_t(d.p) * d.q * d.k,
                 int64_t(d.r) * d.s * d.c};
  if (uses_columns(d))
    pl.ws =
        static_cast<T*>(ex.require_workspace(size_t(pl.chunk) * column_bytes_per_image(d, sizeof(T)), who));
  return pl;
}

// The column matrix of nb images [nb, h, w, c]: the images themselves when pointwise.
template <class T>
const T* columns(const ConvPlan<T>& pl, int nb, const T* image) {
  if (!pl.ws) return image;
  im2col(pl.d, nb, image, pl.ws);
  return pl.ws;
}

// image[nb, h, w, c] (+)= col2im(g[nb p q, k] w), then act(. + bias).
template <class T>
void data_grad_chunk(const ConvPlan<T>& pl, int nb, const T* g, const T* w, T* image, bool accumulate,
                     const T* bias, Activation act) {
  const ConvDims& d = pl.d;
  const int m = nb * d.p * d.q;
  if (!pl.ws) {
    blas::gemm(false, false, m, d.c, d.k, T(1), g, d.k, w, d.c, accumulate ? T(1) : T(0), image, d.c);
    bias_act_rows_parallel<T>(m, d.c, image, bias, act);
    return;
  }
  blas::gemm(false, false, m, int(pl.rsc), d.k, T(1), g, d.k, w, int(pl.rsc), T(0), pl.ws, int(pl.rsc));
  col2im(d, nb, pl.ws, image, accumulate, bias, act);
}

// Calls f(n0, nb) for each chunk of images.
template <class T, class F>
void for_each_chunk(const ConvPlan<T>& pl, F&& f) {
  for (int n0 = 0; n0 < pl.d.n; n0 += pl.chunk) f(n0, std::min(pl.chunk, pl.d.n - n0));
}

}  // namespace

size_t& conv_column_budget_bytes() {
  // 16 MiB: large enough for GEMMs of thousands of rows, small enough that the columns are still
  // in cache when col2im or the GEMM reads them back (measured: 16 MiB is a few percent faster
  // than 64 MiB on the DCGAN shapes; 4 MiB and less is slower).
  static size_t budget = size_t(16) << 20;
  return budget;
}

template <class T>
size_t conv_workspace_bytes(const Exec&, const ConvDims& d, bool, ConvPasses) {
  // Both ops and both directions use one column matrix of one chunk.
  if (!uses_columns(d)) return 0;
  return size_t(chunk_images(d, sizeof(T))) * column_bytes_per_image(d, sizeof(T));
}

template <class T>
void conv2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  if (use_direct(d)) {
    conv_direct_forward(d, x, w, y, false);
    bias_act_rows_parallel<T>(int64_t(d.n) * d.p * d.q, d.k, y, b, act);
    return;
  }
  const ConvPlan<T> pl = make_plan<T>(ex, d, "conv2d");
  for_each_chunk(pl, [&](int n0, int nb) {
    const int m = nb * d.p * d.q;
    T* yc = y + n0 * pl.pix;
    const T* col = columns(pl, nb, x + n0 * pl.img);
    blas::gemm(false, true, m, d.k, int(pl.rsc), T(1), col, int(pl.rsc), w, int(pl.rsc), T(0), yc, d.k);
    bias_act_rows_parallel<T>(m, d.k, yc, b, act);
  });
}

template <class T>
void conv2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  act_backward_inplace<T>(d.y_elems(), y, dy, act);
  if (db) column_sums_add<T>(dy, int64_t(d.n) * d.p * d.q, d.k, db);
  if (!dw && !dx) return;
  if (use_direct(d)) {
    if (dw) conv_direct_weight_grad(d, x, dy, dw);
    if (dx) conv_direct_adjoint(d, dy, w, dx, accumulate_dx);
    return;
  }
  const ConvPlan<T> pl = make_plan<T>(ex, d, "conv2d");
  for_each_chunk(pl, [&](int n0, int nb) {
    const int m = nb * d.p * d.q;
    const T* g = dy + n0 * pl.pix;
    if (dw) {  // dw[k, rsc] += g[m, k]^T col(x)[m, rsc]
      const T* col = columns(pl, nb, x + n0 * pl.img);
      blas::gemm(true, false, d.k, int(pl.rsc), m, T(1), g, d.k, col, int(pl.rsc), T(1), dw, int(pl.rsc));
    }
    if (dx)
      data_grad_chunk(pl, nb, g, w, dx + n0 * pl.img, accumulate_dx, static_cast<const T*>(nullptr),
                      Activation{});
  });
}

template <class T>
void conv_transpose2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                              Activation act) {
  if (use_direct(d)) {
    conv_direct_adjoint(d, x, w, y, false);
    bias_act_rows_parallel<T>(int64_t(d.n) * d.h * d.w, d.c, y, b, act);
    return;
  }
  const ConvPlan<T> pl = make_plan<T>(ex, d, "conv_transpose2d");
  for_each_chunk(pl, [&](int n0, int nb) {
    data_grad_chunk(pl, nb, x + n0 * pl.pix, w, y + n0 * pl.img, false, b, act);
  });
}

template <class T>
void conv_transpose2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy,
                               T* dx, bool accumulate_dx, T* dw, T* db, Activation act) {
  act_backward_inplace<T>(d.x_elems(), y, dy, act);
  if (db) column_sums_add<T>(dy, int64_t(d.n) * d.h * d.w, d.c, db);
  if (!dw && !dx) return;
  if (use_direct(d)) {
    if (dw) conv_direct_weight_grad(d, dy, x, dw);
    if (dx) conv_direct_forward(d, dy, w, dx, accumulate_dx);
    return;
  }
  const ConvPlan<T> pl = make_plan<T>(ex, d, "conv_transpose2d");
  for_each_chunk(pl, [&](int n0, int nb) {
    const int m = nb * d.p * d.q;
    // One column matrix of the image-shaped dy serves both products.
    const T* col = columns(pl, nb, dy + n0 * pl.img);
    if (dw)  // dw[k, rsc] += x[m, k]^T col(dy)[m, rsc]
      blas::gemm(true, false, d.k, int(pl.rsc), m, T(1), x + n0 * pl.pix, d.k, col, int(pl.rsc), T(1), dw,
                 int(pl.rsc));
    if (dx)  // dx[m, k] (+)= col(dy)[m, rsc] w[k, rsc]^T
      blas::gemm(false, true, m, d.k, int(pl.rsc), T(1), col, int(pl.rsc), w, int(pl.rsc),
                 accumulate_dx ? T(1) : T(0), dx + n0 * pl.pix, d.k);
  });
}

#define GANCU_INSTANTIATE(T)                                                                                 \
  template size_t conv_workspace_bytes<T>(const Exec&, const ConvDims&, bool, ConvPasses);                   \
  template void conv2d_forward<T>(const Exec&, const ConvDims&, const T*, const T*, const T*, T*,            \
                                  Activation);                                                               \
  template void conv2d_backward<T>(const Exec&, const ConvDims&, const T*, const T*, const T*, T*, T*, bool, \
                                   T*, T*, Activation);                                                      \
  template void conv_transpose2d_forward<T>(const Exec&, const ConvDims&, const T*, const T*, const T*, T*,  \
                                            Activation);                                                     \
  template void conv_transpose2d_backward<T>(const Exec&, const ConvDims&, const T*, const T*, const T*, T*, \
                                             T*, bool, T*, T*, Activation);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
