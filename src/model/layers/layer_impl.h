// Internal: the constructors of each layer kind, called by make_layer (layer_factory.cpp).
#pragma once

#include <memory>
#include <string>

#include "gancu/layers.h"
#include "gancu/ops.h"

namespace gancu {

template <class T>
std::unique_ptr<Layer<T>> make_linear(const LayerSpec& spec, InitScheme init, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_conv(const LayerSpec& spec, InitScheme init, bool transposed,
                                    const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_batchnorm(const LayerSpec& spec, InitScheme init, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_activation(const Activation& act);
template <class T>
std::unique_ptr<Layer<T>> make_dropout(const LayerSpec& spec, int index, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_reshape(const LayerSpec& spec, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_flatten();
// maxpool (max = true) or avgpool.
template <class T>
std::unique_ptr<Layer<T>> make_pool(const LayerSpec& spec, bool max, const std::string& where);
// resize h= w=: bilinear, as PyTorch's F.interpolate(align_corners=False).
template <class T>
std::unique_ptr<Layer<T>> make_resize(const LayerSpec& spec, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_layernorm(const LayerSpec& spec, const std::string& where);
// concat (concat = true) or add.
template <class T>
std::unique_ptr<Layer<T>> make_join(const LayerSpec& spec, bool concat, const std::string& where);
// The statistics of the whole batch that counter mode collapse: minibatch discrimination and
// minibatch standard deviation.
template <class T>
std::unique_ptr<Layer<T>> make_minibatch_disc(const LayerSpec& spec, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_minibatch_std(const LayerSpec& spec, const std::string& where);

// The layers that read class labels: a learned embedding and the projection discriminator's term.
template <class T>
std::unique_ptr<Layer<T>> make_embed(const LayerSpec& spec, const std::string& where);
template <class T>
std::unique_ptr<Layer<T>> make_project(const LayerSpec& spec, InitScheme init, const std::string& where);

// The weight and bias init of a layer with `fan_in` inputs per output: DCGAN's N(0, 0.02) and
// zero bias, or PyTorch's defaults (kaiming-uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in)),
// for weight and bias alike).
InitRule weight_init(InitScheme scheme, int64_t fan_in);
InitRule bias_init(InitScheme scheme, int64_t fan_in);

// An activation whose derivative depends on its input: its tangent backward has second-order
// terms (ops.h, activation_second_order).
inline bool is_smooth(const Activation& a) {
  return a.kind == Act::Tanh || a.kind == Act::Sigmoid;
}

// The tangent pass of a layer y = act(f(x; w) + b) whose f is linear in x (linear, conv, convT).
// `linear_part(x, y)` writes f(x; w) without bias and activation; `backward(x, dy, dx, acc, bias,
// act)` is the layer's ordinary backward at input x from dy (parameter gradients accumulate, the
// bias gradient only when `bias`).
//
// jvp: ty = act'(z) f(tx; w), the activation's derivative read from y (frozen masks).
// jvp_backward: the primal path (dy, when an adjoint reached y, plus the activation's
// second-order term r(y) ty dty for tanh/sigmoid) is an ordinary backward at x from
// dz = act'(y) dy + r(y) ty dty; the tangent path is an ordinary backward at tx from dty with
// no bias. The second-order term reads dty, so it runs before the tangent path overwrites dty.
template <class T, class LinearPart>
void affine_jvp(const Exec& ex, const LayerIO<T>& io, int64_t out_count, const Activation& act,
                const LinearPart& linear_part) {
  linear_part(io.tx, io.ty);
  if (act.kind != Act::None) ops::activation_backward<T>(ex, out_count, io.y, io.ty, io.ty, false, act);
}

template <class T, class Backward>
void affine_jvp_backward(const Exec& ex, const LayerIO<T>& io, int64_t out_count, const Activation& act,
                         const Backward& backward) {
  const bool second = is_smooth(act) && io.dty;
  if (second) {
    // dz into the primal adjoint's buffer (scratch when no adjoint reached y).
    ops::activation_second_order<T>(ex, out_count, io.y, io.ty, io.dty, io.dy_zero ? nullptr : io.dy, io.dy,
                                    act);
    backward(io.x, io.dy, io.dx, io.accumulate_dx, true, Activation{});
  } else if (!io.dy_zero) {
    backward(io.x, io.dy, io.dx, io.accumulate_dx, true, act);
  }
  if (io.dty) backward(io.tx, io.dty, io.dtx, io.accumulate_dtx, false, act);
}

}  // namespace gancu

// Instantiates a layer constructor for the two scalar types.
#define GANCU_INSTANTIATE_LAYER(fn, ...)                         \
  template std::unique_ptr<Layer<float>> fn<float>(__VA_ARGS__); \
  template std::unique_ptr<Layer<double>> fn<double>(__VA_ARGS__);
