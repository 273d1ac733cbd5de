#include <cmath>

#include "gancu/check.h"
#include "layer_impl.h"

namespace gancu {

InitScheme parse_init_scheme(const std::string& name, const std::string& where) {
  if (name == "dcgan") return InitScheme::DCGAN;
  if (name == "pytorch") return InitScheme::PyTorch;
  usage_error(where, ": expected \"dcgan\" or \"pytorch\", got \"", name, "\"");
}

InitRule weight_init(InitScheme scheme, int64_t fan_in) {
  if (scheme == InitScheme::DCGAN) return {InitRule::Normal, 0.0f, 0.02f};
  const float bound = 1.0f / std::sqrt(float(fan_in));
  return {InitRule::Uniform, -bound, bound};
}

InitRule bias_init(InitScheme scheme, int64_t fan_in) {
  if (scheme == InitScheme::DCGAN) return {InitRule::Constant, 0.0f, 0.0f};
  const float bound = 1.0f / std::sqrt(float(fan_in));
  return {InitRule::Uniform, -bound, bound};
}

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int d : shape) n *= d;
  return n;
}

bool spec_activation(const LayerSpec& spec, Activation* out) {
  Activation a;
  if (spec.kind == "relu")
    a.kind = Act::ReLU;
  else if (spec.kind == "lrelu") {
    a.kind = Act::LeakyReLU;
    a.slope = spec.get_float("slope", 0.2f, spec.text);
    if (!(a.slope >= 0.0f && a.slope < 1.0f)) usage_error(spec.text, ": lrelu slope must be in [0, 1)");
  } else if (spec.kind == "tanh")
    a.kind = Act::Tanh;
  else if (spec.kind == "sigmoid")
    a.kind = Act::Sigmoid;
  else
    return false;
  if (out) *out = a;
  return true;
}

template <class T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, InitScheme init, int index,
                                     const std::string& where) {
  Activation act;
  if (spec_activation(spec, &act)) return make_activation<T>(act);
  if (spec.kind == "linear") return make_linear<T>(spec, init, where);
  if (spec.kind == "conv") return make_conv<T>(spec, init, false, where);
  if (spec.kind == "convT") return make_conv<T>(spec, init, true, where);
  if (spec.kind == "bn") return make_batchnorm<T>(spec, init, where);
  if (spec.kind == "dropout") return make_dropout<T>(spec, index, where);
  if (spec.kind == "reshape") return make_reshape<T>(spec, where);
  if (spec.kind == "flatten") return make_flatten<T>();
  if (spec.kind == "maxpool") return make_pool<T>(spec, true, where);
  if (spec.kind == "avgpool") return make_pool<T>(spec, false, where);
  if (spec.kind == "resize") return make_resize<T>(spec, where);
  if (spec.kind == "ln") return make_layernorm<T>(spec, where);
  if (spec.kind == "concat") return make_join<T>(spec, true, where);
  if (spec.kind == "add") return make_join<T>(spec, false, where);
  if (spec.kind == "mbdisc") return make_minibatch_disc<T>(spec, where);
  if (spec.kind == "mbstd") return make_minibatch_std<T>(spec, where);
  if (spec.kind == "embed") return make_embed<T>(spec, where);
  if (spec.kind == "project") return make_project<T>(spec, init, where);
  usage_error(where, ": unknown layer kind '", spec.kind, "'");
}
GANCU_INSTANTIATE_LAYER(make_layer, const LayerSpec&, InitScheme, int, const std::string&)

}  // namespace gancu
