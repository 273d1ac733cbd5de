// Layers: each one knows its output shape, its parameters and states, and how to run forward and
// backward through the ops of ops.h. Backward is written by hand per layer (no autograd tape).
//
// A layer does not own memory. The Network plans every buffer into the arena and hands the layer
// its pointers in a LayerIO at each call. Layers are templated on the scalar type: float for
// training, double for the gradient checks of the CPU reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gancu/exec.h"
#include "gancu/layer_spec.h"
#include "gancu/op_types.h"
#include "gancu/tensor.h"

namespace gancu {

// How a parameter starts. Drawn on the host from Philox stream kStreamInit, so that both backends
// start from the same values.
struct InitRule {
  enum Kind { Constant, Normal, Uniform } kind = Constant;
  float a = 0.0f, b = 0.0f;  // constant: a; normal: mean a, std b; uniform: [a, b)
};

enum class InitScheme { DCGAN, PyTorch };
InitScheme parse_init_scheme(const std::string& name, const std::string& where);

struct ParamSpec {
  std::string name;        // "weight", "bias" (PyTorch's attribute names)
  std::vector<int> shape;  // gancu's layout: linear [out, in], conv/convT [k, r, s, c]
  bool krsc = false;       // exported to PyTorch as [k, c, r, s]
  InitRule init;
  int64_t numel() const;
};

// Buffers that are not trained but belong to the model and its checkpoints.
struct StateSpec {
  std::string name;  // "running_mean", "running_var", "num_batches_tracked"
  int64_t count = 0;
  float init = 0.0f;
  bool is_counter = false;  // an int64 counter (num_batches_tracked) instead of floats
};

// Everything a layer reads and writes in one call. Pointers are into the Exec's backend memory.
//
// Three passes use it:
// - forward:  x -> y;  backward: dy -> dx and the parameter gradients (the ordinary pair).
// - jvp: the forward-mode derivative of the layer along a tangent of its input, at the point of
//   the last forward: tx -> ty (no bias: a tangent has no offset; activation masks frozen).
// - jvp_backward: the backward of that tangent computation. Its inputs are the adjoint of the
//   tangent output (dty) and the adjoint of the primal output (dy, "primal adjoint"; zero when
//   dy_zero). It produces the adjoint of the tangent input (dtx), the primal adjoint of the input
//   (dx: the ordinary backward of dy plus the layer's second-order terms) and the parameter
//   gradients of both paths. This is how a gradient penalty's gradient with respect to the
//   parameters is computed without double backward (DESIGN.md, "Gradient penalties").
// Layers with several inputs (concat, add) read xs / dxs (input 0 is also x / dx); single-input
// layers use x and dx.
template <class T>
struct LayerIO {
  int batch = 0;         // samples in this call (at most the planned batch)
  const T* x = nullptr;  // input [batch, in_shape]
  T* y = nullptr;        // output [batch, out_shape]
  T* dy = nullptr;       // gradient of y (backward; may be overwritten); primal adjoint (jvp_backward)
  T* dx = nullptr;       // gradient of x (null: not wanted)
  bool accumulate_dx = false;
  bool param_grads = true;   // false: only dx is wanted (generator step through D)
  std::vector<const T*> xs;  // every input, in the order of in= (multi-input layers)
  std::vector<T*> dxs;       // their gradients (null: not wanted)
  std::vector<char> accumulate_dxs;

  // The tangent pass. A null tangent input is zero (an input that does not depend on the
  // penalized input, such as class labels).
  const T* tx = nullptr;  // tangent of x
  T* ty = nullptr;        // tangent of y
  T* dty = nullptr;       // adjoint of ty (may be overwritten)
  T* dtx = nullptr;       // adjoint of tx (null: not wanted)
  bool accumulate_dtx = false;
  bool dy_zero = true;  // jvp_backward: no primal adjoint reached y; dy is then free scratch memory
  std::vector<const T*> txs;
  std::vector<T*> dtxs;
  std::vector<char> accumulate_dtxs;

  std::vector<T*> params, grads, states;  // in the order of params() / states()
  std::vector<int64_t*> counters;         // in the order of the counter states
  std::vector<T*> scratch;                // in the order of scratch_counts()
  BatchNormMode mode = BatchNormMode::Train;
  const int64_t* step = nullptr;  // the step counter, in backend memory
  uint64_t seed = 0;
  uint32_t pass = 0;  // which pass of the network this is (dropout draws a mask per pass and step)
  const BatchNormSync* bn_sync = nullptr;  // synchronized batch norm (Network::set_batchnorm_sync)
};

// Which backward passes will run, known when a network is planned (so that a backend plans only
// what is called; see ConvPasses): backward at all (false: the network only runs forward), and
// the gradient of the input (for a whole network: of its main input, which G's and the
// classifier's callers never ask for; for a layer: of the values it reads).
struct BackwardUse {
  bool backward = true;
  bool input_grad = true;
};

template <class T>
class Layer {
 public:
  virtual ~Layer() = default;

  // Called once when the network is built, with the input shape at the planned batch. Validates
  // (UsageError naming the layer) and returns the output shape.
  virtual Shape configure(const Shape& in) = 0;
  // The same for layers with several inputs (concat, add). The default takes exactly one.
  virtual Shape configure_inputs(const std::vector<Shape>& in);
  virtual bool multi_input() const { return false; }
  virtual std::string describe() const = 0;  // "conv 1->64 k4 s2 p1" for summaries

  virtual std::vector<ParamSpec> params() const { return {}; }
  virtual std::vector<StateSpec> states() const { return {}; }
  virtual std::vector<int64_t> scratch_counts() const { return {}; }  // e.g. batch-norm's saved stats
  virtual size_t workspace_bytes(const Exec&, BackwardUse) const { return 0; }

  // Flatten and Reshape only relabel their input: their output and its gradient share the
  // input's memory, and forward/backward do nothing.
  virtual bool aliases_input() const { return false; }
  // Layers that can apply an activation in their own epilogue accept it here.
  virtual bool fuse_activation(const Activation&) { return false; }

  virtual void forward(const Exec& ex, const LayerIO<T>& io) const = 0;
  virtual void backward(const Exec& ex, const LayerIO<T>& io) const = 0;

  // The tangent pass (see LayerIO). Why a layer cannot take part in it ("" when it can): batch
  // norm with batch statistics mixes the samples, so the per-sample input gradients a penalty
  // needs do not exist.
  virtual std::string tangent_refusal() const { return ""; }
  // Whether jvp_backward produces a primal adjoint even when none reaches the output: the layers
  // whose Jacobian depends on their input (tanh, sigmoid, layer norm). Piecewise-linear layers
  // do not, so a critic made of them costs no primal backward in the penalty.
  virtual bool second_order() const { return false; }
  virtual void jvp(const Exec& ex, const LayerIO<T>& io) const;
  virtual void jvp_backward(const Exec& ex, const LayerIO<T>& io) const;
};

// Builds a layer from its spec. `index` is its position in the network (used for names and the
// dropout stream); `where` names the config field for messages.
template <class T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, InitScheme init, int index,
                                     const std::string& where);

// The activation a spec names, if it is one of the activation kinds.
bool spec_activation(const LayerSpec& spec, Activation* out);

}  // namespace gancu
