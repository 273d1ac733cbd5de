// Layer norm (`ln`): each sample normalized over all its values, then a per-channel scale and
// offset (PyTorch's LayerNorm(c) for features, GroupNorm(1, c) for images), with the following
// activation fused. The normalization a critic uses where batch norm cannot go: it treats every
// sample alone, so per-sample input gradients (gradient penalties) exist. Its Jacobian depends on
// its input, so its tangent backward has second-order terms (ops.h, layernorm_jvp_backward).
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class LayerNormLayer final : public Layer<T> {
 public:
  explicit LayerNormLayer(float eps) : eps_(eps) {}

  Shape configure(const Shape& in) override {
    shape_ = in;
    return in;
  }
  std::string describe() const override {
    return detail::concat("layernorm ", shape_.c, act_.kind == Act::None ? "" : " +act");
  }
  std::vector<ParamSpec> params() const override {
    return {{"weight", {shape_.c}, false, {InitRule::Constant, 1.0f, 0.0f}},
            {"bias", {shape_.c}, false, {InitRule::Constant, 0.0f, 0.0f}}};
  }
  std::vector<int64_t> scratch_counts() const override { return {shape_.n, shape_.n}; }  // row mean, invstd
  bool fuse_activation(const Activation& a) override {
    if (act_.kind != Act::None) return false;
    act_ = a;
    return true;
  }
  bool second_order() const override { return true; }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::layernorm_forward<T>(ex, dims(io), io.x, io.params[0], io.params[1], io.scratch[0], io.scratch[1],
                              io.y, act_);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    T* dgamma = io.param_grads ? io.grads[0] : nullptr;
    T* dbeta = io.param_grads ? io.grads[1] : nullptr;
    ops::layernorm_backward<T>(ex, dims(io), io.x, io.params[0], io.scratch[0], io.scratch[1], io.y, io.dy,
                               io.dx, io.accumulate_dx, dgamma, dbeta, act_);
  }
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    ops::layernorm_jvp<T>(ex, dims(io), io.x, io.params[0], io.scratch[0], io.scratch[1], io.y, io.tx, io.ty,
                          act_);
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (!io.dty) {  // only a primal adjoint reached this layer: its ordinary backward
      backward(ex, io);
      return;
    }
    ops::layernorm_jvp_backward<T>(ex, dims(io), io.x, io.params[0], io.scratch[0], io.scratch[1], io.y,
                                   io.tx, io.ty, io.dty, io.dy_zero ? nullptr : io.dy, io.dtx,
                                   io.accumulate_dtx, io.dx, io.accumulate_dx, io.grads[0], io.grads[1],
                                   act_);
  }

 private:
  LayerNormDims dims(const LayerIO<T>& io) const {
    return {int64_t(io.batch), shape_.per_sample(), shape_.c, eps_};
  }

  float eps_;
  Shape shape_;
  Activation act_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_layernorm(const LayerSpec& spec, const std::string& where) {
  const float eps = spec.get_float("eps", 1e-5f, where);
  if (!(eps > 0.0f)) usage_error(where, ": ln eps must be positive, got ", eps);
  return std::make_unique<LayerNormLayer<T>>(eps);
}
GANCU_INSTANTIATE_LAYER(make_layernorm, const LayerSpec&, const std::string&)

}  // namespace gancu
