#include "gancu/session.h"

#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu {

Exec open_backend(const std::string& requested, int threads, const std::string& math, std::ostream& log) {
  std::string why;
  Backend backend = Backend::CPU;
  if (requested == "cuda") {
    if (!cuda_available(&why)) runtime_error("--backend cuda: no usable GPU (", why, ")");
    backend = Backend::CUDA;
  } else if (requested == "auto") {
    backend = cuda_available(&why) ? Backend::CUDA : Backend::CPU;
  } else if (requested != "cpu") {
    usage_error("--backend: expected auto, cpu or cuda, got '", requested, "'");
  }
  Exec ex = backend == Backend::CUDA ? Exec::cuda(0) : Exec::cpu(threads);
  ex.set_tf32(math == "tf32");
  if (backend == Backend::CUDA)
    log << "gancu: backend cuda" << (requested == "auto" ? " (a GPU is present)" : "") << "\n";
  else
    log << "gancu: backend cpu, " << ex.threads() << " threads"
        << (requested == "auto" ? " (no GPU: " + why + ")" : "") << "\n";
  return ex;
}

GanSession make_session(const Config& cfg, Shape image, int batch, Exec& ex) {
  GanSession s;
  s.gan = std::make_unique<Gan>(cfg, image, batch);
  ArenaPlan plan;
  s.gan->plan(plan, ex);
  s.arena = Arena(ex.backend(), std::move(plan));
  s.gan->bind(s.arena);
  ex.set_workspace(s.arena.workspace(), s.arena.workspace_bytes());
  return s;
}

Shape generator_image(const Config& cfg) {
  const Network<float> g("G", 1, cfg.generator, "model.generator", Shape::features(1, cfg.z_dim), cfg.init);
  return g.output_shape().with_batch(0);
}

DeviceDataset::DeviceDataset(const Exec& ex, const Dataset& data, int batch, uint64_t seed)
    : images_(ex, data.images), gather_{data.count, int64_t(data.image_bytes()), batch, seed} {
  source_ = [this](const Exec& e, float* out, const int64_t* data_step) {
    ops::gather_batch<float>(e, gather_, images_.data(), data_step, out);
  };
}

}  // namespace gancu
