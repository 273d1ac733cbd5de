// A network: a small static graph of layers in a fixed, topologically sorted order, with every
// buffer planned into the arena. Backward walks the same list in reverse.
//
// Built from the layer strings of a config (model.generator / model.discriminator). By default
// each string reads the output of the string before it, so a list of strings is a chain. A
// string may name its output (`name=features`) and read named values (`in=a` or `in=a,b` for
// the layers with several inputs, concat and add); the network's external inputs are named too
// (`input` is the main one: the noise of G, the image of D). The network's output is the output
// of the last string; any named value can also be read (a tap: feature matching) or receive a
// gradient (a second head). docs/config.md has the syntax.
//
// An activation that directly follows a layer able to fuse it runs in that layer's epilogue
// (unless that layer's own output is named, since then its pre-activation value is observable);
// the layer indices (and so the parameter names, "G.4.weight") stay those of the strings, which
// are also the module indices of the PyTorch peer.
//
// Parameters, their gradients, and the running statistics are each one flat buffer, so that the
// optimizer is one launch and a checkpoint is one copy.
//
// Gradients of values read by several layers are summed: in the backward pass the first writer
// of a gradient writes it and later writers add to it. A value that no gradient reaches (a head
// without a loss) costs nothing.
//
// The tangent pass (jvp, jvp_backward) is the forward-mode derivative of the network along a
// tangent of its main input and the backward of that computation: what a gradient penalty needs
// (DESIGN.md, "Gradient penalties without double backward"). It is planned only on request
// (enable_tangents) and refused for layers that mix the samples of a batch (batch norm).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gancu/arena.h"
#include "gancu/layers.h"

namespace gancu {

// A named tensor of a network, as it appears in checkpoints.
struct NetworkTensor {
  enum Kind { Param, State, Counter };
  std::string name;        // "G.4.weight"
  std::vector<int> shape;  // gancu's layout
  bool krsc = false;       // exported to PyTorch as [k, c, r, s]
  Kind kind = Param;
  int64_t offset = 0;  // elements into params() / states() / counters()
  int64_t count = 0;
};

// An external input of a network, at the planned batch. The first is the main one.
struct NetworkInput {
  std::string name;  // "input" for the main input
  Shape shape;
};

template <class T>
class Network {
 public:
  // `id` separates the init streams of the networks of one model (1: G, 2: D, ...).
  Network(std::string name, int id, const std::vector<std::string>& layers, const std::string& where,
          const std::vector<NetworkInput>& inputs, InitScheme init);
  // A network with one input, named "input".
  Network(std::string name, int id, const std::vector<std::string>& layers, const std::string& where,
          Shape input, InitScheme init);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const std::string& name() const { return name_; }
  Shape input_shape() const { return values_[0].shape; }  // the main input, at the planned batch
  Shape output_shape() const { return values_[size_t(output_)].shape; }
  int planned_batch() const { return values_[0].shape.n; }

  // The tangent pass: why this network cannot run it ("" when it can; otherwise the first layer
  // that refuses, with its index and reason), and the request to plan its buffers (before plan()).
  std::string tangent_refusal() const;
  void enable_tangents();

  // `use`: the backward passes this network's callers will run (default: all), so that the
  // backend plans only those (a backward pass that was not planned still runs, with a choice made
  // at its first call).
  void plan(ArenaPlan& plan, const Exec& ex, BackwardUse use = {});
  void bind(const Arena& arena);
  // Draws the initial parameters from (seed, kStreamInit) and resets the states, on the host, and
  // copies them to the backend.
  void initialize(const Exec& ex, uint64_t seed);

  // Synchronized batch norm (model.sync_bn): the batch-norm layers compute their training
  // statistics through `sync` (null: this process's batch only, the default).
  void set_batchnorm_sync(const BatchNormSync* sync);

  // Named values: the external inputs, and every string with `name=`. A UsageError (listing the
  // names) for an unknown name.
  int value_id(const std::string& name) const;
  int output_id() const { return output_; }
  Shape value_shape(int id) const { return values_[size_t(id)].shape; }
  // A value's buffer (valid after forward, until the next forward) and its gradient buffer (for a
  // loss on a tap or a head; see backward's seeds).
  T* value_data(int id) const;
  T* value_grad(int id) const;
  // The data of an external input other than the main one (class labels), read by every forward.
  void set_input(int id, const T* data);

  // `input` is [batch, input_shape]; batch may be below the planned batch (sampling). `pass`
  // separates the passes of one step (D on real, on fake, in the G step): dropout draws its mask
  // from (seed, step, pass), and backward and jvp reuse the mask of the last forward.
  void forward(const Exec& ex, const T* input, int batch, BatchNormMode mode, const int64_t* step,
               uint64_t seed, uint32_t pass = 0);
  // Needs output_grad() filled. input_grad may be null. With param_grads == false only input
  // gradients are computed (the generator step through the discriminator).
  void backward(const Exec& ex, T* input_grad, bool accumulate_input_grad, bool param_grads);
  // The same, where the caller has filled the gradients of the values `seeds` (value ids; the
  // output's id for output_grad()) and of no other value.
  void backward(const Exec& ex, const std::vector<int>& seeds, T* input_grad, bool accumulate_input_grad,
                bool param_grads);

  T* output() const { return value_data(output_); }
  T* output_grad() const { return value_grad(output_); }
  // The output buffer [batch, shape] of the layer at `layer_index` of the layer strings (for
  // feature extraction: valid after forward, until the next forward). When the activation string
  // after it was fused into that layer, this is the activated output. Flatten and reshape return
  // the buffer they relabel. A UsageError for an index that names no layer, or that names an
  // activation fused into the layer before it (ask for that layer's index instead).
  T* layer_output(int layer_index) const;

  // Forward-mode derivative along `tangent` ([batch, input_shape], the main input's tangent; other
  // inputs have none) at the point of the last forward; tangent_output() then holds it.
  void jvp(const Exec& ex, const T* tangent);
  T* tangent_output() const;
  // The backward of the jvp computation from tangent_output_grad() (filled by the caller):
  // accumulates into the parameter gradients the gradient of <tangent_output_grad,
  // tangent_output> with respect to the parameters.
  void jvp_backward(const Exec& ex);
  T* tangent_output_grad() const { return output_grad(); }

  int64_t param_count() const { return param_count_; }  // elements of the flat buffer, padding included
  T* params() const { return params_; }
  T* grads() const { return grads_; }
  int64_t state_count() const { return state_count_; }
  T* states() const { return states_; }
  int64_t counter_count() const { return counter_count_; }
  int64_t* counters() const { return counters_; }
  int64_t trainable_count() const;  // real parameters, without padding
  const std::vector<NetworkTensor>& tensors() const { return tensors_; }

  std::string summary() const;  // one line per layer: index, what, output shape, parameters

 private:
  struct Node;
  struct Value {
    std::string name;  // "" when unnamed
    Shape shape;       // at the planned batch
    int root = 0;      // the value whose memory it uses (itself, or the input an alias relabels)
    bool external = false;
  };
  T* data_of(int root) const;
  T* grad_of(int root) const;
  T* tangent_of(int root) const;
  T* adjoint_of(int root) const;

  std::string name_;
  int id_;
  std::vector<Value> values_;  // the external inputs first, then one per node
  int inputs_ = 0;             // external inputs
  int output_ = 0;
  std::vector<int> output_seed_;  // {output_}: the seed list of the ordinary backward
  std::vector<std::unique_ptr<Node>> nodes_;
  int layer_count_ = 0;  // layer strings, fused activations included
  bool tangents_ = false, second_order_ = false;
  std::vector<Slot> data_slots_, grad_slots_, tangent_slots_, adjoint_slots_;
  std::vector<T*> data_, grad_, tangent_, adjoint_;
  std::vector<NetworkTensor> tensors_;
  std::vector<InitRule> param_inits_;  // per Param tensor, in tensors_ order
  std::vector<float> state_inits_;     // per State tensor
  int64_t param_count_ = 0, state_count_ = 0, counter_count_ = 0;
  Slot params_slot_, grads_slot_, states_slot_, counters_slot_;
  T* params_ = nullptr;
  T* grads_ = nullptr;
  T* states_ = nullptr;
  int64_t* counters_ = nullptr;
  std::vector<const T*> ext_data_;  // per external input
  T* ext_grad_ = nullptr;           // the main input's gradient in the current backward
  const T* ext_tangent_ = nullptr;  // the main input's tangent in the current jvp
  int batch_ = 0;
  bool jvp_done_ = false;
  // Per value, during a backward / tangent backward: has a gradient (or adjoint) been written?
  std::vector<char> written_, tangent_nonzero_, adjoint_written_;
};

}  // namespace gancu
