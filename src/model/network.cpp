#include "gancu/network.h"

#include <cstdio>

#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/rng.h"

namespace gancu {

namespace {
// Each parameter tensor starts on a 256-byte boundary in the flat buffer, which cuDNN and
// vectorized kernels prefer. The padding stays zero: its gradient is zero, so no optimizer
// moves it.
constexpr int64_t kParamAlignBytes = 256;
int64_t align_elems(int64_t n, size_t elem) {
  const int64_t a = kParamAlignBytes / int64_t(elem);
  return (n + a - 1) / a * a;
}
}  // namespace

template <class T>
struct Network<T>::Node {
  std::unique_ptr<Layer<T>> layer;
  int index = 0;                                                   // position in the layer strings
  int in = 0, out = 0;                                             // value ids
  std::vector<int> param_tensors, state_tensors, counter_tensors;  // into tensors_
  std::vector<int64_t> scratch_counts;
  std::vector<Slot> scratch_slots;
  LayerIO<T> io;
};

template <class T>
Network<T>::Network(std::string name, int id, const std::vector<std::string>& layers,
                    const std::string& where, Shape input, InitScheme init)
    : name_(std::move(name)), id_(id), input_(input) {
  if (layers.empty()) usage_error(where, ": a network needs at least one layer");
  layer_count_ = int(layers.size());
  root_.push_back(0);  // value 0: the external input
  Shape shape = input;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string at = detail::concat(where, "[", i, "]");
    const LayerSpec spec = parse_layer_spec(layers[i], at);
    Activation act;
    // An activation directly after a layer that can take it runs in that layer's epilogue.
    if (spec_activation(spec, &act) && !nodes_.empty() && !nodes_.back()->layer->aliases_input() &&
        nodes_.back()->layer->fuse_activation(act))
      continue;
    auto node = std::make_unique<Node>();
    node->layer = make_layer<T>(spec, init, int(i), at);
    node->index = int(i);
    node->in = int(root_.size()) - 1;
    shape = node->layer->configure(shape);
    node->out = int(root_.size());
    root_.push_back(node->layer->aliases_input() ? root_[node->in] : node->out);

    const std::string prefix = detail::concat(name_, ".", i, ".");
    for (const ParamSpec& p : node->layer->params()) {
      node->param_tensors.push_back(int(tensors_.size()));
      tensors_.push_back({prefix + p.name, p.shape, p.krsc, NetworkTensor::Param, param_count_, p.numel()});
      param_inits_.push_back(p.init);
      param_count_ += align_elems(p.numel(), sizeof(T));
    }
    for (const StateSpec& s : node->layer->states()) {
      if (s.is_counter) {
        node->counter_tensors.push_back(int(tensors_.size()));
        tensors_.push_back({prefix + s.name, {}, false, NetworkTensor::Counter, counter_count_, 1});
        counter_count_ += 1;
      } else {
        node->state_tensors.push_back(int(tensors_.size()));
        tensors_.push_back(
            {prefix + s.name, {int(s.count)}, false, NetworkTensor::State, state_count_, s.count});
        state_inits_.push_back(s.init);
        state_count_ += s.count;
      }
    }
    node->scratch_counts = node->layer->scratch_counts();
    nodes_.push_back(std::move(node));
  }
  output_ = shape;
}

template <class T>
Network<T>::~Network() = default;

template <class T>
void Network<T>::plan(ArenaPlan& plan, const Exec& ex) {
  params_slot_ = plan.add_array<T>(ArenaKind::Params, name_ + ".params", size_t(param_count_));
  grads_slot_ = plan.add_array<T>(ArenaKind::Grads, name_ + ".grads", size_t(param_count_));
  states_slot_ = plan.add_array<T>(ArenaKind::State, name_ + ".states", size_t(state_count_));
  counters_slot_ = plan.add_array<int64_t>(ArenaKind::State, name_ + ".counters", size_t(counter_count_));
  data_slots_.assign(root_.size(), Slot{});
  grad_slots_.assign(root_.size(), Slot{});
  Shape shape = input_;
  for (auto& node : nodes_) {
    shape = node->layer->configure(shape);  // idempotent; gives this node's output shape
    plan.need_workspace(node->layer->workspace_bytes(ex));
    if (!node->layer->aliases_input()) {
      const std::string what = detail::concat(name_, ".", node->index, ".out");
      data_slots_[node->out] = plan.add_array<T>(ArenaKind::Activations, what, size_t(shape.numel()));
      grad_slots_[node->out] =
          plan.add_array<T>(ArenaKind::Activations, what + ".grad", size_t(shape.numel()));
    }
    node->scratch_slots.clear();
    for (int64_t count : node->scratch_counts)
      node->scratch_slots.push_back(plan.add_array<T>(
          ArenaKind::Activations, detail::concat(name_, ".", node->index, ".saved"), size_t(count)));
  }
}

template <class T>
void Network<T>::bind(const Arena& arena) {
  params_ = arena.get<T>(params_slot_);
  grads_ = arena.get<T>(grads_slot_);
  states_ = arena.get<T>(states_slot_);
  counters_ = arena.get<int64_t>(counters_slot_);
  data_.assign(root_.size(), nullptr);
  grad_.assign(root_.size(), nullptr);
  for (size_t v = 1; v < root_.size(); ++v) {
    if (data_slots_[v].valid()) {
      data_[v] = arena.get<T>(data_slots_[v]);
      grad_[v] = arena.get<T>(grad_slots_[v]);
    }
  }
  for (auto& node : nodes_) {
    LayerIO<T>& io = node->io;
    io.params.clear();
    io.grads.clear();
    io.states.clear();
    io.counters.clear();
    io.scratch.clear();
    for (int t : node->param_tensors) {
      io.params.push_back(params_ + tensors_[t].offset);
      io.grads.push_back(grads_ + tensors_[t].offset);
    }
    for (int t : node->state_tensors) io.states.push_back(states_ + tensors_[t].offset);
    for (int t : node->counter_tensors) io.counters.push_back(counters_ + tensors_[t].offset);
    for (Slot s : node->scratch_slots) io.scratch.push_back(arena.get<T>(s));
  }
}

template <class T>
void Network<T>::initialize(const Exec& ex, uint64_t seed) {
  std::vector<T> params(size_t(param_count_), T(0));
  std::vector<T> states(size_t(state_count_), T(0));
  int param_index = 0, state_index = 0;
  for (const NetworkTensor& t : tensors_) {
    if (t.kind == NetworkTensor::Param) {
      const InitRule& rule = param_inits_[param_index];
      // One Philox sub-stream per tensor: (network id, tensor index) as the "step".
      const uint64_t stream_step = (uint64_t(id_) << 32) | uint64_t(param_index);
      for (int64_t i = 0; i < t.count; ++i) {
        float v = rule.a;
        if (rule.kind == InitRule::Normal)
          v = rule.a + rule.b * philox_normal(seed, kStreamInit, stream_step, uint64_t(i));
        else if (rule.kind == InitRule::Uniform)
          v = philox_uniform(seed, kStreamInit, stream_step, uint64_t(i), rule.a, rule.b);
        params[size_t(t.offset + i)] = T(v);
      }
      ++param_index;
    } else if (t.kind == NetworkTensor::State) {
      for (int64_t i = 0; i < t.count; ++i) states[size_t(t.offset + i)] = T(state_inits_[state_index]);
      ++state_index;
    }
  }
  const std::vector<int64_t> counters(size_t(counter_count_), 0);
  copy_to_device(ex, params_, params.data(), params.size() * sizeof(T));
  copy_to_device(ex, states_, states.data(), states.size() * sizeof(T));
  copy_to_device(ex, counters_, counters.data(), counters.size() * sizeof(int64_t));
}

template <class T>
T* Network<T>::value_data(int v) const {
  const int r = root_[size_t(v)];
  return r == 0 ? const_cast<T*>(ext_input_) : data_[size_t(r)];
}

template <class T>
T* Network<T>::value_grad(int v) const {
  const int r = root_[size_t(v)];
  return r == 0 ? ext_grad_ : grad_[size_t(r)];
}

template <class T>
T* Network<T>::output() const {
  return value_data(int(root_.size()) - 1);
}

template <class T>
T* Network<T>::output_grad() const {
  return value_grad(int(root_.size()) - 1);
}

template <class T>
T* Network<T>::layer_output(int layer_index) const {
  if (layer_index < 0 || layer_index >= layer_count_)
    usage_error(name_, ": layer ", layer_index, " does not exist (the network has layers 0..",
                layer_count_ - 1, ")");
  for (const auto& node : nodes_)
    if (node->index == layer_index) {
      GANCU_CHECK(!data_.empty(), name_, ": layer_output before bind()");
      return value_data(node->out);
    }
  // Not a node: an activation string that runs in the epilogue of the layer before it.
  int fused_into = -1;
  for (const auto& node : nodes_)
    if (node->index < layer_index) fused_into = node->index;
  usage_error(name_, ": layer ", layer_index, " is an activation fused into layer ", fused_into,
              "; its output is layer ", fused_into, "'s output");
}

template <class T>
void Network<T>::forward(const Exec& ex, const T* input, int batch, BatchNormMode mode, const int64_t* step,
                         uint64_t seed) {
  GANCU_CHECK(params_, name_, ": forward before bind()");
  if (batch < 1 || batch > input_.n)
    runtime_error(name_, ": batch ", batch, " is outside the planned 1..", input_.n);
  ext_input_ = input;
  batch_ = batch;
  for (auto& node : nodes_) {
    if (node->layer->aliases_input()) continue;
    LayerIO<T>& io = node->io;
    io.batch = batch;
    io.x = value_data(node->in);
    io.y = value_data(node->out);
    io.mode = mode;
    io.step = step;
    io.seed = seed;
    node->layer->forward(ex, io);
  }
}

template <class T>
void Network<T>::backward(const Exec& ex, T* input_grad, bool accumulate_input_grad, bool param_grads) {
  GANCU_CHECK(batch_ > 0, name_, ": backward before forward");
  ext_grad_ = input_grad;
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& node = **it;
    if (node.layer->aliases_input()) continue;
    LayerIO<T>& io = node.io;
    io.dy = value_grad(node.out);
    io.dx = value_grad(node.in);
    // In a chain each gradient has one writer; only the caller's buffer may already hold a sum.
    io.accumulate_dx = root_[size_t(node.in)] == 0 && accumulate_input_grad;
    io.param_grads = param_grads;
    if (!io.dx && !param_grads) continue;  // nothing wanted from this layer or any before it
    node.layer->backward(ex, io);
  }
}

template <class T>
int64_t Network<T>::trainable_count() const {
  int64_t n = 0;
  for (const auto& t : tensors_)
    if (t.kind == NetworkTensor::Param) n += t.count;
  return n;
}

template <class T>
std::string Network<T>::summary() const {
  std::string s = detail::concat(name_, ": input ", input_.str(), "\n");
  Shape shape = input_;
  char line[256];
  for (const auto& node : nodes_) {
    shape = node->layer->configure(shape);
    int64_t n = 0;
    for (int t : node->param_tensors) n += tensors_[size_t(t)].count;
    std::snprintf(line, sizeof line, "  %3d  %-40s %-16s %10lld\n", node->index,
                  node->layer->describe().c_str(), shape.str().c_str(), (long long)n);
    s += line;
  }
  s += detail::concat("  parameters: ", trainable_count(), "\n");
  return s;
}

template class Network<float>;
template class Network<double>;

}  // namespace gancu
