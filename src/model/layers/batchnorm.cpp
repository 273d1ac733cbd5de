// BatchNorm1d/2d (PyTorch's semantics: batch statistics in training, running statistics in
// eval, momentum 0.1, unbiased running variance), with the following activation fused.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class BatchNormLayer final : public Layer<T> {
 public:
  BatchNormLayer(float momentum, float eps, InitScheme init) : momentum_(momentum), eps_(eps), init_(init) {}

  Shape configure(const Shape& in) override {
    shape_ = in;
    return in;
  }
  std::string describe() const override {
    return detail::concat(shape_.is_features() ? "batchnorm1d " : "batchnorm2d ", shape_.c,
                          act_.kind == Act::None ? "" : " +act");
  }
  std::vector<ParamSpec> params() const override {
    const InitRule scale = init_ == InitScheme::DCGAN ? InitRule{InitRule::Normal, 1.0f, 0.02f}
                                                      : InitRule{InitRule::Constant, 1.0f, 0.0f};
    return {{"weight", {shape_.c}, false, scale},
            {"bias", {shape_.c}, false, {InitRule::Constant, 0.0f, 0.0f}}};
  }
  std::vector<StateSpec> states() const override {
    return {{"running_mean", shape_.c, 0.0f, false},
            {"running_var", shape_.c, 1.0f, false},
            {"num_batches_tracked", 1, 0.0f, true}};
  }
  std::vector<int64_t> scratch_counts() const override { return {shape_.c, shape_.c}; }  // batch mean, invstd
  bool fuse_activation(const Activation& a) override {
    if (act_.kind != Act::None) return false;
    act_ = a;
    return true;
  }

  std::string tangent_refusal() const override {
    return "batch norm normalizes each sample with statistics of the whole batch, so a sample's "
           "output depends on the others and the per-sample input gradients of a gradient penalty "
           "do not exist; use \"ln\" (layer norm) in this network";
  }
  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::batchnorm_forward<T>(ex, dims(io), io.mode, io.x, io.params[0], io.params[1], io.states[0],
                              io.states[1], io.scratch[0], io.scratch[1], io.y, act_);
    if (io.mode == BatchNormMode::Train) ops::increment_counter<T>(ex, io.counters[0]);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    GANCU_CHECK(io.mode != BatchNormMode::Eval, "batch-norm backward needs batch statistics");
    T* dgamma = io.param_grads ? io.grads[0] : nullptr;
    T* dbeta = io.param_grads ? io.grads[1] : nullptr;
    ops::batchnorm_backward<T>(ex, dims(io), io.x, io.params[0], io.scratch[0], io.scratch[1], io.y, io.dy,
                               io.dx, io.accumulate_dx, dgamma, dbeta, act_);
  }

 private:
  BatchNormDims dims(const LayerIO<T>& io) const {
    // Synchronized statistics in training only: sampling runs on rank 0 alone.
    const BatchNormSync* sync = io.mode == BatchNormMode::Train ? io.bn_sync : nullptr;
    return {int64_t(io.batch) * shape_.h * shape_.w, shape_.c, momentum_, eps_, sync};
  }

  float momentum_, eps_;
  InitScheme init_;
  Shape shape_;
  Activation act_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_batchnorm(const LayerSpec& spec, InitScheme init, const std::string& where) {
  const float momentum = spec.get_float("momentum", 0.1f, where);
  const float eps = spec.get_float("eps", 1e-5f, where);
  if (!(momentum > 0.0f && momentum <= 1.0f))
    usage_error(where, ": bn momentum must be in (0, 1], got ", momentum);
  if (!(eps > 0.0f)) usage_error(where, ": bn eps must be positive, got ", eps);
  return std::make_unique<BatchNormLayer<T>>(momentum, eps, init);
}
GANCU_INSTANTIATE_LAYER(make_batchnorm, const LayerSpec&, InitScheme, const std::string&)

}  // namespace gancu
