// Device memory of the CUDA backend: allocation (zeroed, 256-byte aligned as cudaMalloc
// guarantees), release, and copies that are synchronous with respect to the Exec's stream.
//
// These run at set-up time and when the host reads results (every log_every steps), never inside
// the captured iteration: cudaMalloc and a stream synchronization are not capturable.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>

#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/memory.h"

namespace gancu {

namespace {
std::atomic<uint64_t> g_device_allocations{0};
}

uint64_t device_allocation_count() {
  return g_device_allocations.load();
}

namespace cuda {

cudaError_t device_malloc(void** ptr, size_t bytes) {
  ++g_device_allocations;
  return cudaMalloc(ptr, bytes);
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = device_malloc(&p, bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    runtime_error("out of GPU memory: could not allocate ", bytes, " bytes (", free_b >> 20, " MiB free of ",
                  total_b >> 20, " MiB): ", cudaGetErrorString(e));
  }
  // cudaMemset runs on the legacy default stream, which does not order itself with the Execs'
  // non-blocking streams: wait for it here so that no later op can see unzeroed memory.
  GANCU_CUDA_CHECK(cudaMemset(p, 0, bytes));
  GANCU_CUDA_CHECK(cudaStreamSynchronize(0));
  return p;
}

void device_free(void* ptr) {
  // Called from destructors: report, never throw.
  const cudaError_t e = cudaFree(ptr);
  if (e != cudaSuccess) std::fprintf(stderr, "gancu: warning: cudaFree: %s\n", cudaGetErrorString(e));
}

void* pinned_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    runtime_error("could not allocate ", bytes, " bytes of page-locked host memory: ", cudaGetErrorString(e));
  }
  return p;
}

void pinned_free(void* ptr) {
  const cudaError_t e = cudaFreeHost(ptr);
  if (e != cudaSuccess) std::fprintf(stderr, "gancu: warning: cudaFreeHost: %s\n", cudaGetErrorString(e));
}

void copy(const Exec& ex, void* dst, const void* src, size_t bytes, int kind) {
  cudaMemcpyKind k = cudaMemcpyDeviceToDevice;
  if (kind == 0)
    k = cudaMemcpyHostToDevice;
  else if (kind == 1)
    k = cudaMemcpyDeviceToHost;
  else
    GANCU_CHECK(kind == 2 || kind == 3, "copy kind ", kind);
  cudaStream_t s = stream_of(ex);
  GANCU_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, s));
  if (kind != 3) GANCU_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace cuda
}  // namespace gancu
