// Memory of a backend: allocation, copies between host and backend, and a small owning buffer
// for tests, benchmarks and set-up code. The training loop itself never allocates: everything
// it touches lives in an Arena (arena.h), planned and allocated once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gancu/exec.h"

namespace gancu {

// Zero-initialized, 256-byte aligned. Counted (see allocation_count) so that tests can prove the
// training loop allocates nothing.
void* backend_alloc(Backend b, size_t bytes);
void backend_free(Backend b, void* ptr);
uint64_t allocation_count();  // backend_alloc calls so far, all backends
// cudaMalloc calls the CUDA backend made so far: backend_alloc's, the contexts' scratch buffers,
// the temporary buffers of convolution algorithm measurement (all of kernels/ allocates through
// one counted function). 0 without CUDA. What cuBLAS and cuDNN allocate by themselves is not
// seen here; an allocation inside a graph capture fails the capture instead.
uint64_t device_allocation_count();

// Host memory that a backend copies into fastest: page-locked (cudaMallocHost) for CUDA, so that
// what comes back from the device (metric sums, sample images, checkpoints) is DMA'd without a
// staging copy; ordinary aligned memory for the CPU. Set-up and off the hot path only.
void* host_alloc(Backend b, size_t bytes);
void host_free(Backend b, void* ptr);

// An owning host array for results read back from a backend.
template <class T>
class HostBuffer {
 public:
  HostBuffer(Backend b, size_t n) : backend_(b), n_(n), ptr_(static_cast<T*>(host_alloc(b, n * sizeof(T)))) {}
  ~HostBuffer() { host_free(backend_, ptr_); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return ptr_[i]; }

 private:
  Backend backend_;
  size_t n_;
  T* ptr_;
};

// Synchronous copies (they wait for the Exec's queued work). `device` is memory of ex's backend.
void copy_to_device(const Exec& ex, void* device, const void* host, size_t bytes);
void copy_to_host(const Exec& ex, void* host, const void* device, size_t bytes);
void copy_on_device(const Exec& ex, void* dst, const void* src, size_t bytes);
// A copy within ex's backend memory queued after the Exec's work, without waiting for it: part of
// a training step (a captured CUDA graph records it).
void enqueue_copy_on_device(const Exec& ex, void* dst, const void* src, size_t bytes);

// An owning array in a backend's memory.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Exec& ex, size_t n)
      : ex_(&ex), n_(n), ptr_(static_cast<T*>(backend_alloc(ex.backend(), n * sizeof(T)))) {}
  Buffer(const Exec& ex, const std::vector<T>& host) : Buffer(ex, host.size()) { upload(host); }
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      ex_ = o.ex_;
      n_ = o.n_;
      ptr_ = o.ptr_;
      o.ptr_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return n_; }

  void upload(const std::vector<T>& host) { copy_to_device(*ex_, ptr_, host.data(), n_ * sizeof(T)); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    copy_to_host(*ex_, host.data(), ptr_, n_ * sizeof(T));
    return host;
  }
  void reset() {
    if (ptr_) backend_free(ex_->backend(), ptr_);
    ptr_ = nullptr;
    n_ = 0;
  }

 private:
  const Exec* ex_ = nullptr;
  size_t n_ = 0;
  T* ptr_ = nullptr;
};

}  // namespace gancu
