// Host-side memory of the CPU backend and the dispatch of allocations and copies. The CUDA
// implementations are in kernels/cuda_memory.cu.
#include "gancu/memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "gancu/check.h"

namespace gancu {

namespace {
std::atomic<uint64_t> g_allocations{0};
}

#if GANCU_HAVE_CUDA
namespace cuda {
void* device_alloc(size_t bytes);
void device_free(void* ptr);
// 0 h2d, 1 d2h, 2 d2d (each synchronous); 3 d2d queued on the stream without waiting
void copy(const Exec& ex, void* dst, const void* src, size_t bytes, int kind);
void* pinned_alloc(size_t bytes);
void pinned_free(void* ptr);
}  // namespace cuda
#endif

void* backend_alloc(Backend b, size_t bytes) {
  ++g_allocations;
  if (bytes == 0) bytes = 1;
  if (b == Backend::CUDA) {
#if GANCU_HAVE_CUDA
    return cuda::device_alloc(bytes);
#else
    detail::no_cuda_backend("alloc");
#endif
  }
  const size_t rounded = (bytes + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, rounded);
  if (!p) runtime_error("out of host memory: could not allocate ", bytes, " bytes");
  std::memset(p, 0, rounded);
  return p;
}

void backend_free(Backend b, void* ptr) {
  if (!ptr) return;
  if (b == Backend::CUDA) {
#if GANCU_HAVE_CUDA
    cuda::device_free(ptr);
#endif
    return;
  }
  std::free(ptr);
}

uint64_t allocation_count() {
  return g_allocations.load();
}

#if !GANCU_HAVE_CUDA
uint64_t device_allocation_count() {
  return 0;  // kernels/cuda_memory.cu counts where CUDA is built
}
#endif

void* host_alloc(Backend b, size_t bytes) {
  if (b == Backend::CUDA) {
#if GANCU_HAVE_CUDA
    return cuda::pinned_alloc(bytes ? bytes : 1);
#else
    detail::no_cuda_backend("pinned alloc");
#endif
  }
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (!p) runtime_error("out of host memory: could not allocate ", bytes, " bytes");
  return p;
}

void host_free(Backend b, void* ptr) {
  if (!ptr) return;
#if GANCU_HAVE_CUDA
  if (b == Backend::CUDA) return cuda::pinned_free(ptr);
#endif
  (void)b;
  std::free(ptr);
}

namespace {
void copy_dispatch(const Exec& ex, void* dst, const void* src, size_t bytes, int kind) {
  if (bytes == 0) return;
  if (ex.on_cuda()) {
#if GANCU_HAVE_CUDA
    cuda::copy(ex, dst, src, bytes, kind);
    return;
#else
    (void)kind;
    detail::no_cuda_backend("copy");
#endif
  }
  std::memcpy(dst, src, bytes);
}
}  // namespace

void copy_to_device(const Exec& ex, void* device, const void* host, size_t bytes) {
  copy_dispatch(ex, device, host, bytes, 0);
}
void copy_to_host(const Exec& ex, void* host, const void* device, size_t bytes) {
  copy_dispatch(ex, host, device, bytes, 1);
}
void copy_on_device(const Exec& ex, void* dst, const void* src, size_t bytes) {
  copy_dispatch(ex, dst, src, bytes, 2);
}
void enqueue_copy_on_device(const Exec& ex, void* dst, const void* src, size_t bytes) {
  copy_dispatch(ex, dst, src, bytes, 3);
}

}  // namespace gancu
