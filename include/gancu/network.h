// A network: layers in a fixed, topologically sorted order, with every buffer planned into the
// arena. Backward walks the same list in reverse.
//
// Built from the layer strings of a config (model.generator / model.discriminator). An
// activation that directly follows a layer able to fuse it runs in that layer's epilogue; the
// layer indices (and so the parameter names, "G.4.weight") stay those of the strings, which are
// also the module indices of the PyTorch peer's nn.Sequential.
//
// Parameters, their gradients, and the running statistics are each one flat buffer, so that the
// optimizer is one launch and a checkpoint is one copy.
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

template <class T>
class Network {
 public:
  // `id` separates the init streams of the networks of one model (1: G, 2: D, ...).
  Network(std::string name, int id, const std::vector<std::string>& layers, const std::string& where,
          Shape input, InitScheme init);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const std::string& name() const { return name_; }
  Shape input_shape() const { return input_; }    // at the planned batch
  Shape output_shape() const { return output_; }  // at the planned batch
  int planned_batch() const { return input_.n; }

  void plan(ArenaPlan& plan, const Exec& ex);
  void bind(const Arena& arena);
  // Draws the initial parameters from (seed, kStreamInit) and resets the states, on the host, and
  // copies them to the backend.
  void initialize(const Exec& ex, uint64_t seed);

  // `input` is [batch, input_shape]; batch may be below the planned batch (sampling).
  void forward(const Exec& ex, const T* input, int batch, BatchNormMode mode, const int64_t* step,
               uint64_t seed);
  // Needs output_grad() filled. input_grad may be null. With param_grads == false only input
  // gradients are computed (the generator step through the discriminator).
  void backward(const Exec& ex, T* input_grad, bool accumulate_input_grad, bool param_grads);

  T* output() const;
  T* output_grad() const;
  // The output buffer [batch, shape] of the layer at `layer_index` of the layer strings (for
  // feature extraction: valid after forward, until the next forward). When the activation string
  // after it was fused into that layer, this is the activated output. Flatten and reshape return
  // the buffer they relabel. A UsageError for an index that names no layer, or that names an
  // activation fused into the layer before it (ask for that layer's index instead).
  T* layer_output(int layer_index) const;

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
  T* value_data(int v) const;
  T* value_grad(int v) const;

  std::string name_;
  int id_;
  Shape input_, output_;
  std::vector<std::unique_ptr<Node>> nodes_;
  int layer_count_ = 0;    // layer strings, fused activations included
  std::vector<int> root_;  // per value: the value whose memory it uses (0: the external input)
  std::vector<Slot> data_slots_, grad_slots_;
  std::vector<T*> data_, grad_;
  std::vector<NetworkTensor> tensors_;
  std::vector<InitRule> param_inits_;  // per Param tensor, in tensors_ order
  std::vector<float> state_inits_;     // per State tensor
  int64_t param_count_ = 0, state_count_ = 0, counter_count_ = 0;
  Slot params_slot_, grads_slot_, states_slot_, counters_slot_;
  T* params_ = nullptr;
  T* grads_ = nullptr;
  T* states_ = nullptr;
  int64_t* counters_ = nullptr;
  const T* ext_input_ = nullptr;
  T* ext_grad_ = nullptr;
  int batch_ = 0;
};

}  // namespace gancu
