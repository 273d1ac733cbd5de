// Where ops run: the backend, its handles, and the scratch workspace they may use.
//
// An Exec is passed to every op in ops.h. For the CPU it only names the thread count; for CUDA
// it owns the stream, the cuBLAS/cuDNN handles and the convolution algorithm cache (all behind
// the opaque CudaContext, defined in kernels/). The workspace pointer is set once the arena is
// bound: ops that need scratch memory (im2col columns, cuDNN workspaces) take it from there
// instead of allocating.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace gancu {

enum class Backend { CPU, CUDA };

const char* backend_name(Backend b);
Backend parse_backend(const std::string& name);  // "cpu" | "cuda"; UsageError otherwise

struct CudaContext;  // kernels/cuda_context.h

class Exec {
 public:
  static Exec cpu(int threads = 0);  // 0: OpenMP's default
  static Exec cuda(int device = 0);  // RuntimeError when CUDA is unavailable

  Backend backend() const { return backend_; }
  bool on_cuda() const { return backend_ == Backend::CUDA; }
  int threads() const { return threads_; }
  CudaContext* cuda_context() const { return cuda_.get(); }

  // Scratch memory on this backend, owned by an Arena (or a test). Ops that need more than
  // `workspace_bytes` fail with a message naming what they asked for.
  void set_workspace(void* ptr, size_t bytes) {
    workspace_ = ptr;
    workspace_bytes_ = bytes;
  }
  void* workspace() const { return workspace_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  void* require_workspace(size_t bytes, const char* who) const;

  void synchronize() const;  // waits for all queued device work; no-op on the CPU
  // The cudaStream_t every op of this Exec is queued on (for CUDA-event timing and interop);
  // nullptr on the CPU.
  void* cuda_stream() const;

  // TF32 tensor-core math for fp32 GEMMs and convolutions (`math=tf32`). Off by default: fp32
  // results then match the CPU to ~1e-5. Read by the CUDA backend at each call; the CPU ignores it.
  void set_tf32(bool on) { tf32_ = on; }
  bool tf32() const { return tf32_; }
  // Only deterministic library algorithms (`run.deterministic`, on by default): cuDNN may then
  // not pick a convolution algorithm that sums in a run-dependent order (atomics), so that a run
  // repeats bit for bit on one GPU. Off: the fastest algorithm, deterministic or not. Read when a
  // convolution is planned; the CPU is always deterministic.
  void set_deterministic(bool on) { deterministic_ = on; }
  bool deterministic() const { return deterministic_; }

 private:
  Backend backend_ = Backend::CPU;
  int threads_ = 0;
  std::shared_ptr<CudaContext> cuda_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  bool tf32_ = false;
  bool deterministic_ = true;
};

// Is a usable CUDA device present? False when built without CUDA, without a driver, or without a
// device. `why` receives the reason when false.
bool cuda_available(std::string* why = nullptr);

// What `gancu info` prints about CUDA: runtime, driver and cuDNN versions and each device (name,
// compute capability, memory), or why there is none.
std::string cuda_report();

// Free and total memory of the current CUDA device (cudaMemGetInfo); false without one.
bool cuda_mem_get_info(size_t* free_bytes, size_t* total_bytes);

// Sets the threads of OpenMP and OpenBLAS; 0 leaves the default.
void set_cpu_threads(int threads);

}  // namespace gancu
