#include "gancu/step_agreement.h"

#include <cmath>
#include <vector>

#include "gancu/data.h"
#include "gancu/memory.h"
#include "gancu/session.h"

namespace gancu {
namespace {

std::vector<float> params_of(const Exec& ex, const Network<float>& net) {
  std::vector<float> p(size_t(net.param_count()));
  copy_to_host(ex, p.data(), net.params(), p.size() * sizeof(float));
  return p;
}

struct OneStep {
  std::vector<float> before[2], after[2];  // G, D
  bool finite = true;
};

OneStep run_one_step(const Config& cfg, int batch, Exec& ex) {
  const Shape image = generator_image(cfg);
  const Dataset data = make_synthetic_dataset(image.h, image.w, image.c, std::max(256, batch), 11);
  GanSession s = make_session(cfg, image.with_batch(batch), batch, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, data, batch, cfg.seed);
  // The supervised generator has no D: its D parameters are empty on both sides.
  const Network<float>* nets[2] = {&s.gan->generator(),
                                   s.gan->has_discriminator() ? &s.gan->discriminator() : nullptr};
  OneStep r;
  for (int k = 0; k < 2; ++k)
    if (nets[k]) r.before[k] = params_of(ex, *nets[k]);
  s.gan->train_step(ex, device_data.source());
  r.finite = s.gan->read_metrics(ex).finite();
  for (int k = 0; k < 2; ++k)
    if (nets[k]) r.after[k] = params_of(ex, *nets[k]);
  return r;
}

// ||(a1 - a0) - (b1 - b0)|| / ||b1 - b0||, in double; infinite when a is not finite.
double update_error(const std::vector<float>& a0, const std::vector<float>& a1, const std::vector<float>& b0,
                    const std::vector<float>& b1) {
  if (a1.size() != b1.size() || a0.size() != b0.size()) return INFINITY;
  double diff = 0, ref = 0;
  for (size_t i = 0; i < b1.size(); ++i) {
    const double ua = double(a1[i]) - double(a0[i]), ub = double(b1[i]) - double(b0[i]);
    if (!std::isfinite(ua)) return INFINITY;
    diff += (ua - ub) * (ua - ub);
    ref += ub * ub;
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

}  // namespace

StepAgreement compare_one_step(const Config& cfg, int batch, Exec& test, Exec& ref) {
  Config sgd = cfg;
  sgd.optim_g.name = "sgd";
  sgd.optim_d.name = "sgd";
  sgd.batch = batch;
  const OneStep a = run_one_step(sgd, batch, test), b = run_one_step(sgd, batch, ref);
  StepAgreement r;
  r.finite = a.finite;
  r.rel_err_g = update_error(a.before[0], a.after[0], b.before[0], b.after[0]);
  r.rel_err_d = update_error(a.before[1], a.after[1], b.before[1], b.after[1]);
  // Different initial parameters would make every comparison meaningless.
  if (a.before[0] != b.before[0] || a.before[1] != b.before[1]) r.rel_err_g = r.rel_err_d = INFINITY;
  return r;
}

double step_agreement_bound(const std::string& math) {
  return math == "tf32" ? 3e-2 : 1e-3;
}

}  // namespace gancu
