// The small structs that describe an op's shapes and settings. Shared by ops.h (the dispatch),
// the CPU reference backend (src/cpu/) and the CUDA backend (kernels/).
#pragma once

#include <cstdint>

namespace gancu {

class Exec;

// An activation that can be fused into the op before it. Its derivative is taken from the op's
// output y (relu, lrelu: sign of y; tanh: 1 - y^2; sigmoid: y(1 - y)), so backward needs no
// pre-activation buffer.
enum class Act : uint8_t { None, ReLU, LeakyReLU, Tanh, Sigmoid };

struct Activation {
  Act kind = Act::None;
  float slope = 0.2f;  // LeakyReLU's negative slope
};

// The layer-string name of an activation: none, relu, lrelu, tanh, sigmoid.
const char* act_name(Act a);

// The distance head's loss is weight / (mse + kDistanceHeadEps) (ops.h, distance_head_loss): the
// eps bounds it where the head happens to predict its labels exactly.
constexpr double kDistanceHeadEps = 1e-6;

// y[batch, out] = act(x[batch, in] * w[out, in]^T + b[out]). PyTorch's Linear layout for w.
struct LinearDims {
  int batch = 0, in = 0, out = 0;
};

// A 2-d convolution, NHWC. Input x [n, h, w, c], filter [k, r, s, c] (KRSC: r rows, s columns),
// output y [n, p, q, k] with p = (h + 2 pad_h - r) / stride + 1 and q = (w + 2 pad_w - s) / stride
// + 1. Kernel and padding may differ between the axes (Inception's 1x7 and 7x1 convolutions, padded
// 0 and 3); the stride is one value for both.
//
// A transposed convolution is the adjoint of such a convolution and uses the same dims read the
// other way: its input is [n, p, q, k], its output [n, h, w, c], its filter [k, r, s, c]
// (PyTorch's ConvTranspose2d(in=k, out=c) weight [k, c, r, s], permuted to put c last).
struct ConvDims {
  int n = 0, h = 0, w = 0, c = 0;
  int k = 0, r = 0, s = 0;
  int stride = 1, pad_h = 0, pad_w = 0;
  int p = 0, q = 0;

  // Dims of a convolution from its input; p and q are derived. The first form pads both axes alike.
  static ConvDims conv(int n, int h, int w, int c, int k, int r, int s, int stride, int pad);
  static ConvDims conv(int n, int h, int w, int c, int k, int r, int s, int stride, int pad_h, int pad_w);
  // Dims of a transposed convolution from its input [n, p, q, k] to c channels; h and w are
  // derived as (p - 1) stride - 2 pad_h + r and (q - 1) stride - 2 pad_w + s.
  static ConvDims transposed(int n, int p, int q, int k, int c, int r, int s, int stride, int pad);
  static ConvDims transposed(int n, int p, int q, int k, int c, int r, int s, int stride, int pad_h,
                             int pad_w);
  int64_t x_elems() const { return int64_t(n) * h * w * c; }
  int64_t y_elems() const { return int64_t(n) * p * q * k; }
  int64_t filter_elems() const { return int64_t(k) * r * s * c; }
};

// The passes of a convolution layer that will be called, as the layer sees them (for a
// transposed convolution, its own forward and gradients): a backend plans only these ahead of
// the loop (on CUDA each is a cuDNN algorithm choice that may find none, and a pass nobody calls
// must not stop a run). The first layer of a network whose input gradient nobody asks for (G's,
// the classifier's) has no input_grad; a network that is never trained has only forward.
struct ConvPasses {
  bool forward = true;
  bool input_grad = true;   // dx
  bool filter_grad = true;  // dw
};

enum class BatchNormMode : uint8_t {
  Train,      // batch statistics; running statistics updated with `momentum`
  BatchOnly,  // batch statistics; running statistics left alone (sampling with batch stats)
  Eval,       // running statistics
};

// Batch normalization over `count` rows of `channels` values: [n*h*w, c] in NHWC, or [n, c]
// for features.
// Synchronized batch norm (model.sync_bn) in a data-parallel job: the op sums its per-channel
// statistics over the ranks through this callback (host doubles on the CPU backend, device doubles
// on CUDA), so that every rank normalizes with the global batch's mean and variance. The ranks'
// shards are equal, so the global count is count * ranks.
struct BatchNormSync {
  void (*all_reduce_sum)(const Exec& ex, double* data, int64_t n) = nullptr;
  int ranks = 1;
};

struct BatchNormDims {
  int64_t count = 0;
  int channels = 0;
  float momentum = 0.1f;  // PyTorch's convention: running = (1 - m) running + m batch
  float eps = 1e-5f;
  // Not null: statistics over the ranks (Train and BatchOnly forward, and the backward of such a
  // forward). The parameter gradients stay this rank's own (the optimizer averages them).
  const BatchNormSync* sync = nullptr;
};

enum class NoiseKind : uint8_t { Normal, Uniform };  // N(0, 1) or U[-1, 1)

struct AdamHyper {
  float lr = 2e-4f, beta1 = 0.5f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
};

struct SgdHyper {
  float lr = 1e-2f, momentum = 0.0f, weight_decay = 0.0f;
};

// Which images a training step reads: the permutation of epoch `step / batches_per_epoch`,
// positions [(step % batches_per_epoch) * batch, +batch). batches_per_epoch =
// num_images / batch (the last partial batch of an epoch is dropped, as PyTorch's drop_last).
struct BatchGather {
  int64_t num_images = 0;
  int64_t image_elems = 0;  // h * w * c of one image
  int batch = 0;            // rows gathered: this rank's shard of the global batch
  uint64_t seed = 0;
  float scale = 2.0f / 255.0f, shift = -1.0f;  // out = u8 * scale + shift: [0, 255] -> [-1, 1]
  // A data-parallel rank gathers rows [first, first + batch) of the global batch (comm.h's Shard);
  // the epoch's order is that of the global batch. global_batch 0: the whole batch (batch).
  int first = 0;
  int global_batch = 0;
};

// Max or average pooling over k x k windows, NHWC: x [n, h, w, c] -> y [n, p, q, c] with
// p = (h + 2 pad - k) / stride + 1 (floor, as PyTorch's default). Average pooling divides by
// k * k when include_pad (padding counts as zeros, PyTorch's count_include_pad=True), otherwise
// by the number of the window's taps inside the image (count_include_pad=False: Inception's
// pooling branches); max pooling ignores padding and include_pad.
struct PoolDims {
  int n = 0, h = 0, w = 0, c = 0;
  int k = 2, stride = 2, pad = 0;
  int p = 0, q = 0;
  bool include_pad = true;
  static PoolDims make(int n, int h, int w, int c, int k, int stride, int pad, bool include_pad = true);
};

// Bilinear resizing of NHWC images x [n, h, w, c] -> y [n, out_h, out_w, c], PyTorch's
// F.interpolate(x, size=(out_h, out_w), mode='bilinear', align_corners=False, antialias=False)
// (the taps of each output coordinate: gancu/bilinear_taps.h). Not the data pipeline's
// antialiased uint8 resize (gancu/resize.h).
struct ResizeDims {
  int n = 0, h = 0, w = 0, c = 0;
  int out_h = 0, out_w = 0;
  int64_t x_elems() const { return int64_t(n) * h * w * c; }
  int64_t y_elems() const { return int64_t(n) * out_h * out_w * c; }
};

// A mixture of 2-d Gaussians of equal weight, the mode-collapse benchmarks of the literature:
// `modes` centres on a ring of `scale` radius (ring), or on a sqrt(modes) x sqrt(modes) grid with
// `scale` spacing centred on 0 (grid); each with standard deviation `std`.
struct Mixture2D {
  bool grid = false;
  int modes = 8;
  float scale = 2.0f;
  float std = 0.02f;
  uint64_t seed = 0;
};

// ---- GAN objectives ----------------------------------------------------------------------------

// One adversarial loss term over a batch of n critic outputs l (logits or scores), mean over the
// batch, multiplied by `scale`:
//   BCE            f(l) = softplus(l) - t l                (t: the target probability, 1 real, 0 fake,
//                                                           1 - s with one-sided label smoothing)
//   LeastSquares   f(l) = (l - t)^2 / 2                    (LSGAN: t = 1 real, 0 fake, 1 for G)
//   Hinge          f(l) = max(0, 1 - t l)                  (t = +1 real, -1 fake)
//   Linear         f(l) = -t l                             (WGAN: t = +1 "score high", -1 "score low")
// The original minimax generator loss log(1 - sigmoid(l)) is BCE with t = 0 and scale = -1.
enum class LossKind : uint8_t { BCE, LeastSquares, Hinge, Linear };

struct LossTerm {
  LossKind kind = LossKind::BCE;
  float target = 1.0f;
  float scale = 1.0f;
};

// How a gradient penalty turns the per-sample input gradients g_i = d D(x_i) / d x_i into a
// number (weight w, batch B):
//   TwoSided   P = w mean_i (||g_i|| - 1)^2     WGAN-GP, DRAGAN
//   Squared    P = w mean_i ||g_i||^2           R1 (w = gamma / 2, times the lazy interval)
enum class PenaltyKind : uint8_t { TwoSided, Squared };

// RMSprop as PyTorch's torch.optim.RMSprop (not centered, no momentum): g += weight_decay p;
// v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps).
struct RmspropHyper {
  float lr = 5e-5f, alpha = 0.99f, eps = 1e-8f, weight_decay = 0.0f;
};

// ---- Layer norm --------------------------------------------------------------------------------

// Layer normalization over all `cols` values of each of `rows` samples (PyTorch's GroupNorm with
// one group, which for features [n, c] is LayerNorm(c)), with a per-channel affine: the value at
// column j belongs to channel j % channels (NHWC). Biased variance, as PyTorch.
struct LayerNormDims {
  int64_t rows = 0;  // samples
  int64_t cols = 0;  // h * w * c per sample
  int channels = 0;  // c; cols % channels == 0
  float eps = 1e-5f;
};

// ---- Concatenation -----------------------------------------------------------------------------

// One input of a concatenation along channels: the input has `src_channels` channels per
// position and goes to channels [offset, offset + src_channels) of the output, which has
// `dst_channels` per position and `positions` = h * w positions per sample (1 for features).
// With `broadcast`, the input is a feature vector per sample ([samples, src_channels]) repeated
// at every position (a label embedding appended to an image as constant channel maps).
struct ConcatPart {
  int64_t samples = 0;
  int64_t positions = 1;
  int src_channels = 0, dst_channels = 0, offset = 0;
  bool broadcast = false;
};

// ---- Minibatch statistics (the remedies against mode collapse) ---------------------------------

// Minibatch discrimination (Salimans et al. 2016) on projected features m [batch, kernels, dims]
// (row-major: sample, kernel, dimension): o[i, a] = sum_j exp(-sum_c |m[i,a,c] - m[j,a,c]|), the
// sum over every sample j of the batch including i itself (its term is exp(0) = 1, as in the
// paper). o is written with a row stride of `ldo` values (the statistics are the last columns of
// the layer's output, so they are written in place).
struct MinibatchDiscDims {
  int64_t batch = 0;  // B
  int kernels = 0;    // A
  int dims = 0;       // C
  int64_t ldo = 0;    // row stride of o and do; >= kernels
};

// Minibatch standard deviation (Karras et al. 2018) over x [batch, positions, channels]: the
// per-feature (position, channel) standard deviation over the batch, sqrt(biased variance + eps),
// averaged over all features into one number s, appended to every position as one more channel:
// y [batch, positions, channels + 1].
struct MinibatchStdDims {
  int64_t batch = 0;
  int64_t positions = 1;  // h * w (1 for features)
  int channels = 0;
  float eps = 1e-8f;
  int64_t features() const { return positions * channels; }
};

// ---- Class labels (conditional models) -------------------------------------------------------

// A table [classes, dim] read at each sample's class. A sample's class is read from its label
// row [classes] (the one-hot label input of a conditional network) as the position of its
// largest value, the first one on ties: for a one-hot row, the position of its 1.
struct EmbeddingDims {
  int64_t samples = 0;
  int classes = 0;
  int dim = 0;
};

// The checks both backends run on the structs above before an op (a failed check names `op`).
void check_embedding_dims(const EmbeddingDims& d, const char* op);
void check_layernorm_dims(const LayerNormDims& d, const char* op);
void check_concat_part(const ConcatPart& part, const char* op);
void check_mbdisc_dims(const MinibatchDiscDims& d, const char* op);
void check_mbstd_dims(const MinibatchStdDims& d, const char* op);
void check_resize_dims(const ResizeDims& d, const char* op);

}  // namespace gancu
