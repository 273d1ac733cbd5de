// Internal: the constructors of each layer kind, called by make_layer (layer_factory.cpp).
#pragma once

#include <memory>
#include <string>

#include "gancu/layers.h"

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

// The weight and bias init of a layer with `fan_in` inputs per output: DCGAN's N(0, 0.02) and
// zero bias, or PyTorch's defaults (kaiming-uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in)),
// for weight and bias alike).
InitRule weight_init(InitScheme scheme, int64_t fan_in);
InitRule bias_init(InitScheme scheme, int64_t fan_in);

}  // namespace gancu

// Instantiates a layer constructor for the two scalar types.
#define GANCU_INSTANTIATE_LAYER(fn, ...)                         \
  template std::unique_ptr<Layer<float>> fn<float>(__VA_ARGS__); \
  template std::unique_ptr<Layer<double>> fn<double>(__VA_ARGS__);
