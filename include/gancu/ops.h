// Every numerical operation of gancu, declared once, and the one place that dispatches on the
// backend.
//
// Ops work on raw pointers into memory of the Exec's backend (host memory for the CPU, device
// memory for CUDA) and on the small shape structs of op_types.h. Each op has a CPU reference
// implementation in src/cpu/ (templated on float and double: double is the path that gradient
// checks use) and a CUDA implementation in kernels/ (float). Tests run both on the same inputs.
//
// Conventions shared by all ops:
// - Layout is NHWC; features are [n, c].
// - Backward ops take `dy`, the gradient of the op's output y, and may overwrite it (it becomes
//   the gradient of the pre-activation when an activation is fused): the caller guarantees
//   that dy is complete and no longer needed.
// - Parameter gradients (dw, db, dgamma, dbeta) always accumulate (+=): the trainer zeroes the
//   flat gradient buffer once per step, and a network run twice in one step (D on real, then on
//   fake) sums both contributions, as PyTorch does.
// - Input gradients: dx may be null (no gradient wanted); otherwise dx = dx_new, or
//   dx += dx_new when `accumulate_dx` (a buffer that several layers read gets the sum).
// - `step` arguments point to the int64 step counter in the backend's memory, so that a CUDA graph
//   captured once reads the current step at each replay.
#pragma once

#include <cstdint>
#include <type_traits>

#include "gancu/check.h"
#include "gancu/exec.h"
#include "gancu/op_types.h"

namespace gancu {

namespace cpu {
#include "gancu/ops_list.inc"
}  // namespace cpu

// The CUDA backend instantiates these for float only.
#if GANCU_HAVE_CUDA
namespace cuda {
#include "gancu/ops_list.inc"
}  // namespace cuda
#endif

}  // namespace gancu

// Dispatch: the CPU implementation for the CPU backend; the CUDA implementation (float only) for
// the CUDA backend.
#if GANCU_HAVE_CUDA
#define GANCU_DISPATCH(op, ...)                  \
  do {                                           \
    if (ex.on_cuda()) {                          \
      if constexpr (std::is_same_v<T, float>) {  \
        ::gancu::cuda::op<T>(ex, __VA_ARGS__);   \
        return;                                  \
      } else {                                   \
        ::gancu::detail::no_double_on_cuda(#op); \
      }                                          \
    }                                            \
    ::gancu::cpu::op<T>(ex, __VA_ARGS__);        \
  } while (0)
#else
#define GANCU_DISPATCH(op, ...)                              \
  do {                                                       \
    if (ex.on_cuda()) ::gancu::detail::no_cuda_backend(#op); \
    ::gancu::cpu::op<T>(ex, __VA_ARGS__);                    \
  } while (0)
#endif

namespace gancu::ops {

// ---- Linear algebra -------------------------------------------------------------------------

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set.
template <class T>
void gemm(const Exec& ex, bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc) {
  GANCU_DISPATCH(gemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---- Layers: forward and backward -----------------------------------------------------------

// y = act(x w^T + b); b may be null.
template <class T>
void linear_forward(const Exec& ex, const LinearDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  GANCU_DISPATCH(linear_forward, d, x, w, b, y, act);
}
template <class T>
void linear_backward(const Exec& ex, const LinearDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  GANCU_DISPATCH(linear_backward, d, x, w, y, dy, dx, accumulate_dx, dw, db, act);
}

// Scratch bytes that the convolution ops below need from ex.workspace() for these dims, for the
// passes named (default: all). On CUDA this is where each shape's algorithms are chosen (once,
// cached; see kernels/conv.cu); the CPU's column buffer serves every pass.
template <class T>
size_t conv_workspace_bytes(const Exec& ex, const ConvDims& d, bool transposed, ConvPasses passes = {}) {
  if (ex.on_cuda()) {
#if GANCU_HAVE_CUDA
    if constexpr (std::is_same_v<T, float>) return cuda::conv_workspace_bytes<T>(ex, d, transposed, passes);
    detail::no_double_on_cuda("conv_workspace_bytes");
#else
    detail::no_cuda_backend("conv_workspace_bytes");
#endif
  }
  return cpu::conv_workspace_bytes<T>(ex, d, transposed, passes);
}

// y[n,p,q,k] = act(conv(x[n,h,w,c], w[k,r,s,c]) + b[k]); b may be null.
template <class T>
void conv2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  GANCU_DISPATCH(conv2d_forward, d, x, w, b, y, act);
}
template <class T>
void conv2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  GANCU_DISPATCH(conv2d_backward, d, x, w, y, dy, dx, accumulate_dx, dw, db, act);
}

// y[n,h,w,c] = act(conv_transpose(x[n,p,q,k], w[k,r,s,c]) + b[c]); b may be null.
template <class T>
void conv_transpose2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                              Activation act) {
  GANCU_DISPATCH(conv_transpose2d_forward, d, x, w, b, y, act);
}
template <class T>
void conv_transpose2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy,
                               T* dx, bool accumulate_dx, T* dw, T* db, Activation act) {
  GANCU_DISPATCH(conv_transpose2d_backward, d, x, w, y, dy, dx, accumulate_dx, dw, db, act);
}

// y = act(gamma * (x - mean) * invstd + beta) per channel. In Train and BatchOnly modes the batch
// statistics are computed and stored in save_mean / save_invstd ([channels], for backward); in
// Train mode running_mean / running_var are updated (unbiased variance, as PyTorch). In Eval
// mode the running statistics are used and save_* are not touched.
template <class T>
void batchnorm_forward(const Exec& ex, const BatchNormDims& d, BatchNormMode mode, const T* x, const T* gamma,
                       const T* beta, T* running_mean, T* running_var, T* save_mean, T* save_invstd, T* y,
                       Activation act) {
  GANCU_DISPATCH(batchnorm_forward, d, mode, x, gamma, beta, running_mean, running_var, save_mean,
                 save_invstd, y, act);
}
// Backward of a Train or BatchOnly forward (batch statistics).
template <class T>
void batchnorm_backward(const Exec& ex, const BatchNormDims& d, const T* x, const T* gamma,
                        const T* save_mean, const T* save_invstd, const T* y, T* dy, T* dx,
                        bool accumulate_dx, T* dgamma, T* dbeta, Activation act) {
  GANCU_DISPATCH(batchnorm_backward, d, x, gamma, save_mean, save_invstd, y, dy, dx, accumulate_dx, dgamma,
                 dbeta, act);
}

// y = act(x), elementwise over n values. x and y may alias.
template <class T>
void activation_forward(const Exec& ex, int64_t n, const T* x, T* y, Activation act) {
  GANCU_DISPATCH(activation_forward, n, x, y, act);
}
template <class T>
void activation_backward(const Exec& ex, int64_t n, const T* y, const T* dy, T* dx, bool accumulate_dx,
                         Activation act) {
  GANCU_DISPATCH(activation_backward, n, y, dy, dx, accumulate_dx, act);
}

// Inverted dropout: y = x * keep / (1 - p), keep drawn from (seed, stream, *step) per element.
// Backward redraws the same mask instead of storing it.
template <class T>
void dropout_forward(const Exec& ex, int64_t n, const T* x, T* y, float p, uint64_t seed, uint32_t stream,
                     const int64_t* step) {
  GANCU_DISPATCH(dropout_forward, n, x, y, p, seed, stream, step);
}
template <class T>
void dropout_backward(const Exec& ex, int64_t n, const T* dy, T* dx, bool accumulate_dx, float p,
                      uint64_t seed, uint32_t stream, const int64_t* step) {
  GANCU_DISPATCH(dropout_backward, n, dy, dx, accumulate_dx, p, seed, stream, step);
}

// ---- Losses ---------------------------------------------------------------------------------

// One adversarial loss term (op_types.h, LossTerm; `term` in backend memory, read at each call,
// so that a captured CUDA graph follows a change of target or scale) over n critic outputs, fused
// with its gradient:
//   loss = scale * mean_i f(l_i)
//   dlogits_i = scale * f'(l_i) / n                                 (written; skipped when null)
//   *loss_sum += loss; *score_sum += mean_i s(l_i)                    (each skipped when null)
// where s(l) = sigmoid(l) for BCE (D's probability) and s(l) = l for the other kinds (the raw
// critic score). f' of the hinge at its kink is taken as 0 (as PyTorch's relu backward).
// The sums live in device memory and are read by the host only every log_every steps. The
// non-saturating generator loss is BCE on D(G(z)) with t = 1.
template <class T>
void gan_loss(const Exec& ex, const LossTerm* term, int64_t n, const T* logits, T* dlogits, T* loss_sum,
              T* score_sum) {
  GANCU_DISPATCH(gan_loss, term, n, logits, dlogits, loss_sum, score_sum);
}

// BEGAN's reconstruction loss of an auto-encoder discriminator: L = mean |recon - x| over all
// batch * per_sample values. The term enters the objective as s * L with s = scale, times *k when
// k is not null (the equilibrium variable k_t in device memory, for D's fake term).
//   drecon = s * sign(recon - x) / N                        (written; skipped when null)
//   dx = -s * sign(recon - x) / N   (written, or added when accumulate_dx; skipped when null)
//   *loss_out = L (overwritten), *loss_sum += L             (each skipped when null; unscaled)
// sign(0) = 0, as PyTorch's abs backward.
template <class T>
void l1_reconstruction_loss(const Exec& ex, int64_t batch, int64_t per_sample, const T* x, const T* recon,
                            float scale, const T* k, T* drecon, T* dx, bool accumulate_dx, T* loss_out,
                            T* loss_sum) {
  GANCU_DISPATCH(l1_reconstruction_loss, batch, per_sample, x, recon, scale, k, drecon, dx, accumulate_dx,
                 loss_out, loss_sum);
}

// BEGAN's equilibrium update from one D step's losses (device scalars written by
// l1_reconstruction_loss): d = gamma * L_real - L_fake;
//   *k = clamp(*k + lambda_k * d, 0, 1);  *convergence_sum += L_real + |d|   (skipped when null)
template <class T>
void began_update(const Exec& ex, T* k, const T* loss_real, const T* loss_fake, float gamma, float lambda_k,
                  T* convergence_sum) {
  GANCU_DISPATCH(began_update, k, loss_real, loss_fake, gamma, lambda_k, convergence_sum);
}

// ---- Gradient penalties -------------------------------------------------------------------------

// WGAN-GP's points between real and fake samples: per sample i, eps_i = element i of Philox stream
// (seed, stream, *step), uniform in [0, 1);
//   out[i, :] = eps_i * a[i, :] + (1 - eps_i) * b[i, :];   eps_out[i] = eps_i (skipped when null).
template <class T>
void interpolate_samples(const Exec& ex, int64_t batch, int64_t per_sample, const T* a, const T* b, T* out,
                         T* eps_out, uint64_t seed, uint32_t stream, const int64_t* step) {
  GANCU_DISPATCH(interpolate_samples, batch, per_sample, a, b, out, eps_out, seed, stream, step);
}

// DRAGAN's points near the real samples (Kodali et al. 2017, their code): sigma = the standard
// deviation of all batch * per_sample values of x (unbiased, as torch.std); per sample i
// alpha_i = element i of Philox stream (seed, stream, *step) and per value j of the batch
// u_j = element batch + j of the same stream, both uniform in [0, 1);
//   out[i, j] = x[i, j] + (1 - alpha_i) * spread * sigma * u_ij
// (spread = 0.5 in the paper). alpha_out [batch] and u_out [batch, per_sample] receive the draws
// (each skipped when null).
template <class T>
void perturb_samples(const Exec& ex, int64_t batch, int64_t per_sample, const T* x, float spread, T* out,
                     T* alpha_out, T* u_out, uint64_t seed, uint32_t stream, const int64_t* step) {
  GANCU_DISPATCH(perturb_samples, batch, per_sample, x, spread, out, alpha_out, u_out, seed, stream, step);
}

// A gradient penalty (op_types.h, PenaltyKind) of the per-sample input gradients g [batch,
// per_sample], with its gradient v = dP/dg [batch, per_sample] (written):
//   TwoSided: v_i = w * 2 (||g_i|| - 1) / ||g_i|| * g_i / batch   (0 where ||g_i|| = 0)
//   Squared:  v_i = w * 2 g_i / batch
//   *penalty_sum += P;  *norm_sum += mean_i ||g_i||   (each skipped when null)
// v is the tangent that the forward-mode pass pushes through D (network.h, jvp).
template <class T>
void gradient_penalty(const Exec& ex, PenaltyKind kind, int64_t batch, int64_t per_sample, const T* g,
                      float weight, T* v, T* penalty_sum, T* norm_sum) {
  GANCU_DISPATCH(gradient_penalty, kind, batch, per_sample, g, weight, v, penalty_sum, norm_sum);
}

// The second-order part of an activation's tangent backward. With z the pre-activation,
// y = act(z), the tangent ty = act'(z) tz, and the adjoints dy (of y; null means 0) and dty (of ty):
//   dz = act'(z) dy + act''(z) tz dty = act'(y) dy + r(y) ty dty
// with r = act'' / act' as a function of y: tanh -2y, sigmoid 1 - 2y, the piecewise-linear ones 0.
// (The tangent's own adjoint, act'(z) dty, is activation_backward on dty.) dz is written.
template <class T>
void activation_second_order(const Exec& ex, int64_t n, const T* y, const T* ty, const T* dty, const T* dy,
                             T* dz, Activation act) {
  GANCU_DISPATCH(activation_second_order, n, y, ty, dty, dy, dz, act);
}

// ---- Optimizers: one launch over a whole flat parameter buffer -------------------------------
//
// `h` points to the hyperparameters in backend memory, read at each call: a CUDA graph captured
// once follows a change of the learning rate (a schedule, or different settings after a resume).

// Adam (PyTorch's formulation, L2 weight decay added to the gradient). *t is the optimizer's step
// count in backend memory: the op increments it and uses the new value for bias correction.
template <class T>
void adam_step(const Exec& ex, int64_t n, T* param, const T* grad, T* m, T* v, const AdamHyper* h,
               int64_t* t) {
  GANCU_DISPATCH(adam_step, n, param, grad, m, v, h, t);
}
// SGD with optional momentum (PyTorch's: buf = momentum buf + g; p -= lr buf): with momentum when
// momentum_buf is not null (plain SGD, whatever h->momentum says, when it is).
template <class T>
void sgd_step(const Exec& ex, int64_t n, T* param, const T* grad, T* momentum_buf, const SgdHyper* h) {
  GANCU_DISPATCH(sgd_step, n, param, grad, momentum_buf, h);
}

// RMSprop (op_types.h, RmspropHyper): one launch over the flat buffer; *t counts the steps
// (incremented, for checkpoints; RMSprop has no bias correction).
template <class T>
void rmsprop_step(const Exec& ex, int64_t n, T* param, const T* grad, T* sq_avg, const RmspropHyper* h,
                  int64_t* t) {
  GANCU_DISPATCH(rmsprop_step, n, param, grad, sq_avg, h, t);
}
// x = min(max(x, lo), hi) elementwise: WGAN's weight clipping after each critic step.
template <class T>
void clamp_values(const Exec& ex, int64_t n, T* x, float lo, float hi) {
  GANCU_DISPATCH(clamp_values, n, x, lo, hi);
}

// ---- Data and noise -------------------------------------------------------------------------

// out[i] = element i of Philox stream (seed, stream, *step): N(0, 1) or U[-1, 1).
template <class T>
void fill_noise(const Exec& ex, int64_t n, T* out, NoiseKind kind, uint64_t seed, uint32_t stream,
                const int64_t* step) {
  GANCU_DISPATCH(fill_noise, n, out, kind, seed, stream, step);
}

// The batch of step *step: images gathered from the uint8 data set through the epoch's Feistel
// permutation and scaled to floats, in one pass. out is [batch, image_elems].
template <class T>
void gather_batch(const Exec& ex, const BatchGather& g, const uint8_t* images, const int64_t* step, T* out) {
  GANCU_DISPATCH(gather_batch, g, images, step, out);
}
// The labels of the same images (out[batch]).
template <class T>
void gather_labels(const Exec& ex, const BatchGather& g, const uint8_t* labels, const int64_t* step,
                   int32_t* out) {
  GANCU_DISPATCH(gather_labels, g, labels, step, out);
}

// Fakes for D's pre-training (docs/mode_collapse.md#discriminator-pre-training). Pixels drawn
// from the data's pixel-intensity histogram by inverse CDF: inout holds U[-1, 1) noise on entry
// (fill_noise); with u = (inout[i] + 1) / 2, the bin is the smallest b with u < cdf[b] (cdf: 256
// non-decreasing floats, cdf[255] = 1), and inout[i] = fma(b, scale, shift), the value
// gather_batch gives a uint8 pixel b.
template <class T>
void histogram_pixels(const Exec& ex, int64_t n, const float* cdf, float scale, float shift, T* inout) {
  GANCU_DISPATCH(histogram_pixels, n, cdf, scale, shift, inout);
}
// Images with their pixels moved: out[r, p, c] = in[r, perm[p], c] for rows images of `positions`
// pixels of `channels` values (perm: a permutation of [0, positions)).
template <class T>
void permute_positions(const Exec& ex, int64_t rows, int64_t positions, int channels, const int32_t* perm,
                       const T* in, T* out) {
  GANCU_DISPATCH(permute_positions, rows, positions, channels, perm, in, out);
}

// A batch of n points [n, 2] from a 2-d Gaussian mixture, drawn from Philox stream
// (mix.seed, kStreamMixture, *step): element i picks its mode uniformly, then adds N(0, std^2) noise.
// An endless data set that lives entirely on the device (mixture.h has the centres).
template <class T>
void sample_mixture(const Exec& ex, const Mixture2D& mix, int64_t n, const int64_t* step, T* out) {
  GANCU_DISPATCH(sample_mixture, mix, n, step, out);
}

// ---- Pooling --------------------------------------------------------------------------------

// y = max over each window (padding ignored). Backward routes each dy to the first position of its
// window that holds the maximum (recomputed from x and y: no index buffer), summing where windows
// overlap.
template <class T>
void maxpool2d_forward(const Exec& ex, const PoolDims& d, const T* x, T* y) {
  GANCU_DISPATCH(maxpool2d_forward, d, x, y);
}
template <class T>
void maxpool2d_backward(const Exec& ex, const PoolDims& d, const T* x, const T* y, const T* dy, T* dx,
                        bool accumulate_dx) {
  GANCU_DISPATCH(maxpool2d_backward, d, x, y, dy, dx, accumulate_dx);
}
// y = mean over each k x k window: the sum over its taps inside the image divided by k * k
// (d.include_pad, PyTorch's count_include_pad=True) or by the number of those taps (!include_pad).
// Backward spreads each dy over the same taps with the same divisor.
template <class T>
void avgpool2d_forward(const Exec& ex, const PoolDims& d, const T* x, T* y) {
  GANCU_DISPATCH(avgpool2d_forward, d, x, y);
}
template <class T>
void avgpool2d_backward(const Exec& ex, const PoolDims& d, const T* dy, T* dx, bool accumulate_dx) {
  GANCU_DISPATCH(avgpool2d_backward, d, dy, dx, accumulate_dx);
}

// The tangent of max pooling: ty at each window = tx at the position that the forward's max came
// from (the first maximum, as maxpool2d_backward routes it). Its adjoint is maxpool2d_backward.
template <class T>
void maxpool2d_jvp(const Exec& ex, const PoolDims& d, const T* x, const T* y, const T* tx, T* ty) {
  GANCU_DISPATCH(maxpool2d_jvp, d, x, y, tx, ty);
}

// ---- Resizing (op_types.h, ResizeDims) -------------------------------------------------------

// y = the bilinear resize of x (PyTorch's align_corners=False, no antialiasing): each output
// pixel mixes the 2 x 2 source pixels around (dst + 0.5) * in / out - 0.5 per axis (clamped below
// at 0; the upper neighbour clamped to the last pixel), weights from gancu/bilinear_taps.h.
template <class T>
void resize_bilinear_forward(const Exec& ex, const ResizeDims& d, const T* x, T* y) {
  GANCU_DISPATCH(resize_bilinear_forward, d, x, y);
}
// Its adjoint (the op is linear, so this is also the backward of its tangent): dx[pixel] = sum
// over the output pixels that read it of their weight times dy. A gather per input pixel, in a
// fixed order (no atomics: the same bits on every run); written, or added when accumulate_dx.
template <class T>
void resize_bilinear_backward(const Exec& ex, const ResizeDims& d, const T* dy, T* dx, bool accumulate_dx) {
  GANCU_DISPATCH(resize_bilinear_backward, d, dy, dx, accumulate_dx);
}

// ---- Layer norm (op_types.h, LayerNormDims) -----------------------------------------------------

// xhat = (x - mean) * invstd per row; y = act(gamma[c] * xhat + beta[c]). save_mean and
// save_invstd ([rows]) receive the row statistics for the passes below.
template <class T>
void layernorm_forward(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma, const T* beta,
                       T* save_mean, T* save_invstd, T* y, Activation act) {
  GANCU_DISPATCH(layernorm_forward, d, x, gamma, beta, save_mean, save_invstd, y, act);
}
// The backward of the forward above (dy may be overwritten; dgamma, dbeta accumulate).
template <class T>
void layernorm_backward(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma,
                        const T* save_mean, const T* save_invstd, const T* y, T* dy, T* dx,
                        bool accumulate_dx, T* dgamma, T* dbeta, Activation act) {
  GANCU_DISPATCH(layernorm_backward, d, x, gamma, save_mean, save_invstd, y, dy, dx, accumulate_dx, dgamma,
                 dbeta, act);
}
// The forward-mode derivative along the tangent tx ([rows, cols]), at the point of the last
// forward: with r = invstd, txhat = r (tx - mean(tx) - xhat mean(xhat tx)) per row,
// ty = act'(z) gamma[c] txhat (no beta: a tangent has no offset).
template <class T>
void layernorm_jvp(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma, const T* save_mean,
                   const T* save_invstd, const T* y, const T* tx, T* ty, Activation act) {
  GANCU_DISPATCH(layernorm_jvp, d, x, gamma, save_mean, save_invstd, y, tx, ty, act);
}
// The backward of layernorm_jvp's computation: from the adjoints dty (of ty; may be overwritten)
// and dy (of y, from later layers; null means 0), the adjoint of the tangent dtx, the adjoint of
// the primal input dx (the second-order terms, through gamma, xhat and invstd; skipped when
// null), and the parameter gradients (accumulated) of both paths:
//   dgamma[c] += sum (dtz * txhat + dz * xhat),  dbeta[c] += sum dz
// with dtz = act'(z) dty and dz = act'(z) dy + r(y) ty dty (activation_second_order).
// dtx and dx are written, or added with accumulate_dtx / accumulate_dx.
template <class T>
void layernorm_jvp_backward(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma,
                            const T* save_mean, const T* save_invstd, const T* y, const T* tx, const T* ty,
                            T* dty, const T* dy, T* dtx, bool accumulate_dtx, T* dx, bool accumulate_dx,
                            T* dgamma, T* dbeta, Activation act) {
  GANCU_DISPATCH(layernorm_jvp_backward, d, x, gamma, save_mean, save_invstd, y, tx, ty, dty, dy, dtx,
                 accumulate_dtx, dx, accumulate_dx, dgamma, dbeta, act);
}

// ---- Concatenation and sums (op_types.h, ConcatPart) --------------------------------------------

// Copies one input into its channels of the concatenated output y (the other channels untouched).
template <class T>
void concat_forward(const Exec& ex, const ConcatPart& part, const T* x, T* y) {
  GANCU_DISPATCH(concat_forward, part, x, y);
}
// The gradient of that input: its channels of dy (summed over the positions when broadcast);
// written, or added when accumulate_dx.
template <class T>
void concat_backward(const Exec& ex, const ConcatPart& part, const T* dy, T* dx, bool accumulate_dx) {
  GANCU_DISPATCH(concat_backward, part, dy, dx, accumulate_dx);
}
// y = a + b elementwise (y may alias a or b).
template <class T>
void add(const Exec& ex, int64_t n, const T* a, const T* b, T* y) {
  GANCU_DISPATCH(add, n, a, b, y);
}

// ---- Class labels (conditional models; op_types.h, EmbeddingDims) ------------------------------

// out[i] = a class drawn uniformly from [0, classes): element i of Philox stream (seed, stream,
// *step), floor(u * classes) of its uniform u in [0, 1). The fake labels of a training step.
template <class T>
void draw_classes(const Exec& ex, int64_t n, int classes, uint64_t seed, uint32_t stream, const int64_t* step,
                  int32_t* out) {
  GANCU_DISPATCH(draw_classes, n, classes, seed, stream, step, out);
}
// out [n, classes]: row i is the one-hot vector of class labels[i] (a class outside [0, classes)
// gives a row of zeros; the trainer's classes are checked on the host when the data is read).
template <class T>
void one_hot(const Exec& ex, int64_t n, int classes, const int32_t* labels, T* out) {
  GANCU_DISPATCH(one_hot, n, classes, labels, out);
}
// y[s, :] = table[class(s), :]: the lookup of a learned embedding (the `embed` layer).
template <class T>
void embedding_forward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* table, T* y) {
  GANCU_DISPATCH(embedding_forward, d, label, table, y);
}
// dtable[c, :] += sum over the samples s of class c, in sample order, of scale[s] dy[s, :] (scale
// null: 1). No atomics: one thread per table entry walks the batch, so the sum is the same on
// every run. The embedding's gradient (scale null), and the projection's table gradient (dy = the
// features, scale = the gradient of the projection's output).
template <class T>
void embedding_backward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* dy, const T* scale,
                        T* dtable) {
  GANCU_DISPATCH(embedding_backward, d, label, dy, scale, dtable);
}
// y[s] = <table[class(s), :], x[s, :]>: the projection discriminator's term (Miyato & Koyama
// 2018), x [samples, dim] the features, y [samples, 1]. Summed in float in the order of the
// features on both backends.
template <class T>
void projection_forward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* table, const T* x,
                        T* y) {
  GANCU_DISPATCH(projection_forward, d, label, table, x, y);
}
// dx[s, :] = dy[s] table[class(s), :], written or added when accumulate_dx.
template <class T>
void projection_backward(const Exec& ex, const EmbeddingDims& d, const T* label, const T* table, const T* dy,
                         T* dx, bool accumulate_dx) {
  GANCU_DISPATCH(projection_backward, d, label, table, dy, dx, accumulate_dx);
}

// ---- Classification -------------------------------------------------------------------------

// probs[i, :] = softmax(logits[i, :]) over `classes` values per row.
template <class T>
void softmax(const Exec& ex, int64_t n, int classes, const T* logits, T* probs) {
  GANCU_DISPATCH(softmax, n, classes, logits, probs);
}
// Softmax cross-entropy against integer labels, fused with its gradient, in one pass:
//   loss = mean_i [logsumexp(l_i) - l_i[label_i]]
//   dlogits_i = grad_scale * (softmax(l_i) - onehot(label_i)) / n   (written; skipped when null)
//   *loss_sum += loss; *correct_sum += #{i : argmax l_i == label_i}   (each skipped when null)
// argmax takes the first maximum on ties. Labels must lie in [0, classes): the CPU throws a
// RuntimeError (writing nothing) on another; a CUDA kernel cannot, so there such a row has no
// target (zero dlogits, adds nothing to either sum; the mean still divides by n).
template <class T>
void softmax_cross_entropy(const Exec& ex, int64_t n, int classes, const T* logits, const int32_t* labels,
                           float grad_scale, T* dlogits, T* loss_sum, T* correct_sum) {
  GANCU_DISPATCH(softmax_cross_entropy, n, classes, logits, labels, grad_scale, dlogits, loss_sum,
                 correct_sum);
}

// ---- Pairwise distances ---------------------------------------------------------------------

// out[i, j] = ||a_i - b_j||^2 for a [m, d], b [n, d], out [m, n] (row-major), computed as
// ||a||^2 + ||b||^2 - 2 a.b (one GEMM and a fused epilogue) and clamped at 0. Used tiled by the
// evaluation (k-NN precision/recall) so that memory never grows with N^2, and by the distance
// losses of the minibatch GANs.
template <class T>
void pairwise_sq_distances(const Exec& ex, int m, int n, int d, const T* a, const T* b, T* out) {
  GANCU_DISPATCH(pairwise_sq_distances, m, n, d, a, b, out);
}

// ---- Minibatch statistics (op_types.h; the remedies against mode collapse) ------------------------

// Minibatch discrimination: o[i, a] = sum_j exp(-sum_c |m[i,a,c] - m[j,a,c]|) over every sample j
// of the batch, i included, for m [batch, kernels, dims]; o written with row stride d.ldo.
// Fused and tiled over blocks of (i, j): the B x B x A x C differences are never stored.
template <class T>
void mbdisc_forward(const Exec& ex, const MinibatchDiscDims& d, const T* m, T* o) {
  GANCU_DISPATCH(mbdisc_forward, d, m, o);
}
// Its backward from do (row stride d.ldo) to m: dm[k,a,c] = -sum_j (do[k,a] + do[j,a])
// exp(-|m[k,a,:] - m[j,a,:]|_1) sign(m[k,a,c] - m[j,a,c]), sign(0) = 0. dm is written.
template <class T>
void mbdisc_backward(const Exec& ex, const MinibatchDiscDims& d, const T* m, const T* dout, T* dm) {
  GANCU_DISPATCH(mbdisc_backward, d, m, dout, dm);
}
// Minibatch standard deviation: y [batch, positions, channels + 1] = x with one more channel
// holding s, the mean over the features f = (position, channel) of sqrt(biased batch variance of
// x[:, f] + eps). stats [2 F + 1] (F = positions * channels) receives the batch mean and
// 1 / sigma of each feature, then s, for the backward.
template <class T>
void mbstd_forward(const Exec& ex, const MinibatchStdDims& d, const T* x, T* y, T* stats) {
  GANCU_DISPATCH(mbstd_forward, d, x, y, stats);
}
// Its backward: dx[i, f] = dy[i, f] + (sum of dy over the appended channel) / F * (x[i, f] -
// mean_f) / (batch sigma_f); written, or added when accumulate_dx; nothing when dx is null.
template <class T>
void mbstd_backward(const Exec& ex, const MinibatchStdDims& d, const T* x, const T* stats, const T* dy, T* dx,
                    bool accumulate_dx) {
  GANCU_DISPATCH(mbstd_backward, d, x, stats, dy, dx, accumulate_dx);
}

// Feature matching (Salimans et al. 2016), the generator loss on an intermediate layer of D.
// out[c] = 1/rows sum_r x[r, c]: the mean features of the real batch.
template <class T>
void batch_mean(const Exec& ex, int64_t rows, int64_t cols, const T* x, T* out) {
  GANCU_DISPATCH(batch_mean, rows, cols, x, out);
}
// L = ||mean_r fake[r, :] - real_mean||^2 (the squared distance, summed over the cols features),
// fused with its gradient: dfake[r, c] = 2 (mean_fake[c] - real_mean[c]) / rows (written);
// *loss_sum += L (skipped when null). real_mean is held constant.
template <class T>
void feature_matching_loss(const Exec& ex, int64_t rows, int64_t cols, const T* real_mean, const T* fake,
                           T* dfake, T* loss_sum) {
  GANCU_DISPATCH(feature_matching_loss, rows, cols, real_mean, fake, dfake, loss_sum);
}

// The distance head (the Minibatch-GAN experiment; docs/mode_collapse.md#the-distance-head): G's
// second output head[i], one number per generated image x[i] ([rows, cols]), is scored against
// a label computed from the images and held constant (no gradient reaches x through it):
//   label[i] = ||x[i]||_2                                  (pair_sq null), or
//   label[i] = 1/(rows-1) sum_{j != i} sqrt(pair_sq[i, j])  (pair_sq = pairwise_sq_distances(x, x)),
//   mse = 1/rows sum_i (head[i] - label[i])^2,  L = weight / (mse + kDistanceHeadEps).
// dhead[i] = -weight / (mse + eps)^2 * 2 (head[i] - label[i]) / rows (written); *loss_sum += L
// (skipped when null). Sums in double, in a fixed order. kDistanceHeadEps: op_types.h.
template <class T>
void distance_head_loss(const Exec& ex, int64_t rows, int64_t cols, const T* x, const T* pair_sq,
                        const T* head, float weight, T* dhead, T* loss_sum) {
  GANCU_DISPATCH(distance_head_loss, rows, cols, x, pair_sq, head, weight, dhead, loss_sum);
}

// The supervised generator (docs/conditional.md#the-supervised-generator): G is trained to draw
// the real image from its label and its mean pixel value.
// The mean squared error over all n values, fused with its gradient:
//   L = 1/n sum_i (x[i] - target[i])^2,  dx[i] = 2 (x[i] - target[i]) / n   (written; skipped when
//   null); *loss_sum += L (skipped when null). target is held constant. Sums in double.
template <class T>
void mse_loss(const Exec& ex, int64_t n, const T* x, const T* target, T* dx, T* loss_sum) {
  GANCU_DISPATCH(mse_loss, n, x, target, dx, loss_sum);
}
// out[r] = 1/cols sum_c x[r, c]: each image's mean pixel value (the supervised generator's input).
// Summed in double.
template <class T>
void row_means(const Exec& ex, int64_t rows, int64_t cols, const T* x, T* out) {
  GANCU_DISPATCH(row_means, rows, cols, x, out);
}

// ---- Small utilities ------------------------------------------------------------------------

template <class T>
void fill(const Exec& ex, int64_t n, T* out, T value) {
  GANCU_DISPATCH(fill, n, out, value);
}
// dst += src
template <class T>
void add_into(const Exec& ex, int64_t n, const T* src, T* dst) {
  GANCU_DISPATCH(add_into, n, src, dst);
}
// *counter += 1 (the step counter, in backend memory)
template <class T = float>
void increment_counter(const Exec& ex, int64_t* counter) {
  GANCU_DISPATCH(increment_counter, counter);
}

}  // namespace gancu::ops

#undef GANCU_DISPATCH
