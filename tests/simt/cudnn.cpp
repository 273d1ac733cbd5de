// cuDNN's convolution passes in the emulated build (see cudnn.h): each runs gancu's CPU twin
// (src/cpu/conv.cpp) on the handle's stream, so a capture records it; alpha and beta scale and
// accumulate as cuDNN's do. The CPU twins are what the CUDA tests compare against, so a
// convolution on the emulated backend tests the project's own code around it (descriptors, plans,
// the bias and activation epilogue kernels), not cuDNN.
#include <cudnn.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "gancu/exec.h"
#include "gancu/ops.h"
#include "runtime.h"

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  int n = 0, c = 0, h = 0, w = 0;
  bool nhwc = false, set = false;
};
struct cudnnFilterStruct {
  int k = 0, c = 0, r = 0, s = 0;
  bool nhwc = false, set = false;
};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  bool set = false;
};

namespace {
std::atomic<int> g_withheld{0};  // the passes simtCudnnWithholdAlgorithms names
}  // namespace

void simtCudnnWithholdAlgorithms(int passes) {
  g_withheld.store(passes);
}

size_t cudnnGetVersion() {
  return 90000;  // the API level emulated: cuDNN 9's legacy convolution calls
}
const char* cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED (the SIMT emulator's cuDNN)";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED";
    default:
      return "CUDNN_STATUS_INTERNAL_ERROR";
  }
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  *h = new cudnnContext;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  h->stream = s;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  *d = new cudnnTensorStruct;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
  if (!d || n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = cudnnTensorStruct{n, c, h, w, format == CUDNN_TENSOR_NHWC, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  *d = new cudnnFilterStruct;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  if (!d || k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = cudnnFilterStruct{k, c, h, w, format == CUDNN_TENSOR_NHWC, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  *d = new cudnnConvolutionStruct;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                              int stride_h, int stride_w, int dilation_h, int dilation_w,
                                              cudnnConvolutionMode_t mode, cudnnDataType_t) {
  if (!d || pad_h < 0 || pad_w < 0 || stride_h <= 0 || stride_w <= 0 || dilation_h <= 0 || dilation_w <= 0)
    return CUDNN_STATUS_BAD_PARAM;
  *d = cudnnConvolutionStruct{pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w, mode, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t) {
  return d ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t cd,
                                                    cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                    int* n, int* c, int* h, int* wd) {
  if (!cd || !x || !w || !cd->set || !x->set || !w->set || x->c != w->c) return CUDNN_STATUS_BAD_PARAM;
  *n = x->n;
  *c = w->k;
  *h = (x->h + 2 * cd->pad_h - cd->dil_h * (w->r - 1) - 1) / cd->stride_h + 1;
  *wd = (x->w + 2 * cd->pad_w - cd->dil_w * (w->s - 1) - 1) / cd->stride_w + 1;
  return CUDNN_STATUS_SUCCESS;
}

namespace {

// gancu's dims of the convolution x * w -> y, when the emulator supports it (what gancu uses:
// NHWC tensors, KRSC filters, cross-correlation, one stride for both axes, no dilation).
bool conv_dims(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cd,
               cudnnTensorDescriptor_t y, gancu::ConvDims* d) {
  if (!x || !w || !cd || !y || !x->set || !w->set || !cd->set || !y->set) return false;
  if (!x->nhwc || !w->nhwc || !y->nhwc || cd->mode != CUDNN_CROSS_CORRELATION) return false;
  if (cd->stride_h != cd->stride_w || cd->dil_h != 1 || cd->dil_w != 1) return false;
  if (x->c != w->c || y->c != w->k || y->n != x->n) return false;
  *d = gancu::ConvDims::conv(x->n, x->h, x->w, x->c, w->k, w->r, w->s, cd->stride_h, cd->pad_h, cd->pad_w);
  return d->p == y->h && d->q == y->w;
}

// Two algorithms of one pass, best first as cuDNN sorts them; both marked unsupported where the
// pass is withheld.
template <class Perf, class Algo>
cudnnStatus_t offer(int pass_bit, int requested, int* returned, Perf* perf, Algo first, size_t first_bytes,
                    cudnnDeterminism_t first_det, Algo second) {
  if (requested < 2 || !returned || !perf) return CUDNN_STATUS_BAD_PARAM;
  const bool withheld = (g_withheld.load() & pass_bit) != 0;
  const Algo algos[2] = {first, second};
  for (int i = 0; i < 2; ++i) {
    perf[i] = Perf{};
    perf[i].algo = algos[i];
    perf[i].status = withheld ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
    perf[i].time = float(i + 1);
    perf[i].memory = i == 0 ? first_bytes : 0;
    perf[i].determinism = i == 0 ? first_det : CUDNN_DETERMINISTIC;
    perf[i].mathType = CUDNN_FMA_MATH;
  }
  *returned = 2;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t offer_fwd(int requested, int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
  return offer(1, requested, returned, perf, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
               kSimtPrecompWorkspace, CUDNN_DETERMINISTIC, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
}
cudnnStatus_t offer_bwd_data(int requested, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  return offer(2, requested, returned, perf, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, 0, CUDNN_NON_DETERMINISTIC,
               CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
}
cudnnStatus_t offer_bwd_filter(int requested, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  return offer(4, requested, returned, perf, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, 0, CUDNN_NON_DETERMINISTIC,
               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
}

// The CPU twins run single-threaded with their own column workspace.
gancu::Exec cpu_exec(const gancu::ConvDims& d, std::vector<float>& ws) {
  gancu::Exec ex = gancu::Exec::cpu(1);
  const size_t bytes = gancu::cpu::conv_workspace_bytes<float>(ex, d, false);
  ws.resize(bytes / sizeof(float) + 1);
  ex.set_workspace(ws.data(), bytes);
  return ex;
}

// out = alpha * fresh + beta * out (beta 0: out is not read, as cuDNN's contract says).
void blend(float alpha, float beta, const std::vector<float>& fresh, float* out) {
  for (size_t i = 0; i < fresh.size(); ++i)
    out[i] = beta == 0.0f ? alpha * fresh[i] : alpha * fresh[i] + beta * out[i];
}

cudnnStatus_t run(cudnnHandle_t h, const char* what, std::function<void()> work) {
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  return simt::enqueue_library_call(h->stream, what, std::move(work)) ? CUDNN_STATUS_SUCCESS
                                                                      : CUDNN_STATUS_EXECUTION_FAILED;
}

}  // namespace

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t, cudnnTensorDescriptor_t, const void*,
                                                     cudnnFilterDescriptor_t, const void*,
                                                     cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                                                     void*, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf, void*, size_t) {
  return offer_fwd(requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t, cudnnFilterDescriptor_t, const void*, cudnnTensorDescriptor_t, const void*,
    cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void*, int requested, int* returned,
    cudnnConvolutionBwdDataAlgoPerf_t* perf, void*, size_t) {
  return offer_bwd_data(requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t, cudnnTensorDescriptor_t, const void*, cudnnTensorDescriptor_t, const void*,
    cudnnConvolutionDescriptor_t, cudnnFilterDescriptor_t, void*, int requested, int* returned,
    cudnnConvolutionBwdFilterAlgoPerf_t* perf, void*, size_t) {
  return offer_bwd_filter(requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                     cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t,
                                                     cudnnTensorDescriptor_t, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  return offer_fwd(requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
    cudnnTensorDescriptor_t, int requested, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  return offer_bwd_data(requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t, cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
    cudnnFilterDescriptor_t, int requested, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  return offer_bwd_filter(requested, returned, perf);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd,
                                      const void* x, cudnnFilterDescriptor_t wd, const void* w,
                                      cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                      void* ws, size_t ws_bytes, const void* beta, cudnnTensorDescriptor_t yd,
                                      void* y) {
  gancu::ConvDims d;
  if (!conv_dims(xd, wd, cd, yd, &d)) return CUDNN_STATUS_NOT_SUPPORTED;
  // The workspace the chosen algorithm asked for must be given.
  if (algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM && (!ws || ws_bytes < kSimtPrecompWorkspace))
    return CUDNN_STATUS_BAD_PARAM;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  auto xp = static_cast<const float*>(x), wp = static_cast<const float*>(w);
  auto yp = static_cast<float*>(y);
  return run(h, "cudnnConvolutionForward", [=]() {
    std::vector<float> ws, fresh(size_t(d.y_elems()));
    gancu::cpu::conv2d_forward<float>(cpu_exec(d, ws), d, xp, wp, nullptr, fresh.data(), gancu::Activation{});
    blend(al, be, fresh, yp);
  });
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t wd,
                                           const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
                                           cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t,
                                           void*, size_t, const void* beta, cudnnTensorDescriptor_t dxd,
                                           void* dx) {
  gancu::ConvDims d;
  if (!conv_dims(dxd, wd, cd, dyd, &d)) return CUDNN_STATUS_NOT_SUPPORTED;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  auto wp = static_cast<const float*>(w), dyp = static_cast<const float*>(dy);
  auto dxp = static_cast<float*>(dx);
  return run(h, "cudnnConvolutionBackwardData", [=]() {
    std::vector<float> ws, fresh(size_t(d.x_elems()));
    std::vector<float> g(dyp, dyp + d.y_elems());  // the CPU twin's dy is not const
    gancu::cpu::conv2d_backward<float>(cpu_exec(d, ws), d, nullptr, wp, nullptr, g.data(), fresh.data(),
                                       false, nullptr, nullptr, gancu::Activation{});
    blend(al, be, fresh, dxp);
  });
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd,
                                             const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdFilterAlgo_t,
                                             void*, size_t, const void* beta, cudnnFilterDescriptor_t dwd,
                                             void* dw) {
  gancu::ConvDims d;
  if (!conv_dims(xd, dwd, cd, dyd, &d)) return CUDNN_STATUS_NOT_SUPPORTED;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  auto xp = static_cast<const float*>(x), dyp = static_cast<const float*>(dy);
  auto dwp = static_cast<float*>(dw);
  return run(h, "cudnnConvolutionBackwardFilter", [=]() {
    std::vector<float> ws, fresh(size_t(d.filter_elems()), 0.0f);
    std::vector<float> g(dyp, dyp + d.y_elems());
    gancu::cpu::conv2d_backward<float>(cpu_exec(d, ws), d, xp, nullptr, nullptr, g.data(), nullptr, false,
                                       fresh.data(), nullptr, gancu::Activation{});
    blend(al, be, fresh, dwp);
  });
}
