// The layers that act on each value alone: activations (when not fused into the layer before)
// and dropout.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "gancu/rng.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class ActivationLayer final : public Layer<T> {
 public:
  explicit ActivationLayer(const Activation& act) : act_(act) {}
  Shape configure(const Shape& in) override {
    shape_ = in;
    return in;
  }
  std::string describe() const override { return act_name(act_.kind); }
  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::activation_forward<T>(ex, io.batch * shape_.per_sample(), io.x, io.y, act_);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (io.dx)
      ops::activation_backward<T>(ex, io.batch * shape_.per_sample(), io.y, io.dy, io.dx, io.accumulate_dx,
                                  act_);
  }
  bool second_order() const override { return is_smooth(act_); }
  // ty = act'(x) tx, the derivative read from y.
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    ops::activation_backward<T>(ex, io.batch * shape_.per_sample(), io.y, io.tx, io.ty, false, act_);
  }
  // dx = act'(x) dy + r(y) ty dty (its input is the pre-activation); dtx = act'(x) dty.
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    const int64_t n = io.batch * shape_.per_sample();
    if (is_smooth(act_) && io.dty) {
      ops::activation_second_order<T>(ex, n, io.y, io.ty, io.dty, io.dy_zero ? nullptr : io.dy, io.dy, act_);
      ops::activation_backward<T>(ex, n, io.y, io.dy, io.dx, io.accumulate_dx, Activation{});
    } else if (!io.dy_zero) {
      ops::activation_backward<T>(ex, n, io.y, io.dy, io.dx, io.accumulate_dx, act_);
    }
    if (io.dty) ops::activation_backward<T>(ex, n, io.y, io.dty, io.dtx, io.accumulate_dtx, act_);
  }

 private:
  Activation act_;
  Shape shape_;
};

template <class T>
class DropoutLayer final : public Layer<T> {
 public:
  DropoutLayer(float p, uint32_t stream) : p_(p), stream_(stream) {}
  Shape configure(const Shape& in) override {
    shape_ = in;
    return in;
  }
  std::string describe() const override { return detail::concat("dropout p=", p_); }
  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    const int64_t n = io.batch * shape_.per_sample();
    if (io.mode == BatchNormMode::Eval)  // inference: dropout is the identity
      ops::activation_forward<T>(ex, n, io.x, io.y, Activation{});
    else
      ops::dropout_forward<T>(ex, n, io.x, io.y, p_, io.seed, stream(io), io.step);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (io.dx)
      ops::dropout_backward<T>(ex, io.batch * shape_.per_sample(), io.dy, io.dx, io.accumulate_dx, p_,
                               io.seed, stream(io), io.step);
  }
  // Dropout is linear with the forward's mask: the tangent and both adjoints use the same mask.
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    const int64_t n = io.batch * shape_.per_sample();
    if (io.mode == BatchNormMode::Eval)
      ops::activation_forward<T>(ex, n, io.tx, io.ty, Activation{});
    else
      ops::dropout_forward<T>(ex, n, io.tx, io.ty, p_, io.seed, stream(io), io.step);
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    const int64_t n = io.batch * shape_.per_sample();
    if (!io.dy_zero && io.dx)
      ops::dropout_backward<T>(ex, n, io.dy, io.dx, io.accumulate_dx, p_, io.seed, stream(io), io.step);
    if (io.dty && io.dtx)
      ops::dropout_backward<T>(ex, n, io.dty, io.dtx, io.accumulate_dtx, p_, io.seed, stream(io), io.step);
  }

 private:
  // Each pass of the network over one step (D on the real batch, on the fakes, in the G step)
  // draws its own mask.
  uint32_t stream(const LayerIO<T>& io) const { return stream_ + io.pass * kDropoutPassStride; }

  float p_;
  uint32_t stream_;
  Shape shape_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_activation(const Activation& act) {
  return std::make_unique<ActivationLayer<T>>(act);
}
GANCU_INSTANTIATE_LAYER(make_activation, const Activation&)

template <class T>
std::unique_ptr<Layer<T>> make_dropout(const LayerSpec& spec, int index, const std::string& where) {
  const float p = spec.get_float("p", 0.5f, where);
  if (!(p >= 0.0f && p < 1.0f)) usage_error(where, ": dropout p must be in [0, 1), got ", p);
  return std::make_unique<DropoutLayer<T>>(p, kStreamDropout + uint32_t(index));
}
GANCU_INSTANTIATE_LAYER(make_dropout, const LayerSpec&, int, const std::string&)

}  // namespace gancu
