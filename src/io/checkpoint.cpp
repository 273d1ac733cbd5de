#include "gancu/checkpoint.h"

#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/memory.h"
#include "gancu/safetensors.h"

namespace gancu {

namespace {

constexpr const char* kFormat = "gancu-checkpoint/1";

std::vector<int64_t> export_shape(const NetworkTensor& t) {
  std::vector<int64_t> s(t.shape.begin(), t.shape.end());
  if (t.krsc) s = {s[0], s[3], s[1], s[2]};
  return s;
}

// [k, r, s, c] <-> [k, c, r, s]
void permute_krsc(const NetworkTensor& t, const float* src, float* dst, bool to_torch) {
  const int K = t.shape[0], R = t.shape[1], S = t.shape[2], C = t.shape[3];
  for (int k = 0; k < K; ++k)
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s)
        for (int c = 0; c < C; ++c) {
          const size_t ours = ((size_t(k) * R + r) * S + s) * C + c;
          const size_t torch = ((size_t(k) * C + c) * R + r) * S + s;
          if (to_torch)
            dst[torch] = src[ours];
          else
            dst[ours] = src[torch];
        }
}

template <class T>
std::vector<T> download(const Exec& ex, const T* device, int64_t n) {
  std::vector<T> host(size_t(std::max<int64_t>(n, 0)));
  copy_to_host(ex, host.data(), device, host.size() * sizeof(T));
  return host;
}

}  // namespace

void export_network(const Exec& ex, const Network<float>& net, std::map<std::string, TensorData>& out) {
  const auto params = download(ex, net.params(), net.param_count());
  const auto states = download(ex, net.states(), net.state_count());
  const auto counters = download(ex, net.counters(), net.counter_count());
  for (const NetworkTensor& t : net.tensors()) {
    if (t.kind == NetworkTensor::Counter) {
      out[t.name] = make_tensor<int64_t>({}, &counters[size_t(t.offset)]);
      continue;
    }
    const float* src = (t.kind == NetworkTensor::Param ? params.data() : states.data()) + t.offset;
    for (int64_t i = 0; i < t.count; ++i)
      if (!std::isfinite(src[i]))
        throw DivergedError(t.name + " holds non-finite values; not writing a checkpoint");
    std::vector<float> values(src, src + t.count);
    if (t.krsc) permute_krsc(t, src, values.data(), true);
    out[t.name] = make_tensor<float>(export_shape(t), values.data());
  }
}

namespace {

const TensorData& find(const SafeTensors& f, const std::string& name, const std::string& path) {
  const auto it = f.tensors.find(name);
  if (it == f.tensors.end())
    runtime_error(path, ": tensor '", name, "' is missing (a checkpoint of another model?)");
  return it->second;
}

template <class T>
std::vector<T> values_of(const SafeTensors& f, const std::string& name, const std::vector<int64_t>& shape,
                         const std::string& path) {
  const TensorData& t = find(f, name, path);
  if (t.shape != shape) {
    std::string want, got;
    for (auto d : shape) want += detail::concat(want.empty() ? "" : "x", d);
    for (auto d : t.shape) got += detail::concat(got.empty() ? "" : "x", d);
    runtime_error(path, ": tensor '", name, "' has shape [", got, "] but the model needs [", want, "]");
  }
  return tensor_values<T>(t, path + ": tensor '" + name + "'");
}

}  // namespace

void import_network(const Exec& ex, Network<float>& net, const SafeTensors& f, const std::string& path) {
  std::vector<float> params(size_t(net.param_count()), 0.0f), states(size_t(net.state_count()), 0.0f);
  std::vector<int64_t> counters(size_t(net.counter_count()), 0);
  for (const NetworkTensor& t : net.tensors()) {
    if (t.kind == NetworkTensor::Counter) {
      counters[size_t(t.offset)] = values_of<int64_t>(f, t.name, {}, path)[0];
      continue;
    }
    const auto v = values_of<float>(f, t.name, export_shape(t), path);
    float* dst = (t.kind == NetworkTensor::Param ? params.data() : states.data()) + t.offset;
    if (t.krsc)
      permute_krsc(t, v.data(), dst, false);
    else
      std::copy(v.begin(), v.end(), dst);
  }
  copy_to_device(ex, net.params(), params.data(), params.size() * sizeof(float));
  copy_to_device(ex, net.states(), states.data(), states.size() * sizeof(float));
  copy_to_device(ex, net.counters(), counters.data(), counters.size() * sizeof(int64_t));
}

namespace {

// G's optimizer, and D's where there is a D (the supervised generator has none).
std::vector<Optimizer<float>*> optimizers(Gan& gan) {
  if (!gan.has_discriminator()) return {&gan.optim_g()};
  return {&gan.optim_g(), &gan.optim_d()};
}

SafeTensors read_checkpoint(const std::string& path) {
  SafeTensors f = read_safetensors(path);
  const auto it = f.metadata.find("format");
  if (it == f.metadata.end() || it->second != kFormat)
    runtime_error(path, ": not a gancu checkpoint (metadata 'format' is not '", kFormat, "')");
  return f;
}

}  // namespace

void save_checkpoint(const Exec& ex, Gan& gan, const std::string& path) {
  std::map<std::string, TensorData> tensors;
  export_network(ex, gan.generator(), tensors);
  if (gan.has_discriminator()) export_network(ex, gan.discriminator(), tensors);
  for (Optimizer<float>* opt : optimizers(gan)) {
    const auto state = download(ex, opt->state(), opt->state_count());
    tensors[opt->name() + ".state"] = make_tensor<float>({int64_t(state.size())}, state.data());
    const auto t = download(ex, opt->step_count(), 1);
    tensors[opt->name() + ".t"] = make_tensor<int64_t>({}, t.data());
  }
  if (gan.has_discriminator())
    for (const auto& [name, value] : gan.objective().state())
      tensors[name] = make_tensor<float>({1}, download(ex, value, 1).data());
  const auto counters = download(ex, gan.step_counter(), 2);
  tensors["trainer.step"] = make_tensor<int64_t>({}, &counters[0]);
  tensors["trainer.data_step"] = make_tensor<int64_t>({}, &counters[1]);
  const Shape im = gan.image();
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"config", gan.config().toml},
      {"image", detail::concat(im.h, "x", im.w, "x", im.c)},
      {"step", std::to_string(counters[0])},
  };
  write_safetensors(path, tensors, metadata);
}

void load_checkpoint(const Exec& ex, Gan& gan, const std::string& path) {
  const SafeTensors f = read_checkpoint(path);
  import_network(ex, gan.generator(), f, path);
  if (gan.has_discriminator()) import_network(ex, gan.discriminator(), f, path);
  for (Optimizer<float>* opt : optimizers(gan)) {
    const auto state = values_of<float>(f, opt->name() + ".state", {opt->state_count()}, path);
    copy_to_device(ex, opt->state(), state.data(), state.size() * sizeof(float));
    const auto t = values_of<int64_t>(f, opt->name() + ".t", {}, path);
    copy_to_device(ex, opt->step_count(), t.data(), sizeof(int64_t));
  }
  if (gan.has_discriminator())
    for (const auto& [name, value] : gan.objective().state()) {
      const auto v = values_of<float>(f, name, {1}, path);
      copy_to_device(ex, value, v.data(), sizeof(float));
    }
  const int64_t counters[2] = {values_of<int64_t>(f, "trainer.step", {}, path)[0],
                               values_of<int64_t>(f, "trainer.data_step", {}, path)[0]};
  copy_to_device(ex, gan.step_counter(), counters, sizeof counters);
  gan.restart_metrics(ex);
}

Config checkpoint_config(const std::string& path) {
  const SafeTensors f = read_checkpoint(path);
  const auto it = f.metadata.find("config");
  if (it == f.metadata.end()) runtime_error(path, ": checkpoint has no 'config' metadata");
  return load_config_text(it->second, path + " (config metadata)");
}

Shape checkpoint_image(const std::string& path) {
  const SafeTensors f = read_checkpoint(path);
  const auto it = f.metadata.find("image");
  int h = 0, w = 0, c = 0;
  if (it == f.metadata.end() || std::sscanf(it->second.c_str(), "%dx%dx%d", &h, &w, &c) != 3)
    runtime_error(path, ": checkpoint has no valid 'image' metadata");
  return Shape::image(0, h, w, c);
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "/checkpoints/step_%08lld.safetensors", (long long)step);
  return run_dir + name;
}

std::vector<int64_t> checkpoint_steps(const std::string& run_dir) {
  std::vector<int64_t> steps;
  DIR* d = opendir((run_dir + "/checkpoints").c_str());
  if (!d) return steps;
  while (dirent* e = readdir(d)) {
    long long step = 0;
    char tail[32] = {0};
    if (std::sscanf(e->d_name, "step_%lld.%31s", &step, tail) == 2 && std::string(tail) == "safetensors")
      steps.push_back(step);
  }
  closedir(d);
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string latest_checkpoint(const std::string& run_dir) {
  const std::vector<int64_t> steps = checkpoint_steps(run_dir);
  return steps.empty() ? "" : checkpoint_path(run_dir, steps.back());
}

}  // namespace gancu
