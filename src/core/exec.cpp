// The backend-neutral half of Exec. The CUDA half (context creation, synchronization, device
// queries) lives in kernels/cuda_context.cu; without CUDA the stubs below say so.
#include "gancu/exec.h"

#include <omp.h>

#include "gancu/check.h"
#include "gancu/conv_plans.h"
#include "gancu/ops.h"

extern "C" void openblas_set_num_threads(int);

namespace gancu {

const char* backend_name(Backend b) {
  return b == Backend::CUDA ? "cuda" : "cpu";
}

Backend parse_backend(const std::string& name) {
  if (name == "cpu") return Backend::CPU;
  if (name == "cuda") return Backend::CUDA;
  usage_error("--backend: expected cpu or cuda, got '", name, "'");
}

void set_cpu_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

Exec Exec::cpu(int threads) {
  Exec ex;
  ex.backend_ = Backend::CPU;
  ex.threads_ = threads > 0 ? threads : omp_get_max_threads();
  set_cpu_threads(threads);
  return ex;
}

void* Exec::require_workspace(size_t bytes, const char* who) const {
  if (bytes == 0) return workspace_;
  if (bytes > workspace_bytes_)
    runtime_error(who, " needs ", bytes, " bytes of workspace but the plan gave ", workspace_bytes_,
                  " (a shape changed after planning?)");
  return workspace_;
}

namespace detail {
void no_cuda_backend(const char* op) {
  runtime_error("op ", op, " was asked to run on CUDA, but this gancu was built without the CUDA backend");
}
void no_double_on_cuda(const char* op) {
  runtime_error("op ", op, ": the CUDA backend implements float32 only (double is the CPU's checking path)");
}
}  // namespace detail

#if !GANCU_HAVE_CUDA
struct CudaContext {};

Exec Exec::cuda(int) {
  runtime_error("--backend cuda: this gancu was built without the CUDA backend (no nvcc at build time)");
}

void Exec::synchronize() const {}

void* Exec::cuda_stream() const {
  return nullptr;
}

bool cuda_available(std::string* why) {
  if (why) *why = "built without the CUDA backend";
  return false;
}

bool cuda_mem_get_info(size_t*, size_t*) {
  return false;
}

std::vector<ConvPlanReport> conv_plan_report(const Exec&) {
  return {};
}

std::string cuda_report() {
  return "not built (nvcc was not found when this gancu was configured)";
}
#endif

}  // namespace gancu
