// `gancu info`'s CUDA section: versions and devices. Never throws: a machine without a driver
// gets the reason instead.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "gancu/exec.h"

namespace gancu {

bool cuda_mem_get_info(size_t* free_bytes, size_t* total_bytes) {
  if (!cuda_available()) return false;
  return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess;
}

std::string cuda_report() {
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); };
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  const size_t cudnn = cudnnGetVersion();
  std::string s = "runtime " + version(runtime) + ", driver " +
                  (driver ? version(driver) : std::string("none")) + ", cuDNN " +
                  std::to_string(cudnn / 10000) + "." + std::to_string((cudnn % 10000) / 100) + "." +
                  std::to_string(cudnn % 100);
  std::string why;
  if (!cuda_available(&why)) {
    (void)cudaGetLastError();
    return s + "\n  no usable device: " + why;
  }
  int count = 0;
  cudaGetDeviceCount(&count);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    s += "\n  device " + std::to_string(d) + ": " + p.name + ", compute capability " +
         std::to_string(p.major) + "." + std::to_string(p.minor) + ", " +
         std::to_string(p.totalGlobalMem >> 20) + " MiB, " + std::to_string(p.multiProcessorCount) + " SMs";
  }
  return s;
}

}  // namespace gancu
