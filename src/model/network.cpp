#include "gancu/network.h"

#include <cstdio>
#include <map>

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

std::string join_names(const std::map<std::string, int>& names) {
  std::string s;
  for (const auto& [n, _] : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

template <class T>
struct Network<T>::Node {
  std::unique_ptr<Layer<T>> layer;
  int index = 0;                                                   // position in the layer strings
  std::vector<int> in;                                             // value ids read
  int out = 0;                                                     // value id written
  std::vector<int> param_tensors, state_tensors, counter_tensors;  // into tensors_
  std::vector<int64_t> scratch_counts;
  std::vector<Slot> scratch_slots;
  LayerIO<T> io;
};

template <class T>
Network<T>::Network(std::string name, int id, const std::vector<std::string>& layers,
                    const std::string& where, Shape input, InitScheme init)
    : Network(std::move(name), id, layers, where, std::vector<NetworkInput>{{"input", input}}, init) {}

template <class T>
Network<T>::Network(std::string name, int id, const std::vector<std::string>& layers,
                    const std::string& where, const std::vector<NetworkInput>& inputs, InitScheme init)
    : name_(std::move(name)), id_(id) {
  GANCU_CHECK(!inputs.empty() && inputs[0].name == "input", name_, ": the main input must come first");
  if (layers.empty()) usage_error(where, ": a network needs at least one layer");
  layer_count_ = int(layers.size());
  std::map<std::string, int> names;  // name -> value id
  for (const NetworkInput& in : inputs) {
    GANCU_CHECK(!names.count(in.name), name_, ": input '", in.name, "' declared twice");
    names[in.name] = int(values_.size());
    values_.push_back({in.name, in.shape, int(values_.size()), true});
  }
  inputs_ = int(values_.size());
  ext_data_.assign(size_t(inputs_), nullptr);

  int previous = 0;            // the value the next string reads by default
  bool previous_named = true;  // an activation fuses only into an unnamed, directly preceding layer
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string at = detail::concat(where, "[", i, "]");
    const LayerSpec spec = parse_layer_spec(layers[i], at);
    if (!spec.name.empty() && names.count(spec.name))
      usage_error(at, ": \"", spec.text, "\": the name '", spec.name, "' is already used");
    std::vector<int> in;
    for (const std::string& n : spec.inputs) {
      const auto found = names.find(n);
      if (found == names.end())
        usage_error(at, ": \"", spec.text, "\": in= names '", n,
                    "', which is not an input or the name of a layer above (known: ", join_names(names), ")");
      in.push_back(found->second);
    }
    if (in.empty()) in.push_back(previous);

    Activation act;
    // An activation directly after a layer that can take it runs in that layer's epilogue.
    if (spec_activation(spec, &act) && spec.inputs.empty() && !previous_named && !nodes_.empty() &&
        nodes_.back()->out == previous && !nodes_.back()->layer->aliases_input() &&
        nodes_.back()->layer->fuse_activation(act)) {
      if (!spec.name.empty()) {
        values_[size_t(previous)].name = spec.name;
        names[spec.name] = previous;
      }
      previous_named = !spec.name.empty();
      continue;
    }
    auto node = std::make_unique<Node>();
    node->layer = make_layer<T>(spec, init, int(i), at);
    node->index = int(i);
    node->in = in;
    if (in.size() > 1 && !node->layer->multi_input())
      usage_error(at, ": \"", spec.text, "\": ", spec.kind, " reads one input, but in= names ", in.size());
    std::vector<Shape> shapes;
    for (int v : in) shapes.push_back(values_[size_t(v)].shape);
    const Shape out_shape = node->layer->configure_inputs(shapes);
    node->out = int(values_.size());
    const int root = node->layer->aliases_input() ? values_[size_t(in[0])].root : node->out;
    values_.push_back({spec.name, out_shape, root, false});
    if (!spec.name.empty()) names[spec.name] = node->out;
    previous = node->out;
    previous_named = !spec.name.empty();

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
  if (nodes_.empty()) usage_error(where, ": a network needs a layer that is not an activation");
  output_ = previous;
  output_seed_ = {output_};
  for (const auto& node : nodes_) second_order_ = second_order_ || node->layer->second_order();
}

template <class T>
Network<T>::~Network() = default;

template <class T>
std::string Network<T>::tangent_refusal() const {
  for (const auto& node : nodes_) {
    const std::string why = node->layer->tangent_refusal();
    if (!why.empty()) return detail::concat("layer ", node->index, " (", node->layer->describe(), "): ", why);
  }
  return "";
}

template <class T>
void Network<T>::enable_tangents() {
  const std::string why = tangent_refusal();
  if (!why.empty()) usage_error(name_, ": the tangent pass of a gradient penalty cannot run through ", why);
  tangents_ = true;
}

template <class T>
void Network<T>::plan(ArenaPlan& plan, const Exec& ex, BackwardUse use) {
  params_slot_ = plan.add_array<T>(ArenaKind::Params, name_ + ".params", size_t(param_count_));
  grads_slot_ = plan.add_array<T>(ArenaKind::Grads, name_ + ".grads", size_t(param_count_));
  states_slot_ = plan.add_array<T>(ArenaKind::State, name_ + ".states", size_t(state_count_));
  counters_slot_ = plan.add_array<int64_t>(ArenaKind::State, name_ + ".counters", size_t(counter_count_));
  const size_t n = values_.size();
  data_slots_.assign(n, Slot{});
  grad_slots_.assign(n, Slot{});
  tangent_slots_.assign(n, Slot{});
  adjoint_slots_.assign(n, Slot{});
  for (auto& node : nodes_) {
    // A layer's input gradient is wanted when it reads a value of the network, or the main input
    // and the caller asks for that one's gradient (other external inputs never get one).
    bool reads_internal = false, reads_main = false;
    for (int v : node->in) {
      const int root = values_[size_t(v)].root;
      reads_internal = reads_internal || root >= inputs_;
      reads_main = reads_main || root == 0;
    }
    const BackwardUse layer_use{use.backward,
                                use.backward && (reads_internal || (reads_main && use.input_grad))};
    plan.need_workspace(node->layer->workspace_bytes(ex, layer_use));
    const Value& v = values_[size_t(node->out)];
    if (v.root == node->out) {
      const size_t count = size_t(v.shape.numel());
      const std::string what = detail::concat(name_, ".", node->index, ".out");
      data_slots_[size_t(node->out)] = plan.add_array<T>(ArenaKind::Activations, what, count);
      grad_slots_[size_t(node->out)] = plan.add_array<T>(ArenaKind::Activations, what + ".grad", count);
      if (tangents_) {
        tangent_slots_[size_t(node->out)] =
            plan.add_array<T>(ArenaKind::Activations, what + ".tangent", count);
        if (second_order_)
          adjoint_slots_[size_t(node->out)] =
              plan.add_array<T>(ArenaKind::Activations, what + ".adjoint", count);
      }
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
  const size_t n = values_.size();
  const auto get = [&](const std::vector<Slot>& slots, std::vector<T*>& out) {
    out.assign(n, nullptr);
    for (size_t v = 0; v < n; ++v)
      if (slots[v].valid()) out[v] = arena.get<T>(slots[v]);
  };
  get(data_slots_, data_);
  get(grad_slots_, grad_);
  get(tangent_slots_, tangent_);
  get(adjoint_slots_, adjoint_);
  written_.assign(n, 0);
  tangent_nonzero_.assign(n, 0);
  adjoint_written_.assign(n, 0);
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
    // Sized once here, so that the passes only assign (the training loop allocates nothing).
    const size_t k = node->in.size();
    io.xs.assign(k, nullptr);
    io.dxs.assign(k, nullptr);
    io.accumulate_dxs.assign(k, 0);
    io.txs.assign(k, nullptr);
    io.dtxs.assign(k, nullptr);
    io.accumulate_dtxs.assign(k, 0);
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
int Network<T>::value_id(const std::string& name) const {
  for (size_t v = 0; v < values_.size(); ++v)
    if (values_[v].name == name) return int(v);
  std::string known;
  for (const Value& v : values_)
    if (!v.name.empty()) known += (known.empty() ? "" : ", ") + v.name;
  usage_error(name_, ": no value is named '", name, "' (named values: ", known, ")");
}

// The buffers of a value, through its root (aliases share their input's memory). External
// inputs: their data is the caller's; only the main input has a gradient (the caller's, during a
// backward) and a tangent (the caller's, during a jvp).
template <class T>
T* Network<T>::data_of(int root) const {
  return root < inputs_ ? const_cast<T*>(ext_data_[size_t(root)]) : data_[size_t(root)];
}
template <class T>
T* Network<T>::grad_of(int root) const {
  return root < inputs_ ? (root == 0 ? ext_grad_ : nullptr) : grad_[size_t(root)];
}
template <class T>
T* Network<T>::tangent_of(int root) const {
  return root < inputs_ ? (root == 0 ? const_cast<T*>(ext_tangent_) : nullptr) : tangent_[size_t(root)];
}
template <class T>
T* Network<T>::adjoint_of(int root) const {
  return root < inputs_ ? nullptr : adjoint_[size_t(root)];
}

template <class T>
T* Network<T>::value_data(int id) const {
  GANCU_CHECK(!data_.empty(), name_, ": value_data before bind()");
  return data_of(values_[size_t(id)].root);
}

template <class T>
T* Network<T>::value_grad(int id) const {
  GANCU_CHECK(!grad_.empty(), name_, ": value_grad before bind()");
  return grad_of(values_[size_t(id)].root);
}

template <class T>
void Network<T>::set_input(int id, const T* data) {
  GANCU_CHECK(id > 0 && id < inputs_, name_, ": set_input needs an external input other than the main one");
  ext_data_[size_t(id)] = data;
}

template <class T>
T* Network<T>::layer_output(int layer_index) const {
  if (layer_index < 0 || layer_index >= layer_count_)
    usage_error(name_, ": layer ", layer_index, " does not exist (the network has layers 0..",
                layer_count_ - 1, ")");
  for (const auto& node : nodes_)
    if (node->index == layer_index) return value_data(node->out);
  // Not a node: an activation string that runs in the epilogue of the layer before it.
  int fused_into = -1;
  for (const auto& node : nodes_)
    if (node->index < layer_index) fused_into = node->index;
  usage_error(name_, ": layer ", layer_index, " is an activation fused into layer ", fused_into,
              "; its output is layer ", fused_into, "'s output");
}

template <class T>
void Network<T>::forward(const Exec& ex, const T* input, int batch, BatchNormMode mode, const int64_t* step,
                         uint64_t seed, uint32_t pass) {
  GANCU_CHECK(params_, name_, ": forward before bind()");
  if (batch < 1 || batch > planned_batch())
    runtime_error(name_, ": batch ", batch, " is outside the planned 1..", planned_batch());
  ext_data_[0] = input;
  for (int v = 1; v < inputs_; ++v)
    GANCU_CHECK(ext_data_[size_t(v)], name_, ": input '", values_[size_t(v)].name, "' was not set");
  batch_ = batch;
  jvp_done_ = false;
  for (auto& node : nodes_) {
    if (node->layer->aliases_input()) continue;
    LayerIO<T>& io = node->io;
    io.batch = batch;
    for (size_t k = 0; k < node->in.size(); ++k) io.xs[k] = value_data(node->in[k]);
    io.x = io.xs[0];
    io.y = value_data(node->out);
    io.mode = mode;
    io.step = step;
    io.seed = seed;
    io.pass = pass;
    node->layer->forward(ex, io);
  }
}

template <class T>
void Network<T>::set_batchnorm_sync(const BatchNormSync* sync) {
  for (auto& node : nodes_) node->io.bn_sync = sync;
}

template <class T>
void Network<T>::backward(const Exec& ex, T* input_grad, bool accumulate_input_grad, bool param_grads) {
  backward(ex, output_seed_, input_grad, accumulate_input_grad, param_grads);
}

template <class T>
void Network<T>::backward(const Exec& ex, const std::vector<int>& seeds, T* input_grad,
                          bool accumulate_input_grad, bool param_grads) {
  GANCU_CHECK(batch_ > 0, name_, ": backward before forward");
  ext_grad_ = input_grad;
  std::fill(written_.begin(), written_.end(), 0);
  for (int s : seeds) written_[size_t(values_[size_t(s)].root)] = 1;
  written_[0] = accumulate_input_grad;  // the caller's buffer may already hold a sum
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& node = **it;
    if (node.layer->aliases_input()) continue;
    const int out = values_[size_t(node.out)].root;
    if (!written_[size_t(out)]) continue;  // no gradient reaches this layer's output
    LayerIO<T>& io = node.io;
    io.dy = grad_of(out);
    bool any_dx = false;
    for (size_t k = 0; k < node.in.size(); ++k) {
      const int in = values_[size_t(node.in[k])].root;
      io.dxs[k] = grad_of(in);
      io.accumulate_dxs[k] = written_[size_t(in)];
      any_dx = any_dx || io.dxs[k];
    }
    io.dx = io.dxs[0];
    io.accumulate_dx = io.accumulate_dxs[0];
    io.param_grads = param_grads;
    if (!any_dx && !param_grads) continue;  // nothing wanted from this layer
    node.layer->backward(ex, io);
    for (size_t k = 0; k < node.in.size(); ++k)
      if (io.dxs[k]) written_[size_t(values_[size_t(node.in[k])].root)] = 1;
  }
}

template <class T>
void Network<T>::jvp(const Exec& ex, const T* tangent) {
  GANCU_CHECK(tangents_, name_, ": jvp without enable_tangents() before plan()");
  GANCU_CHECK(batch_ > 0, name_, ": jvp before forward");
  ext_tangent_ = tangent;
  std::fill(tangent_nonzero_.begin(), tangent_nonzero_.end(), 0);
  tangent_nonzero_[0] = 1;  // the main input's tangent; other inputs (labels) have none
  for (auto& node : nodes_) {
    const int out = values_[size_t(node->out)].root;
    bool any = false;
    for (int v : node->in) any = any || tangent_nonzero_[size_t(values_[size_t(v)].root)];
    if (!any) continue;  // the output does not depend on the main input: its tangent is zero
    tangent_nonzero_[size_t(out)] = 1;
    if (node->layer->aliases_input()) continue;
    LayerIO<T>& io = node->io;
    for (size_t k = 0; k < node->in.size(); ++k) {
      const int in = values_[size_t(node->in[k])].root;
      io.txs[k] = tangent_nonzero_[size_t(in)] ? tangent_of(in) : nullptr;
    }
    io.tx = io.txs[0];
    io.ty = tangent_of(out);
    node->layer->jvp(ex, io);
  }
  jvp_done_ = true;
}

template <class T>
T* Network<T>::tangent_output() const {
  GANCU_CHECK(tangents_, name_, ": tangent_output without enable_tangents()");
  return tangent_of(values_[size_t(output_)].root);
}

template <class T>
void Network<T>::jvp_backward(const Exec& ex) {
  GANCU_CHECK(jvp_done_, name_, ": jvp_backward before jvp");
  // Tangent adjoints live in the gradient buffers (free after the backward that computed the
  // penalty's input gradients); primal adjoints in their own buffers, planned when a layer has
  // second-order terms.
  ext_grad_ = nullptr;
  std::fill(written_.begin(), written_.end(), 0);
  std::fill(adjoint_written_.begin(), adjoint_written_.end(), 0);
  const int output_root = values_[size_t(output_)].root;
  written_[size_t(output_root)] = tangent_nonzero_[size_t(output_root)];
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& node = **it;
    if (node.layer->aliases_input()) continue;
    const int out = values_[size_t(node.out)].root;
    LayerIO<T>& io = node.io;
    io.dty = written_[size_t(out)] ? grad_of(out) : nullptr;
    io.dy_zero = !adjoint_written_[size_t(out)];
    io.dy = adjoint_of(out);
    if (!io.dty && io.dy_zero) continue;
    const bool writes_dx = !io.dy_zero || node.layer->second_order();
    for (size_t k = 0; k < node.in.size(); ++k) {
      const int in = values_[size_t(node.in[k])].root;
      const bool external = in < inputs_;
      io.dtxs[k] = io.dty && !external && tangent_nonzero_[size_t(in)] ? grad_of(in) : nullptr;
      io.accumulate_dtxs[k] = written_[size_t(in)];
      io.dxs[k] = writes_dx && !external ? adjoint_of(in) : nullptr;
      io.accumulate_dxs[k] = adjoint_written_[size_t(in)];
    }
    io.dtx = io.dtxs[0];
    io.accumulate_dtx = io.accumulate_dtxs[0];
    io.dx = io.dxs[0];
    io.accumulate_dx = io.accumulate_dxs[0];
    io.param_grads = true;
    node.layer->jvp_backward(ex, io);
    for (size_t k = 0; k < node.in.size(); ++k) {
      const int in = values_[size_t(node.in[k])].root;
      if (io.dtxs[k]) written_[size_t(in)] = 1;
      if (io.dxs[k]) adjoint_written_[size_t(in)] = 1;
    }
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
  std::string s = detail::concat(name_, ": input ", values_[0].shape.str());
  for (int v = 1; v < inputs_; ++v)
    s += detail::concat(", ", values_[size_t(v)].name, " ", values_[size_t(v)].shape.str());
  s += "\n";
  char line[320];
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = *nodes_[i];
    int64_t n = 0;
    for (int t : node.param_tensors) n += tensors_[size_t(t)].count;
    // The graph, where it is not a chain: what a layer reads (when not the previous layer's
    // output) and what its output is called.
    std::string wiring;
    const int previous = i == 0 ? 0 : nodes_[i - 1]->out;
    if (!(node.in.size() == 1 && node.in[0] == previous)) {
      wiring = " <- ";
      for (size_t k = 0; k < node.in.size(); ++k) {
        const Value& v = values_[size_t(node.in[k])];
        wiring += (k ? "," : "") + (v.name.empty() ? detail::concat("#", node.in[k]) : v.name);
      }
    }
    const std::string& out_name = values_[size_t(node.out)].name;
    if (!out_name.empty()) wiring += " -> " + out_name;
    const std::string what = node.layer->describe() + wiring;
    std::snprintf(line, sizeof line, "  %3d  %-40s %-16s %10lld\n", node.index, what.c_str(),
                  values_[size_t(node.out)].shape.str().c_str(), (long long)n);
    s += line;
  }
  s += detail::concat("  parameters: ", trainable_count(), "\n");
  return s;
}

template class Network<float>;
template class Network<double>;

}  // namespace gancu
