#include "gancu/session.h"

#include "gancu/check.h"

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

}  // namespace gancu
