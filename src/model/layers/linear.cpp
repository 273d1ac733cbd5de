// Linear: y = act(x w^T + b), PyTorch's layout for w ([out, in]).
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class LinearLayer final : public Layer<T> {
 public:
  LinearLayer(int out, bool bias, InitScheme init, std::string where)
      : out_(out), bias_(bias), init_(init), where_(std::move(where)) {}

  Shape configure(const Shape& in) override {
    if (!in.is_features())
      usage_error(where_, ": linear needs a feature vector but gets a ", in.h, "x", in.w, "x", in.c,
                  " image; add \"flatten\" before it");
    in_ = in.c;
    return Shape::features(in.n, out_);
  }
  std::string describe() const override {
    return detail::concat("linear ", in_, "->", out_, bias_ ? "" : " (no bias)", act_name());
  }
  std::vector<ParamSpec> params() const override {
    std::vector<ParamSpec> p{{"weight", {out_, in_}, false, weight_init(init_, in_)}};
    if (bias_) p.push_back({"bias", {out_}, false, bias_init(init_, in_)});
    return p;
  }
  bool fuse_activation(const Activation& a) override {
    if (act_.kind != Act::None) return false;
    act_ = a;
    return true;
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::linear_forward<T>(ex, dims(io), io.x, io.params[0], bias_ ? io.params[1] : nullptr, io.y, act_);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    T* dw = io.param_grads ? io.grads[0] : nullptr;
    T* db = io.param_grads && bias_ ? io.grads[1] : nullptr;
    ops::linear_backward<T>(ex, dims(io), io.x, io.params[0], io.y, io.dy, io.dx, io.accumulate_dx, dw, db,
                            act_);
  }
  bool second_order() const override { return is_smooth(act_); }
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    affine_jvp<T>(ex, io, int64_t(io.batch) * out_, act_, [&](const T* x, T* y) {
      ops::linear_forward<T>(ex, dims(io), x, io.params[0], nullptr, y, Activation{});
    });
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    affine_jvp_backward<T>(ex, io, int64_t(io.batch) * out_, act_,
                           [&](const T* x, T* dy, T* dx, bool acc, bool bias, Activation a) {
                             T* db = bias && bias_ ? io.grads[1] : nullptr;
                             ops::linear_backward<T>(ex, dims(io), x, io.params[0], io.y, dy, dx, acc,
                                                     io.grads[0], db, a);
                           });
  }

 private:
  LinearDims dims(const LayerIO<T>& io) const { return {io.batch, in_, out_}; }
  std::string act_name() const { return act_.kind == Act::None ? "" : " +act"; }

  int out_;
  bool bias_;
  InitScheme init_;
  std::string where_;
  int in_ = 0;
  Activation act_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_linear(const LayerSpec& spec, InitScheme init, const std::string& where) {
  return std::make_unique<LinearLayer<T>>(spec.get_int("out", where), spec.get_bool("bias", true, where),
                                          init, where);
}
GANCU_INSTANTIATE_LAYER(make_linear, const LayerSpec&, InitScheme, const std::string&)

}  // namespace gancu
