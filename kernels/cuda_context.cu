// The CUDA half of Exec: creating a context (device, stream, cuBLAS / cuBLASLt / cuDNN handles
// bound to the stream, the fixed scratch buffers), synchronizing, and the device probe
// cuda_available(), which never throws.
//
// The scratch buffers are allocated here, once per context, with cudaMalloc: they are the
// libraries' own workspace (cuBLAS would otherwise allocate inside a graph capture) and the
// partial sums of the deterministic reductions. They are not part of the model's Arena.
#include <cstdio>
#include <tuple>

#include "cuda_context.h"
#include "gancu/exec.h"

namespace gancu {

namespace cuda {

bool ConvKey::operator<(const ConvKey& o) const {
  return std::tie(n, h, w, c, k, r, s, stride, pad_h, pad_w, tf32, deterministic, workspace_limit, measured) <
         std::tie(o.n, o.h, o.w, o.c, o.k, o.r, o.s, o.stride, o.pad_h, o.pad_w, o.tf32, o.deterministic,
                  o.workspace_limit, o.measured);
}
bool LtKey::operator<(const LtKey& o) const {
  return std::tie(m, n, k, epilogue, align_mask, tf32) <
         std::tie(o.m, o.n, o.k, o.epilogue, o.align_mask, o.tf32);
}

CudaContext& context(const Exec& ex) {
  CudaContext* c = ex.cuda_context();
  if (!ex.on_cuda() || c == nullptr) runtime_error("internal: a CUDA op was given a non-CUDA Exec");
  return *c;
}

bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  GANCU_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

namespace {
// A kernel that does nothing: cudaFuncGetAttributes on it tells whether this binary carries code
// that the device can run (the build's CMAKE_CUDA_ARCHITECTURES).
__global__ void probe_kernel() {}

// Destructors report instead of throwing.
void report(cudaError_t e, const char* what) {
  if (e != cudaSuccess) std::fprintf(stderr, "gancu: warning: %s: %s\n", what, cudaGetErrorString(e));
}
}  // namespace

}  // namespace cuda

CudaContext::CudaContext(int dev) : device(dev) {
  try {
    GANCU_CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop{};
    GANCU_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    sm_count = prop.multiProcessorCount;
    device_name = prop.name;
    GANCU_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    // 32 MiB: what cuBLAS recommends for Hopper; also enough for every cuBLASLt heuristic pick.
    blas_workspace_bytes = size_t(32) << 20;
    GANCU_CUDA_CHECK(cuda::device_malloc(&blas_workspace, blas_workspace_bytes));
    // Reductions: up to 1M floats of partial sums (e.g. 256 row splits x 1024 channels x 4).
    reduce_scratch_bytes = size_t(4) << 20;
    GANCU_CUDA_CHECK(cuda::device_malloc(&reduce_scratch, reduce_scratch_bytes));

    GANCU_CUBLAS_CHECK(cublasCreate(&cublas));
    GANCU_CUBLAS_CHECK(cublasSetStream(cublas, stream));
    GANCU_CUBLAS_CHECK(cublasSetWorkspace(cublas, blas_workspace, blas_workspace_bytes));
    // Pointer mode host: alpha and beta are host scalars in every call.
    GANCU_CUBLAS_CHECK(cublasSetPointerMode(cublas, CUBLAS_POINTER_MODE_HOST));
    GANCU_CUBLAS_CHECK(cublasLtCreate(&cublaslt));
    GANCU_CUDNN_CHECK(cudnnCreate(&cudnn));
    GANCU_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
  } catch (...) {
    release();  // what was created so far; the members themselves unwind as usual
    throw;
  }
}

CudaContext::~CudaContext() {
  release();
}

void CudaContext::release() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex);
    conv_plans.clear();  // their deleters destroy cuDNN descriptors
    lt_plans.clear();
  }
  if (stream) cuda::report(cudaStreamSynchronize(stream), "cudaStreamSynchronize at context teardown");
  if (cudnn) {
    const cudnnStatus_t s = cudnnDestroy(cudnn);
    if (s != CUDNN_STATUS_SUCCESS)
      std::fprintf(stderr, "gancu: warning: cudnnDestroy: %s\n", cudnnGetErrorString(s));
    cudnn = nullptr;
  }
  if (cublaslt) {
    const cublasStatus_t s = cublasLtDestroy(cublaslt);
    if (s != CUBLAS_STATUS_SUCCESS)
      std::fprintf(stderr, "gancu: warning: cublasLtDestroy: %s\n", cublasGetStatusString(s));
    cublaslt = nullptr;
  }
  if (cublas) {
    const cublasStatus_t s = cublasDestroy(cublas);
    if (s != CUBLAS_STATUS_SUCCESS)
      std::fprintf(stderr, "gancu: warning: cublasDestroy: %s\n", cublasGetStatusString(s));
    cublas = nullptr;
  }
  if (reduce_scratch) cuda::report(cudaFree(reduce_scratch), "cudaFree(reduce scratch)");
  reduce_scratch = nullptr;
  if (blas_workspace) cuda::report(cudaFree(blas_workspace), "cudaFree(cuBLAS workspace)");
  blas_workspace = nullptr;
  if (stream) cuda::report(cudaStreamDestroy(stream), "cudaStreamDestroy");
  stream = nullptr;
}

bool cuda_available(std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  try {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // clear the error this probe left behind
      return fail(std::string("no usable CUDA driver or device (cudaGetDeviceCount: ") +
                  cudaGetErrorString(e) + ")");
    }
    if (count == 0) return fail("no CUDA device present");
    cudaFuncAttributes attr{};
    const cudaError_t k = cudaFuncGetAttributes(&attr, cuda::probe_kernel);
    if (k != cudaSuccess && k != cudaErrorNoKernelImageForDevice && k != cudaErrorInvalidDeviceFunction &&
        k != cudaErrorUnsupportedPtxVersion) {
      // Not a missing architecture: a busy exclusive-mode GPU, a failed context creation...
      (void)cudaGetLastError();
      return fail(std::string("the CUDA device cannot be used (") + cudaGetErrorName(k) + ": " +
                  cudaGetErrorString(k) + ")");
    }
    if (k != cudaSuccess) {
      (void)cudaGetLastError();
      cudaDeviceProp prop{};
      int major = 0, minor = 0;
      if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
        major = prop.major;
        minor = prop.minor;
      }
      (void)cudaGetLastError();
      return fail(std::string("this gancu has no GPU code for the device (compute capability ") +
                  std::to_string(major) + "." + std::to_string(minor) +
                  "; rebuild with -DCMAKE_CUDA_ARCHITECTURES): " + cudaGetErrorString(k));
    }
    if (why) why->clear();
    return true;
  } catch (const std::exception& ex) {
    return fail(ex.what());
  } catch (...) {
    return fail("unknown error while probing for CUDA");
  }
}

Exec Exec::cuda(int device) {
  std::string why;
  if (!cuda_available(&why)) runtime_error("--backend cuda: ", why);
  int count = 0;
  GANCU_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    runtime_error("--backend cuda: device ", device, " does not exist (", count, " CUDA device(s) present)");
  Exec ex;
  ex.backend_ = Backend::CUDA;
  ex.threads_ = 1;
  ex.cuda_ = std::make_shared<CudaContext>(device);
  return ex;
}

void Exec::synchronize() const {
  if (!on_cuda()) return;
  GANCU_CUDA_CHECK(cudaStreamSynchronize(cuda::context(*this).stream));
}

void* Exec::cuda_stream() const {
  return on_cuda() && cuda_ ? static_cast<void*>(cuda_->stream) : nullptr;
}

}  // namespace gancu
