// The CUDA half of an Exec: device, stream, library handles bound to that stream, the scratch
// buffers the libraries and the reductions need, and the caches that are filled at plan time
// (cuDNN convolution algorithms, cuBLASLt matmul algorithms).
//
// One CudaContext per Exec::cuda() call; Exec copies share it (shared_ptr). Everything an op
// enqueues goes to `stream`, and nothing an op does allocates or synchronizes, so that the
// training iteration can be captured as a CUDA graph (kernels/cuda_graph.cu).
//
// Internal to kernels/: host code outside kernels/ sees only the forward declaration in exec.h.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "gancu/check.h"
#include "gancu/exec.h"
#include "gancu/op_types.h"

namespace gancu {

namespace cuda {
struct ConvPlan;  // conv.cu: descriptors and chosen algorithms of one convolution shape
struct LtPlan;    // gemm.cu: a cuBLASLt matmul descriptor, layouts and algorithm
// A plan is chosen under these conditions, so they are part of its key: the dims, the math, whether
// nondeterministic algorithms may be chosen, the workspace the choice was limited to, and whether
// the algorithms were measured (at plan time) or taken from cuDNN's heuristics (at run time).
struct ConvKey {
  int n, h, w, c, k, r, s, stride, pad_h, pad_w;
  bool tf32;
  bool deterministic;
  size_t workspace_limit;
  bool measured;
  bool operator<(const ConvKey& o) const;
};
struct LtKey {
  int m, n, k;
  int epilogue;    // cublasLtEpilogue_t
  int align_mask;  // alignment class of the pointers (bits of 16/32/64/128/256 alignment)
  bool tf32;
  bool operator<(const LtKey& o) const;
};
}  // namespace cuda

struct CudaContext {
  CudaContext(int device);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  void release() noexcept;  // frees what the constructor created; idempotent

  int device = 0;
  int sm_count = 0;
  std::string device_name;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;

  // cuBLAS and cuBLASLt share one workspace (they run one after the other on `stream`). Set
  // explicitly so that cuBLAS never allocates inside a graph capture.
  void* blas_workspace = nullptr;
  size_t blas_workspace_bytes = 0;

  // Scratch of the two-stage deterministic reductions (per-channel partial sums of batch norm
  // and bias gradients). Used by one op at a time, on `stream`.
  void* reduce_scratch = nullptr;
  size_t reduce_scratch_bytes = 0;

  // Caches (guarded by `mutex`; entries live as long as the context).
  std::mutex mutex;
  // shared_ptr: the plans' types are complete only in their own .cu files.
  std::map<cuda::ConvKey, std::shared_ptr<cuda::ConvPlan>> conv_plans;
  std::map<cuda::LtKey, std::shared_ptr<cuda::LtPlan>> lt_plans;
};

namespace cuda {

// The context of a CUDA Exec (a RuntimeError if `ex` is not one).
CudaContext& context(const Exec& ex);
inline cudaStream_t stream_of(const Exec& ex) {
  return context(ex).stream;
}

// cudaMalloc through a counter (device_allocation_count() in memory.h): every device allocation of
// kernels/ goes through here, so that a test can prove the training loop makes none.
cudaError_t device_malloc(void** ptr, size_t bytes);

// Is `stream` being captured into a graph right now? (Plan-time work that must not be captured,
// such as algorithm measurement, checks this.)
bool is_capturing(cudaStream_t stream);

}  // namespace cuda
}  // namespace gancu
