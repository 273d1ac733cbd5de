// Convolutions of the CUDA backend through cuDNN (legacy convolution API of cuDNN 9): conv2d and
// transposed conv2d, forward and backward, NHWC tensors and KRSC filters (cuDNN's
// CUDNN_TENSOR_NHWC filter format for [k, r, s, c]), cross-correlation as PyTorch.
//
// One convolution shape has three passes, and a transposed convolution uses the same three
// passes read the other way:
//                     conv2d                          conv_transpose2d
//   forward           ConvolutionForward (fwd)        ConvolutionBackwardData (bwd_data)
//   input gradient    ConvolutionBackwardData         ConvolutionForward
//   filter gradient   ConvolutionBackwardFilter(x,dy) ConvolutionBackwardFilter(dy, x)
// so a plan (descriptors + the algorithm of each pass) is cached per (dims incl. batch, TF32),
// shared by a conv and a transposed conv of the same dims.
//
// Algorithm choice: conv_workspace_bytes() (called when the model is planned, before the loop)
// creates the plan: it measures every algorithm of each pass with cudnnFind*AlgorithmEx on
// temporary buffers, picks the fastest deterministic one (the fastest of all when none is
// deterministic), logs the choice once per shape to stderr, and returns the largest workspace of
// the three. Where measuring fails, or when a shape is first seen at run time (e.g. sampling with
// a smaller batch, possibly inside a graph capture), cuDNN's heuristics (cudnnGet*_v7) choose
// instead, limited to the workspace the Exec has. Descriptors are created once per plan.
//
// Fusion: bias + activation are one bias_act pass after the convolution (cuDNN's fused
// conv-bias-act of the legacy API only supports ReLU); in backward, the activation's derivative
// is applied to dy in the same pass that sums the bias gradient (reduce.cu).
//
// Precision: with TF32 off each pass runs with CUDNN_FMA_MATH (true fp32); with TF32 on,
// CUDNN_TENSOR_OP_MATH allows TF32 tensor cores and each pass takes the math type its chosen
// algorithm was measured with. Limits: cuDNN's (fewer than 2^31 elements per tensor).
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr;  // [n, c, h, w] in NHWC
  cudnnTensorDescriptor_t y = nullptr;  // [n, k, p, q] in NHWC
  cudnnFilterDescriptor_t w = nullptr;  // [k, c, r, s] in NHWC = KRSC
  cudnnConvolutionDescriptor_t conv_fwd = nullptr, conv_bwd_data = nullptr, conv_bwd_filter = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
  // A plan made at run time (a shape first seen after planning) may lack a pass that fits the
  // workspace; that pass fails when it is called, the others still run.
  bool has_fwd = false, has_bwd_data = false, has_bwd_filter = false;
  std::string name;  // for messages
  size_t max_ws() const { return std::max({fwd_ws, bwd_data_ws, bwd_filter_ws}); }
  ~ConvPlan() {
    // Host-side descriptor frees; statuses dropped in a destructor.
    if (x) (void)cudnnDestroyTensorDescriptor(x);
    if (y) (void)cudnnDestroyTensorDescriptor(y);
    if (w) (void)cudnnDestroyFilterDescriptor(w);
    if (conv_fwd) (void)cudnnDestroyConvolutionDescriptor(conv_fwd);
    if (conv_bwd_data) (void)cudnnDestroyConvolutionDescriptor(conv_bwd_data);
    if (conv_bwd_filter) (void)cudnnDestroyConvolutionDescriptor(conv_bwd_filter);
  }
};

namespace {

constexpr size_t kFindWorkspaceLimit = size_t(64) << 20;  // what measuring may offer an algorithm

const char* fwd_name(int a) {
  static const char* names[] = {
      "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
      "WINOGRAD",      "WINOGRAD_NONFUSED"};
  return a >= 0 && a < 8 ? names[a] : "?";
}
const char* bwd_data_name(int a) {
  static const char* names[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  return a >= 0 && a < 6 ? names[a] : "?";
}
const char* bwd_filter_name(int a) {
  static const char* names[] = {"ALGO_0",    "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                "FFT_TILING"};
  return a >= 0 && a < 7 ? names[a] : "?";
}

// The chosen entry of a perf list (sorted fastest first by cuDNN): the first that succeeded,
// fits `limit` and is deterministic; else the first that succeeded and fits. -1 if none.
template <class Perf>
int pick(const Perf* perfs, int count, size_t limit) {
  int any = -1;
  for (int i = 0; i < count; ++i) {
    if (perfs[i].status != CUDNN_STATUS_SUCCESS || perfs[i].memory > limit) continue;
    if (perfs[i].determinism == CUDNN_DETERMINISTIC) return i;
    if (any < 0) any = i;
  }
  return any;
}

struct Chosen {
  int algo = -1;
  size_t memory = 0;
  float ms = -1.0f;  // measured time; < 0 for a heuristic pick
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

template <class Perf>
Chosen chosen_from(const Perf* perfs, int count, size_t limit) {
  Chosen c;
  const int i = pick(perfs, count, limit);
  if (i < 0) return c;
  c.algo = int(perfs[i].algo);
  c.memory = perfs[i].memory;
  c.ms = perfs[i].time;
  c.math = perfs[i].mathType;
  return c;
}

// Temporary device buffers for measuring; freed on scope exit.
struct TempBuffers {
  void* x = nullptr;
  void* y = nullptr;
  void* w = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 0;
  ~TempBuffers() {
    for (void* p : {x, y, w, ws})
      if (p) (void)cudaFree(p);
  }
  bool allocate(const ConvDims& d, size_t limit, cudaStream_t s) {
    auto get = [&](void** p, size_t bytes) {
      if (cudaMalloc(p, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        *p = nullptr;
        return false;
      }
      return cudaMemsetAsync(*p, 0, bytes, s) == cudaSuccess;
    };
    if (!get(&x, size_t(d.x_elems()) * 4) || !get(&y, size_t(d.y_elems()) * 4) ||
        !get(&w, size_t(d.filter_elems()) * 4))
      return false;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      (void)cudaGetLastError();
      free_b = 0;
    }
    ws_bytes = std::min(limit, free_b / 4);
    if (ws_bytes > 0 && !get(&ws, ws_bytes)) ws_bytes = 0;
    return true;
  }
};

void create_descriptors(ConvPlan& p, const ConvDims& d, bool tf32) {
  GANCU_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  GANCU_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  GANCU_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  GANCU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, d.n, d.c, d.h, d.w));
  GANCU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, d.n, d.k, d.p, d.q));
  GANCU_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, d.k, d.c, d.r, d.s));
  for (cudnnConvolutionDescriptor_t* cd : {&p.conv_fwd, &p.conv_bwd_data, &p.conv_bwd_filter}) {
    GANCU_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(cd));
    GANCU_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(*cd, d.pad, d.pad, d.stride, d.stride, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(*cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  int n = 0, k = 0, pp = 0, q = 0;
  GANCU_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.conv_fwd, p.x, p.w, &n, &k, &pp, &q));
  GANCU_CHECK(n == d.n && k == d.k && pp == d.p && q == d.q, "cuDNN's output dims ", n, "x", pp, "x", q, "x",
              k, " differ from gancu's ", d.n, "x", d.p, "x", d.q, "x", d.k);
}

// Measures the three passes. Each Chosen stays algo = -1 where measuring failed.
void measure(CudaContext& ctx, const ConvPlan& p, const ConvDims& d, Chosen& f, Chosen& bd, Chosen& bf) {
  TempBuffers t;
  if (!t.allocate(d, kFindWorkspaceLimit, ctx.stream)) return;
  int got = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    if (cudnnFindConvolutionForwardAlgorithmEx(ctx.cudnn, p.x, t.x, p.w, t.w, p.conv_fwd, p.y, t.y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perfs, t.ws,
                                               t.ws_bytes) == CUDNN_STATUS_SUCCESS)
      f = chosen_from(perfs, got, t.ws_bytes);
    else
      (void)cudaGetLastError();  // a failed Find may leave a CUDA error that a later check would misplace
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    if (cudnnFindConvolutionBackwardDataAlgorithmEx(ctx.cudnn, p.w, t.w, p.y, t.y, p.conv_bwd_data, p.x, t.x,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perfs, t.ws,
                                                    t.ws_bytes) == CUDNN_STATUS_SUCCESS)
      bd = chosen_from(perfs, got, t.ws_bytes);
    else
      (void)cudaGetLastError();
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    if (cudnnFindConvolutionBackwardFilterAlgorithmEx(ctx.cudnn, p.x, t.x, p.y, t.y, p.conv_bwd_filter, p.w,
                                                      t.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got,
                                                      perfs, t.ws, t.ws_bytes) == CUDNN_STATUS_SUCCESS)
      bf = chosen_from(perfs, got, t.ws_bytes);
    else
      (void)cudaGetLastError();
  }
  GANCU_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

// cuDNN's heuristic ranking, limited to `limit` bytes of workspace, for the passes still unset.
void heuristics(CudaContext& ctx, const ConvPlan& p, size_t limit, Chosen& f, Chosen& bd, Chosen& bf) {
  int got = 0;
  if (f.algo < 0) {
    cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    GANCU_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, p.x, p.w, p.conv_fwd, p.y,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perfs));
    f = chosen_from(perfs, got, limit);
    f.ms = -1.0f;
  }
  if (bd.algo < 0) {
    cudnnConvolutionBwdDataAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    GANCU_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        ctx.cudnn, p.w, p.y, p.conv_bwd_data, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perfs));
    bd = chosen_from(perfs, got, limit);
    bd.ms = -1.0f;
  }
  if (bf.algo < 0) {
    cudnnConvolutionBwdFilterAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    GANCU_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        ctx.cudnn, p.x, p.y, p.conv_bwd_filter, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perfs));
    bf = chosen_from(perfs, got, limit);
    bf.ms = -1.0f;
  }
}

std::string describe(const char* name, const Chosen& c) {
  if (c.algo < 0) return "none within the workspace";
  char buf[128];
  if (c.ms >= 0.0f)
    std::snprintf(buf, sizeof(buf), "%s (%.3f ms, %zu B%s)", name, double(c.ms), c.memory,
                  c.math == CUDNN_FMA_MATH ? "" : ", tensor ops");
  else
    std::snprintf(buf, sizeof(buf), "%s (heuristic, %zu B%s)", name, c.memory,
                  c.math == CUDNN_FMA_MATH ? "" : ", tensor ops");
  return buf;
}

// The plan of `d`, created on first use. `measure_ok`: may time the algorithms (plan time).
std::shared_ptr<ConvPlan> get_plan(const Exec& ex, const ConvDims& d, bool measure_ok) {
  CudaContext& ctx = context(ex);
  const bool tf32 = ex.tf32();
  const ConvKey key{d.n, d.h, d.w, d.c, d.k, d.r, d.s, d.stride, d.pad, tf32};
  std::lock_guard<std::mutex> lock(ctx.mutex);
  auto it = ctx.conv_plans.find(key);
  if (it != ctx.conv_plans.end()) return it->second;

  GANCU_CHECK(d.n > 0 && d.c > 0 && d.k > 0 && d.p > 0 && d.q > 0, "convolution with empty dims");
  auto plan = std::make_shared<ConvPlan>();
  create_descriptors(*plan, d, tf32);
  Chosen f, bd, bf;
  const bool measured = measure_ok && !is_capturing(ctx.stream);
  if (measured) measure(ctx, *plan, d, f, bd, bf);
  // At run time, a heuristic pick must fit the workspace the arena already has.
  heuristics(ctx, *plan, measured ? kFindWorkspaceLimit : ex.workspace_bytes(), f, bd, bf);
  plan->name = std::to_string(d.n) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
               std::to_string(d.c) + " * " + std::to_string(d.k) + "x" + std::to_string(d.r) + "x" +
               std::to_string(d.s) + " stride " + std::to_string(d.stride) + " pad " + std::to_string(d.pad);
  // At plan time every pass must have an algorithm; at run time only the passes that are called.
  if (measure_ok && (f.algo < 0 || bd.algo < 0 || bf.algo < 0))
    runtime_error("cuDNN has no algorithm for the convolution ", plan->name, " within ",
                  measured ? kFindWorkspaceLimit : ex.workspace_bytes(), " bytes of workspace");
  // FMA math forbids TF32. cuDNN reports each result's math type and it is applied below; with
  // math=fp32 a result reported as CUDNN_DEFAULT_MATH would let TF32 in on Ampere and later.
  if (!tf32) f.math = bd.math = bf.math = CUDNN_FMA_MATH;
  plan->has_fwd = f.algo >= 0;
  plan->has_bwd_data = bd.algo >= 0;
  plan->has_bwd_filter = bf.algo >= 0;
  plan->fwd = cudnnConvolutionFwdAlgo_t(std::max(f.algo, 0));  // 0 for a missing pass: never run
  plan->bwd_data = cudnnConvolutionBwdDataAlgo_t(std::max(bd.algo, 0));
  plan->bwd_filter = cudnnConvolutionBwdFilterAlgo_t(std::max(bf.algo, 0));
  plan->fwd_ws = f.memory;
  plan->bwd_data_ws = bd.memory;
  plan->bwd_filter_ws = bf.memory;
  GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv_fwd, f.math));
  GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv_bwd_data, bd.math));
  GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv_bwd_filter, bf.math));
  std::fprintf(stderr, "gancu: conv %s%s: fwd %s, bwd_data %s, bwd_filter %s\n", plan->name.c_str(),
               tf32 ? " tf32" : "", describe(fwd_name(f.algo), f).c_str(),
               describe(bwd_data_name(bd.algo), bd).c_str(), describe(bwd_filter_name(bf.algo), bf).c_str());
  ctx.conv_plans.emplace(key, plan);
  return plan;
}

// A pass the plan has no algorithm for (see ConvPlan::has_fwd).
[[noreturn]] void no_algorithm(const Exec& ex, const ConvPlan& p, const char* pass) {
  runtime_error("cuDNN has no ", pass, " algorithm for the convolution ", p.name, " within the ",
                ex.workspace_bytes(), " bytes of workspace planned (a shape first seen after planning)");
}

// The three cuDNN passes on plan descriptors. `beta` 0 overwrites, 1 accumulates.
void run_fwd(const Exec& ex, const ConvPlan& p, const float* in, const float* w, float beta, float* out) {
  if (!p.has_fwd) no_algorithm(ex, p, "forward");
  CudaContext& ctx = context(ex);
  const float one = 1.0f;
  void* ws = ex.require_workspace(p.fwd_ws, "conv2d");
  GANCU_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn, &one, p.x, in, p.w, w, p.conv_fwd, p.fwd, ws, p.fwd_ws,
                                            &beta, p.y, out));
}
void run_bwd_data(const Exec& ex, const ConvPlan& p, const float* w, const float* in_y, float beta,
                  float* out_x) {
  if (!p.has_bwd_data) no_algorithm(ex, p, "backward-data");
  CudaContext& ctx = context(ex);
  const float one = 1.0f;
  void* ws = ex.require_workspace(p.bwd_data_ws, "conv2d");
  GANCU_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &one, p.w, w, p.y, in_y, p.conv_bwd_data,
                                                 p.bwd_data, ws, p.bwd_data_ws, &beta, p.x, out_x));
}
void run_bwd_filter(const Exec& ex, const ConvPlan& p, const float* in_x, const float* in_y, float* dw) {
  if (!p.has_bwd_filter) no_algorithm(ex, p, "backward-filter");
  CudaContext& ctx = context(ex);
  const float one = 1.0f;
  void* ws = ex.require_workspace(p.bwd_filter_ws, "conv2d");
  GANCU_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &one, p.x, in_x, p.y, in_y, p.conv_bwd_filter,
                                                   p.bwd_filter, ws, p.bwd_filter_ws, &one, p.w, dw));
}

}  // namespace

template <class T>
size_t conv_workspace_bytes(const Exec& ex, const ConvDims& d, bool /*transposed: same three passes*/) {
  static_assert(std::is_same_v<T, float>);
  return get_plan(ex, d, true)->max_ws();
}

template <class T>
void conv2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  static_assert(std::is_same_v<T, float>);
  const auto plan = get_plan(ex, d, false);
  run_fwd(ex, *plan, x, w, 0.0f, y);
  bias_act(ex, int64_t(d.n) * d.p * d.q, d.k, b, y, act);
}

template <class T>
void conv2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  static_assert(std::is_same_v<T, float>);
  const auto plan = get_plan(ex, d, false);
  bias_grad_dact(ex, int64_t(d.n) * d.p * d.q, d.k, y, dy, db, act);
  if (dx) run_bwd_data(ex, *plan, w, dy, accumulate_dx ? 1.0f : 0.0f, dx);
  if (dw) run_bwd_filter(ex, *plan, x, dy, dw);
}

template <class T>
void conv_transpose2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                              Activation act) {
  static_assert(std::is_same_v<T, float>);
  const auto plan = get_plan(ex, d, false);
  run_bwd_data(ex, *plan, w, x, 0.0f, y);  // y [n, h, w, c] = conv^T(x [n, p, q, k])
  bias_act(ex, int64_t(d.n) * d.h * d.w, d.c, b, y, act);
}

template <class T>
void conv_transpose2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy,
                               T* dx, bool accumulate_dx, T* dw, T* db, Activation act) {
  static_assert(std::is_same_v<T, float>);
  const auto plan = get_plan(ex, d, false);
  bias_grad_dact(ex, int64_t(d.n) * d.h * d.w, d.c, y, dy, db, act);
  if (dx) run_fwd(ex, *plan, dy, w, accumulate_dx ? 1.0f : 0.0f, dx);  // dx [n, p, q, k] = conv(dy)
  if (dw) run_bwd_filter(ex, *plan, dy, x, dw);                        // dw += corr(dy, x)
}

template size_t conv_workspace_bytes<float>(const Exec&, const ConvDims&, bool);
template void conv2d_forward<float>(const Exec&, const ConvDims&, const float*, const float*, const float*,
                                    float*, Activation);
template void conv2d_backward<float>(const Exec&, const ConvDims&, const float*, const float*, const float*,
                                     float*, float*, bool, float*, float*, Activation);
template void conv_transpose2d_forward<float>(const Exec&, const ConvDims&, const float*, const float*,
                                              const float*, float*, Activation);
template void conv_transpose2d_backward<float>(const Exec&, const ConvDims&, const float*, const float*,
                                               const float*, float*, float*, bool, float*, float*,
                                               Activation);

}  // namespace gancu::cuda
