// Minibatch discrimination (`mbdisc`, Salimans et al. 2016): lets a discriminator see how close
// each sample is to the others of its batch, so that a generator collapsed onto a few modes is
// easy to tell from real data. For features f [B, F] and a trained tensor T [F, A, C]:
//   M = f T, viewed as [B, A, C];  o[i, a] = sum_j exp(-sum_c |M[i,a,c] - M[j,a,c]|)  (j = i included)
//   y = [f, o]  ([B, F + A])
// The pairwise sums are the fused ops mbdisc_forward / mbdisc_backward (never B x B x A x C);
// M and its gradient are the layer's scratch, so its memory grows as B A C.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class MinibatchDiscLayer final : public Layer<T> {
 public:
  MinibatchDiscLayer(int kernels, int dims, float std, std::string where)
      : kernels_(kernels), dims_(dims), std_(std), where_(std::move(where)) {}

  Shape configure(const Shape& in) override {
    if (!in.is_features())
      usage_error(where_, ": mbdisc needs a feature vector but gets a ", in.h, "x", in.w, "x", in.c,
                  " image; add \"flatten\" before it");
    in_ = in.c;
    batch_ = in.n;
    return Shape::features(in.n, in_ + kernels_);
  }
  std::string describe() const override {
    return detail::concat("mbdisc ", in_, "->", in_, "+", kernels_, " (", dims_, " dims)");
  }
  std::vector<ParamSpec> params() const override {
    return {{"weight", {in_, kernels_, dims_}, false, {InitRule::Normal, 0.0f, std_}}};
  }
  // M and dM, [batch, kernels, dims] each.
  std::vector<int64_t> scratch_counts() const override {
    const int64_t n = int64_t(batch_) * kernels_ * dims_;
    return {n, n};
  }
  std::string tangent_refusal() const override {
    return "minibatch discrimination compares each sample with every other sample of the batch, so a "
           "sample's output depends on the others and the per-sample input gradients of a gradient "
           "penalty do not exist; use an objective without a penalty";
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    const int ac = kernels_ * dims_;
    T* m = io.scratch[0];
    ops::gemm<T>(ex, false, false, io.batch, ac, in_, T(1), io.x, in_, io.params[0], ac, T(0), m, ac);
    ops::concat_forward<T>(ex, features_part(io.batch), io.x, io.y);
    ops::mbdisc_forward<T>(ex, dims(io.batch), m, io.y + in_);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    const int ac = kernels_ * dims_;
    T* dm = io.scratch[1];
    ops::mbdisc_backward<T>(ex, dims(io.batch), io.scratch[0], io.dy + in_, dm);
    if (io.param_grads)  // dT += f^T dM
      ops::gemm<T>(ex, true, false, in_, ac, io.batch, T(1), io.x, in_, dm, ac, T(1), io.grads[0], ac);
    if (io.dx) {  // df = dy[:, :F] (+ what dx held) + dM T^T
      ops::concat_backward<T>(ex, features_part(io.batch), io.dy, io.dx, io.accumulate_dx);
      ops::gemm<T>(ex, false, true, io.batch, in_, ac, T(1), dm, ac, io.params[0], ac, T(1), io.dx, in_);
    }
  }

 private:
  MinibatchDiscDims dims(int batch) const { return {batch, kernels_, dims_, int64_t(in_) + kernels_}; }
  // f's place in the output: its first F columns.
  ConcatPart features_part(int batch) const {
    ConcatPart p;
    p.samples = batch;
    p.src_channels = in_;
    p.dst_channels = in_ + kernels_;
    return p;
  }

  int kernels_, dims_;
  float std_;
  std::string where_;
  int in_ = 0, batch_ = 0;
};

}  // namespace

// The CUDA kernel keeps a sample's C values in registers; both backends accept the same sizes.
constexpr int kMaxMbdiscDims = 16;

template <class T>
std::unique_ptr<Layer<T>> make_minibatch_disc(const LayerSpec& spec, const std::string& where) {
  const int kernels = spec.get_int("kernels", 100, where);
  const int dims = spec.get_int("dims", 5, where);
  const float std = spec.get_float("std", 0.05f, where);
  if (dims > kMaxMbdiscDims)
    usage_error(where, ": mbdisc dims must be at most ", kMaxMbdiscDims, ", got ", dims);
  if (!(std > 0.0f)) usage_error(where, ": mbdisc std (of T's initial values) must be positive, got ", std);
  return std::make_unique<MinibatchDiscLayer<T>>(kernels, dims, std, where);
}
GANCU_INSTANTIATE_LAYER(make_minibatch_disc, const LayerSpec&, const std::string&)

}  // namespace gancu
