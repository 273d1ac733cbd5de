// One gancu training iteration compared with the same iteration of the PyTorch peer
// (tools/step_reference.py), tensor by tensor: the proof that each objective, and in particular
// the tangent method of the gradient penalties, computes what PyTorch's double backward does.
//
// gancu runs one iteration from its initial parameters on its own data and noise, recording
// every input of the iteration (the real batch and the noise of each D step, the penalty's
// draws); PyTorch runs the same iteration in float64 from the same parameters and inputs. Each
// parameter tensor's UPDATE (after - before) is compared by relative error, so that a wrong
// gradient scale shows (with SGD the update is -lr times the gradient).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "gancu/checkpoint.h"
#include "gancu/config.h"
#include "gancu/fileutil.h"
#include "gancu/memory.h"
#include "gancu/safetensors.h"
#include "gancu/session.h"
#include "gancu/subprocess.h"
#include "io_test_util.h"

namespace gancu::test {

struct StepComparison {
  // Per parameter tensor T, for the gradients g (gancu) and gt (PyTorch) of D's last D step and of
  // G's step: ||g_T - gt_T|| / max(||gt_T||, 0.01 ||gt||), gt the whole network's gradient. A tensor
  // whose true gradient is tiny because the batch's terms cancel (the last bias of a critic that
  // cannot yet tell real from fake; a bias right before layer norm) is judged against 1% of its
  // network's gradient: float32 cannot resolve a cancelled sum more finely than its terms.
  std::map<std::string, double> grad_error;
  // Per parameter or running-statistic tensor T of G and D, the update over the whole iteration:
  // ||e_T|| / max(||dt_T||, 0.01 ||dt||), dt PyTorch's update (dt without T: its network's) and
  // e_i = max(0, |pu_i - pt_i| - 2^-23 |pt_i|) the difference of the updated parameters beyond one
  // float32 step of the parameter itself (an update far below a parameter's resolution cannot be
  // stored exactly by any float32 code); the 1% floor as for the gradients.
  std::map<std::string, double> update_error;
  double worst_grad = 0, worst_update = 0;
  std::string worst_grad_tensor, worst_update_tensor;
  // The losses of the iteration (D's of its last D step, penalty included; G's), the penalty,
  // and BEGAN's k after the iteration: gancu's and PyTorch's.
  double loss_d = 0, loss_d_ref = 0, loss_g = 0, loss_g_ref = 0, penalty = 0, penalty_ref = 0, k = 0,
         k_ref = 0;
  bool has_penalty = false, has_k = false;
};

inline std::map<std::string, std::vector<double>> float_tensors(const std::string& path,
                                                                const std::string& prefix) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, t] : read_safetensors(path).tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    if (t.dtype == "F32")
      for (float v : tensor_values<float>(t, name)) out[name.substr(prefix.size())].push_back(v);
    else if (t.dtype == "F64")
      out[name.substr(prefix.size())] = tensor_values<double>(t, name);
  }
  return out;
}

inline StepComparison compare_step_with_pytorch(Exec& ex, const Config& cfg) {
  testing_io::TempDir dir;
  const RealData data(ex, cfg.data, cfg.batch, cfg.seed);
  GanSession s = make_session(cfg, data.image().with_batch(cfg.batch), cfg.batch, ex, true);
  Gan& gan = *s.gan;
  gan.initialize(ex);
  save_checkpoint(ex, gan, dir / "init.safetensors");

  // Every input of the iteration, as gancu drew it.
  std::map<std::string, TensorData> inputs;
  const Shape im = data.image();
  std::vector<int64_t> sample_shape = im.is_features() ? std::vector<int64_t>{cfg.batch, im.c}
                                                       : std::vector<int64_t>{cfg.batch, im.h, im.w, im.c};
  const int64_t per_batch = int64_t(cfg.batch) * im.per_sample();
  int k = 0;
  const auto download = [&](const float* p, int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    copy_to_host(ex, v.data(), p, size_t(n) * sizeof(float));
    return v;
  };
  const PhaseHook hook = [&](const char* phase) {
    const std::string p = phase, key = std::to_string(k);
    if (p == "data") {
      inputs["x." + key] = make_tensor<float>(sample_shape, download(gan.real_buffer(), per_batch).data());
      if (gan.classes() > 0) {
        std::vector<int32_t> classes(size_t(cfg.batch));
        copy_to_host(ex, classes.data(), gan.real_classes(), classes.size() * sizeof(int32_t));
        inputs["class." + key] = make_tensor<int32_t>({cfg.batch}, classes.data());
      }
    }
    if (p == "g_forward") {
      inputs["z." + key] = make_tensor<float>(
          {cfg.batch, cfg.z_dim}, download(gan.noise_buffer(), int64_t(cfg.batch) * cfg.z_dim).data());
      // The classes G drew with and D judges the fakes with, read back from the one-hot rows
      // (the position of each row's 1).
      if (gan.classes() > 0) {
        const std::vector<float> rows = download(gan.fake_labels(), int64_t(cfg.batch) * gan.classes());
        std::vector<int32_t> classes(size_t(cfg.batch));
        for (size_t i = 0; i < classes.size(); ++i) {
          const float* row = rows.data() + i * size_t(gan.classes());
          classes[i] = int32_t(std::max_element(row, row + gan.classes()) - row);
        }
        inputs["fake_class." + key] = make_tensor<int32_t>({cfg.batch}, classes.data());
      }
    }
    const GradientPenalty<float>* pen = gan.objective().penalty();
    if (p == "d_fake" && pen && pen->eps_or_alpha()) {
      const char* name = pen->at() == GradientPenalty<float>::At::Interpolated ? "eps." : "alpha.";
      inputs[name + key] = make_tensor<float>({cfg.batch}, download(pen->eps_or_alpha(), cfg.batch).data());
      if (pen->u())
        inputs["u." + key] = make_tensor<float>(sample_shape, download(pen->u(), per_batch).data());
    }
    if (p == "d_optim") ++k;
  };
  gan.train_step(ex, data.source(), hook, gan.penalty_steps(0));
  const int64_t step0 = 0;
  inputs["step"] = make_tensor<int64_t>({1}, &step0);
  const GanMetrics m = gan.read_metrics(ex);
  save_checkpoint(ex, gan, dir / "after.safetensors");
  // The gradients left in the flat buffers (D's of its last D step: the G step asks for none of
  // D's; G's of its step), exported under the checkpoint's names and layouts.
  std::map<std::string, TensorData> grads;
  for (Network<float>* net : {&gan.generator(), &gan.discriminator()}) {
    std::vector<float> keep(size_t(net->param_count()));
    copy_to_host(ex, keep.data(), net->params(), keep.size() * sizeof(float));
    copy_on_device(ex, net->params(), net->grads(), keep.size() * sizeof(float));
    export_network(ex, *net, grads);
    copy_to_device(ex, net->params(), keep.data(), keep.size() * sizeof(float));
  }
  write_safetensors(dir / "grads.safetensors", grads, {});
  write_safetensors(dir / "inputs.safetensors", inputs, {});
  atomic_write(dir / "config.toml", cfg.toml);

  const std::string python = testing_io::find_python();
  EXPECT_FALSE(python.empty()) << "python3 with torch is needed (tools/setup.sh installs python3-torch)";
  const ProcessResult r =
      run_process({python, std::string(GANCU_SOURCE_DIR) + "/tools/step_reference.py", "--config",
                   dir / "config.toml", "--init", dir / "init.safetensors", "--inputs",
                   dir / "inputs.safetensors", "--out", dir / "ref.safetensors", "--float64"});
  EXPECT_TRUE(r.ok()) << "step_reference.py: " << r.status_text() << "\n" << r.err << r.out;
  StepComparison c;
  if (!r.ok()) return c;

  const auto before = float_tensors(dir / "init.safetensors", "");
  const auto after = float_tensors(dir / "after.safetensors", "");
  const auto ref = float_tensors(dir / "ref.safetensors", "updated.");
  std::map<char, double> update_norm;  // 'G', 'D'
  for (const auto& [name, init] : before) {
    const auto want = ref.find(name);
    if (want == ref.end()) continue;
    for (size_t i = 0; i < init.size(); ++i) update_norm[name[0]] += std::pow(want->second[i] - init[i], 2);
  }
  for (const auto& [name, init] : before) {
    if (name.rfind("G.", 0) != 0 && name.rfind("D.", 0) != 0) continue;
    const auto got = after.find(name), want = ref.find(name);
    EXPECT_TRUE(want != ref.end()) << name << " missing from the PyTorch reference";
    if (want == ref.end() || got == after.end()) continue;
    double excess = 0, norm = 0;
    for (size_t i = 0; i < init.size(); ++i) {
      const double pu = got->second[i], pt = want->second[i];
      const double e = std::max(0.0, std::abs(pu - pt) - std::ldexp(std::abs(pt), -23));
      excess += e * e;
      norm += (pt - init[i]) * (pt - init[i]);
    }
    const double scale = std::max(std::sqrt(norm), 0.01 * std::sqrt(update_norm[name[0]]));
    const double err = scale == 0 ? std::sqrt(excess) : std::sqrt(excess) / scale;
    c.update_error[name] = err;
    if (err > c.worst_update) c.worst_update = err, c.worst_update_tensor = name;
  }
  const auto grad = float_tensors(dir / "grads.safetensors", "");
  const auto grad_ref = float_tensors(dir / "ref.safetensors", "grad.");
  std::map<char, double> network_norm;  // 'G', 'D'
  for (const auto& [name, want] : grad_ref)
    for (double v : want) network_norm[name[0]] += v * v;
  for (const auto& [name, want] : grad_ref) {
    const auto got = grad.find(name);
    EXPECT_TRUE(got != grad.end()) << "gancu has no gradient " << name;
    if (got == grad.end()) continue;
    EXPECT_EQ(got->second.size(), want.size()) << name;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.size() && i < got->second.size(); ++i) {
      diff += (got->second[i] - want[i]) * (got->second[i] - want[i]);
      norm += want[i] * want[i];
    }
    const double scale = std::max(std::sqrt(norm), 0.01 * std::sqrt(network_norm[name[0]]));
    const double err = scale == 0 ? std::sqrt(diff) : std::sqrt(diff) / scale;
    c.grad_error[name] = err;
    if (err > c.worst_grad) c.worst_grad = err, c.worst_grad_tensor = name;
  }
  const auto scalars = float_tensors(dir / "ref.safetensors", "");
  const auto scalar = [&](const char* name) {
    const auto it = scalars.find(name);
    return it == scalars.end() ? 0.0 : it->second[0];
  };
  c.loss_d = m.loss_d + (m.has_penalty ? m.penalty : 0.0);
  c.loss_d_ref = scalar("loss.d");
  c.loss_g = m.loss_g;
  c.loss_g_ref = scalar("loss.g");
  c.has_penalty = m.has_penalty && scalars.count("penalty");
  c.penalty = m.penalty;
  c.penalty_ref = scalar("penalty");
  c.has_k = m.is_began;
  c.k = m.k;
  c.k_ref = scalar("k");
  return c;
}

}  // namespace gancu::test
