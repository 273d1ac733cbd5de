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
// so a plan (descriptors + the algorithm of each pass) serves a conv and a transposed conv of the
// same dims.
//
// Algorithm choice. conv_workspace_bytes() (called when the model is planned, before the loop)
// chooses the passes the layer will call (ConvPasses: a layer whose input gradient nobody asks
// for, such as G's first, never runs its data-gradient pass, and a pass that is never called must
// not stop a run for want of an algorithm): it measures every algorithm of each such pass with
// cudnnFind*AlgorithmEx on temporary buffers, picks the fastest that fits, logs the choice once
// per shape and pass to stderr, and returns the largest workspace among them. Only deterministic
// algorithms are picked unless the Exec allows others (run.deterministic = false); a pass without
// one is an error naming the shape and the setting. Where measuring fails, cuDNN's heuristics
// (cudnnGet*_v7) choose within the same limit. At run time an op uses that plan when it has the
// pass within the Exec's workspace; otherwise (a shape first seen at run time, such as sampling
// with a smaller batch, possibly inside a graph capture; a pass planning did not expect) cuDNN's
// heuristics choose at the pass's first call, limited to the workspace the Exec has.
//
// The cache key (ConvKey) is what a choice depends on: the dims (batch included), TF32, whether
// only deterministic algorithms may be chosen, the workspace limit of the choice, and whether it
// was measured. So a heuristic choice made for a small workspace is never reused by an Exec with
// another, and never shadows a measured plan. Descriptors are created once per plan.
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
#include <array>
#include <cstdio>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/conv_plans.h"
#include "gancu/ops.h"

namespace gancu {
namespace cuda {

// One of cuDNN's three passes of a plan: the algorithm chosen for it, if any.
struct ConvPass {
  bool chosen = false;     // an algorithm was looked for
  bool available = false;  // and found
  bool measured = false;   // by timing (cudnnFind*), else cuDNN's heuristic ranking
  bool deterministic = false;
  bool refused_nondeterministic = false;  // none found, but a nondeterministic one would have fit
  int algo = -1;
  size_t ws = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr;                                 // [n, c, h, w] in NHWC
  cudnnTensorDescriptor_t y = nullptr;                                 // [n, k, p, q] in NHWC
  cudnnFilterDescriptor_t w = nullptr;                                 // [k, c, r, s] in NHWC = KRSC
  cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};  // one per pass (its math type)
  ConvPass pass[3];                                                    // indexed by PassId below
  ConvDims dims;
  std::string name;      // for messages
  uint64_t lookups = 0;  // calls that used this plan (conv_plan_report)
  ~ConvPlan() {
    // Host-side descriptor frees; statuses dropped in a destructor.
    if (x) (void)cudnnDestroyTensorDescriptor(x);
    if (y) (void)cudnnDestroyTensorDescriptor(y);
    if (w) (void)cudnnDestroyFilterDescriptor(w);
    for (cudnnConvolutionDescriptor_t c : conv)
      if (c) (void)cudnnDestroyConvolutionDescriptor(c);
  }
};

namespace {

enum PassId { kFwd = 0, kBwdData = 1, kBwdFilter = 2 };
const char* const kPassNames[3] = {"forward", "backward-data", "backward-filter"};
const char* const kPassShort[3] = {"fwd", "bwd_data", "bwd_filter"};

constexpr size_t kFindWorkspaceLimit = size_t(64) << 20;  // what measuring may offer an algorithm

const char* algo_name(int pass, int a) {
  static const char* fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
                              "WINOGRAD",      "WINOGRAD_NONFUSED"};
  static const char* bwd_data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* bwd_filter[] = {"ALGO_0",    "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                     "FFT_TILING"};
  if (pass == kFwd) return a >= 0 && a < 8 ? fwd[a] : "?";
  if (pass == kBwdData) return a >= 0 && a < 6 ? bwd_data[a] : "?";
  return a >= 0 && a < 7 ? bwd_filter[a] : "?";
}

// The cuDNN passes that a layer's passes call. A transposed convolution's forward is cuDNN's
// backward-data and its input gradient cuDNN's forward (see the table at the top).
using PassSet = std::array<bool, 3>;
PassSet cudnn_passes(ConvPasses p, bool transposed) {
  PassSet need{};
  need[transposed ? kBwdData : kFwd] = p.forward;
  need[transposed ? kFwd : kBwdData] = p.input_grad;
  need[kBwdFilter] = p.filter_grad;
  return need;
}

// The chosen entry of a perf list (sorted best first by cuDNN): the first that succeeded, fits
// `limit` and, when `deterministic_only`, is deterministic.
template <class Perf>
ConvPass chosen_from(const Perf* perfs, int count, size_t limit, bool deterministic_only, bool measured) {
  ConvPass c;
  c.chosen = true;
  for (int i = 0; i < count; ++i) {
    if (perfs[i].status != CUDNN_STATUS_SUCCESS || perfs[i].memory > limit) continue;
    const bool det = perfs[i].determinism == CUDNN_DETERMINISTIC;
    if (deterministic_only && !det) {
      c.refused_nondeterministic = true;
      continue;
    }
    c.available = true;
    c.measured = measured;
    c.deterministic = det;
    c.algo = int(perfs[i].algo);
    c.ws = perfs[i].memory;
    c.math = perfs[i].mathType;
    return c;
  }
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
      if (device_malloc(p, bytes) != cudaSuccess) {
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
  for (cudnnConvolutionDescriptor_t& cd : p.conv) {
    GANCU_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd));
    GANCU_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cd, d.pad_h, d.pad_w, d.stride, d.stride, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  int n = 0, k = 0, pp = 0, q = 0;
  GANCU_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.conv[kFwd], p.x, p.w, &n, &k, &pp, &q));
  GANCU_CHECK(n == d.n && k == d.k && pp == d.p && q == d.q, "cuDNN's output dims ", n, "x", pp, "x", q, "x",
              k, " differ from gancu's ", d.n, "x", d.p, "x", d.q, "x", d.k);
}

// Times the algorithms of one pass on the temporary buffers. Not chosen where measuring failed.
ConvPass measure(CudaContext& ctx, const ConvPlan& p, int pass, const TempBuffers& t,
                 bool deterministic_only) {
  int got = 0;
  cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED;
  ConvPass c;
  if (pass == kFwd) {
    cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    st = cudnnFindConvolutionForwardAlgorithmEx(ctx.cudnn, p.x, t.x, p.w, t.w, p.conv[kFwd], p.y, t.y,
                                                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perfs, t.ws,
                                                t.ws_bytes);
    if (st == CUDNN_STATUS_SUCCESS) c = chosen_from(perfs, got, t.ws_bytes, deterministic_only, true);
  } else if (pass == kBwdData) {
    cudnnConvolutionBwdDataAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    st = cudnnFindConvolutionBackwardDataAlgorithmEx(ctx.cudnn, p.w, t.w, p.y, t.y, p.conv[kBwdData], p.x,
                                                     t.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perfs,
                                                     t.ws, t.ws_bytes);
    if (st == CUDNN_STATUS_SUCCESS) c = chosen_from(perfs, got, t.ws_bytes, deterministic_only, true);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    st = cudnnFindConvolutionBackwardFilterAlgorithmEx(ctx.cudnn, p.x, t.x, p.y, t.y, p.conv[kBwdFilter], p.w,
                                                       t.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got,
                                                       perfs, t.ws, t.ws_bytes);
    if (st == CUDNN_STATUS_SUCCESS) c = chosen_from(perfs, got, t.ws_bytes, deterministic_only, true);
  }
  // A failed Find may leave a CUDA error that a later check would misplace.
  if (st != CUDNN_STATUS_SUCCESS) (void)cudaGetLastError();
  return c;
}

// cuDNN's heuristic ranking of one pass, limited to `limit` bytes of workspace.
ConvPass heuristic(CudaContext& ctx, const ConvPlan& p, int pass, size_t limit, bool deterministic_only) {
  int got = 0;
  if (pass == kFwd) {
    cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    GANCU_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, p.x, p.w, p.conv[kFwd], p.y,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perfs));
    return chosen_from(perfs, got, limit, deterministic_only, false);
  }
  if (pass == kBwdData) {
    cudnnConvolutionBwdDataAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    GANCU_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        ctx.cudnn, p.w, p.y, p.conv[kBwdData], p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perfs));
    return chosen_from(perfs, got, limit, deterministic_only, false);
  }
  cudnnConvolutionBwdFilterAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  GANCU_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      ctx.cudnn, p.x, p.y, p.conv[kBwdFilter], p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perfs));
  return chosen_from(perfs, got, limit, deterministic_only, false);
}

std::string describe(int pass, const ConvPass& c) {
  if (!c.available)
    return c.refused_nondeterministic ? "none deterministic within the workspace"
                                      : "none within the workspace";
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s (%s, %zu B%s%s)", algo_name(pass, c.algo),
                c.measured ? "measured" : "heuristic", c.ws, c.math == CUDNN_FMA_MATH ? "" : ", tensor ops",
                c.deterministic ? "" : ", nondeterministic");
  return buf;
}

ConvKey key_of(const Exec& ex, const ConvDims& d, size_t limit, bool measured) {
  return ConvKey{d.n,   d.h,      d.w,     d.c,     d.k,       d.r,
                 d.s,   d.stride, d.pad_h, d.pad_w, ex.tf32(), ex.deterministic(),
                 limit, measured};
}

// The plan of `key`, created (descriptors only, no pass chosen) on first use. Under ctx.mutex.
ConvPlan& plan_of(CudaContext& ctx, const ConvKey& key, const ConvDims& d) {
  auto it = ctx.conv_plans.find(key);
  if (it != ctx.conv_plans.end()) return *it->second;
  GANCU_CHECK(d.n > 0 && d.c > 0 && d.k > 0 && d.p > 0 && d.q > 0, "convolution with empty dims");
  auto plan = std::make_shared<ConvPlan>();
  create_descriptors(*plan, d, key.tf32);
  plan->dims = d;
  plan->name = std::to_string(d.n) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
               std::to_string(d.c) + " * " + std::to_string(d.k) + "x" + std::to_string(d.r) + "x" +
               std::to_string(d.s) + " stride " + std::to_string(d.stride) + " pad " +
               std::to_string(d.pad_h) + (d.pad_w == d.pad_h ? "" : "x" + std::to_string(d.pad_w));
  return *ctx.conv_plans.emplace(key, plan).first->second;
}

// Chooses the passes in `need` that `p` has not chosen yet: measured (the plan's workspace limit
// is what measuring may offer) or by heuristics within `limit`. Logs each choice once to stderr.
void choose(CudaContext& ctx, ConvPlan& p, const ConvKey& key, const PassSet& need) {
  PassSet todo{};
  bool any = false;
  for (int i = 0; i < 3; ++i) {
    todo[size_t(i)] = need[size_t(i)] && !p.pass[i].chosen;
    any = any || todo[size_t(i)];
  }
  if (!any) return;
  {
    TempBuffers t;
    const bool can_measure = key.measured && t.allocate(p.dims, key.workspace_limit, ctx.stream);
    for (int i = 0; i < 3; ++i) {
      if (!todo[size_t(i)]) continue;
      if (can_measure) p.pass[i] = measure(ctx, p, i, t, key.deterministic);
      // Where measuring failed or found nothing that fits, cuDNN's heuristics within the same limit.
      if (!p.pass[i].available) {
        const bool refused = p.pass[i].refused_nondeterministic;
        p.pass[i] = heuristic(ctx, p, i, key.workspace_limit, key.deterministic);
        p.pass[i].refused_nondeterministic = p.pass[i].refused_nondeterministic || refused;
      }
    }
    if (can_measure) GANCU_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  }
  std::string log;
  for (int i = 0; i < 3; ++i) {
    if (!todo[size_t(i)]) continue;
    ConvPass& c = p.pass[i];
    // FMA math forbids TF32. cuDNN reports each result's math type and it is applied here; with
    // math=fp32 a result reported as CUDNN_DEFAULT_MATH would let TF32 in on Ampere and later.
    if (!key.tf32) c.math = CUDNN_FMA_MATH;
    if (c.available) GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv[i], c.math));
    log += std::string(log.empty() ? "" : ", ") + kPassShort[i] + " " + describe(i, c);
  }
  std::fprintf(stderr, "gancu: conv %s%s%s: %s\n", p.name.c_str(), key.tf32 ? " tf32" : "",
               key.deterministic ? "" : " (nondeterministic allowed)", log.c_str());
}

[[noreturn]] void no_algorithm(const ConvPlan& p, const ConvKey& key, int pass, const char* when) {
  runtime_error("cuDNN has no ", kPassNames[pass], " algorithm for the convolution ", p.name, " within ",
                key.workspace_limit, " bytes of workspace", when,
                p.pass[pass].refused_nondeterministic
                    ? " that is deterministic (run.deterministic = false allows the nondeterministic ones)"
                    : "");
}

// The plan an op's call of `pass` runs: the one measured when the model was planned, when it has
// this pass within the Exec's workspace; otherwise cuDNN's heuristics within that workspace, chosen
// at the pass's first call (a shape first seen at run time, such as sampling with a smaller batch,
// possibly inside a graph capture; or a pass the planning did not expect).
std::shared_ptr<ConvPlan> plan_for_call(const Exec& ex, const ConvDims& d, int pass) {
  CudaContext& ctx = context(ex);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  const auto planned = ctx.conv_plans.find(key_of(ex, d, kFindWorkspaceLimit, true));
  if (planned != ctx.conv_plans.end()) {
    const ConvPass& c = planned->second->pass[pass];
    if (c.available && c.ws <= ex.workspace_bytes()) {
      ++planned->second->lookups;
      return planned->second;
    }
  }
  const ConvKey key = key_of(ex, d, ex.workspace_bytes(), false);
  ConvPlan& p = plan_of(ctx, key, d);
  ++p.lookups;
  PassSet need{};
  need[size_t(pass)] = true;
  choose(ctx, p, key, need);
  if (!p.pass[pass].available)
    no_algorithm(p, key, pass, " (planned for the Exec's workspace at its first call)");
  return ctx.conv_plans.at(key);
}

// The cuDNN passes on plan descriptors. `beta` 0 overwrites, 1 accumulates.
void run_fwd(const Exec& ex, const ConvDims& d, const float* in, const float* w, float beta, float* out) {
  const auto p = plan_for_call(ex, d, kFwd);
  const ConvPass& c = p->pass[kFwd];
  const float one = 1.0f;
  void* ws = ex.require_workspace(c.ws, "conv2d");
  GANCU_CUDNN_CHECK(cudnnConvolutionForward(context(ex).cudnn, &one, p->x, in, p->w, w, p->conv[kFwd],
                                            cudnnConvolutionFwdAlgo_t(c.algo), ws, c.ws, &beta, p->y, out));
}
void run_bwd_data(const Exec& ex, const ConvDims& d, const float* w, const float* in_y, float beta,
                  float* out_x) {
  const auto p = plan_for_call(ex, d, kBwdData);
  const ConvPass& c = p->pass[kBwdData];
  const float one = 1.0f;
  void* ws = ex.require_workspace(c.ws, "conv2d");
  GANCU_CUDNN_CHECK(cudnnConvolutionBackwardData(context(ex).cudnn, &one, p->w, w, p->y, in_y,
                                                 p->conv[kBwdData], cudnnConvolutionBwdDataAlgo_t(c.algo), ws,
                                                 c.ws, &beta, p->x, out_x));
}
void run_bwd_filter(const Exec& ex, const ConvDims& d, const float* in_x, const float* in_y, float* dw) {
  const auto p = plan_for_call(ex, d, kBwdFilter);
  const ConvPass& c = p->pass[kBwdFilter];
  const float one = 1.0f;
  void* ws = ex.require_workspace(c.ws, "conv2d");
  GANCU_CUDNN_CHECK(
      cudnnConvolutionBackwardFilter(context(ex).cudnn, &one, p->x, in_x, p->y, in_y, p->conv[kBwdFilter],
                                     cudnnConvolutionBwdFilterAlgo_t(c.algo), ws, c.ws, &one, p->w, dw));
}

}  // namespace

// Plan time: the algorithms of the passes the layer calls, measured (or, inside a graph capture,
// where nothing may be measured, by heuristics within the Exec's workspace); every one of them must
// exist. Returns the largest workspace among them.
template <class T>
size_t conv_workspace_bytes(const Exec& ex, const ConvDims& d, bool transposed, ConvPasses passes) {
  static_assert(std::is_same_v<T, float>);
  CudaContext& ctx = context(ex);
  const PassSet need = cudnn_passes(passes, transposed);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  const bool measured = !is_capturing(ctx.stream);
  const ConvKey key = key_of(ex, d, measured ? kFindWorkspaceLimit : ex.workspace_bytes(), measured);
  ConvPlan& p = plan_of(ctx, key, d);
  ++p.lookups;
  choose(ctx, p, key, need);
  size_t ws = 0;
  for (int i = 0; i < 3; ++i) {
    if (!need[size_t(i)]) continue;
    if (!p.pass[i].available) no_algorithm(p, key, i, transposed ? " (a transposed convolution's)" : "");
    ws = std::max(ws, p.pass[i].ws);
  }
  return ws;
}

template <class T>
void conv2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  static_assert(std::is_same_v<T, float>);
  run_fwd(ex, d, x, w, 0.0f, y);
  bias_act(ex, int64_t(d.n) * d.p * d.q, d.k, b, y, act);
}

template <class T>
void conv2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  static_assert(std::is_same_v<T, float>);
  bias_grad_dact(ex, int64_t(d.n) * d.p * d.q, d.k, y, dy, db, act);
  if (dx) run_bwd_data(ex, d, w, dy, accumulate_dx ? 1.0f : 0.0f, dx);
  if (dw) run_bwd_filter(ex, d, x, dy, dw);
}

template <class T>
void conv_transpose2d_forward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* b, T* y,
                              Activation act) {
  static_assert(std::is_same_v<T, float>);
  run_bwd_data(ex, d, w, x, 0.0f, y);  // y [n, h, w, c] = conv^T(x [n, p, q, k])
  bias_act(ex, int64_t(d.n) * d.h * d.w, d.c, b, y, act);
}

template <class T>
void conv_transpose2d_backward(const Exec& ex, const ConvDims& d, const T* x, const T* w, const T* y, T* dy,
                               T* dx, bool accumulate_dx, T* dw, T* db, Activation act) {
  static_assert(std::is_same_v<T, float>);
  bias_grad_dact(ex, int64_t(d.n) * d.h * d.w, d.c, y, dy, db, act);
  if (dx) run_fwd(ex, d, dy, w, accumulate_dx ? 1.0f : 0.0f, dx);  // dx [n, p, q, k] = conv(dy)
  if (dw) run_bwd_filter(ex, d, dy, x, dw);                        // dw += corr(dy, x)
}

template size_t conv_workspace_bytes<float>(const Exec&, const ConvDims&, bool, ConvPasses);
template void conv2d_forward<float>(const Exec&, const ConvDims&, const float*, const float*, const float*,
                                    float*, Activation);
template void conv2d_backward<float>(const Exec&, const ConvDims&, const float*, const float*, const float*,
                                     float*, float*, bool, float*, float*, Activation);
template void conv_transpose2d_forward<float>(const Exec&, const ConvDims&, const float*, const float*,
                                              const float*, float*, Activation);
template void conv_transpose2d_backward<float>(const Exec&, const ConvDims&, const float*, const float*,
                                               const float*, float*, float*, bool, float*, float*,
                                               Activation);

}  // namespace cuda

std::vector<ConvPlanReport> conv_plan_report(const Exec& ex) {
  std::vector<ConvPlanReport> out;
  if (!ex.on_cuda()) return out;
  CudaContext& ctx = cuda::context(ex);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  for (const auto& [key, plan] : ctx.conv_plans) {
    ConvPlanReport r;
    r.dims = plan->dims;
    r.tf32 = key.tf32;
    r.deterministic_only = key.deterministic;
    r.measured = key.measured;
    r.workspace_limit = key.workspace_limit;
    ConvPassReport* passes[3] = {&r.fwd, &r.bwd_data, &r.bwd_filter};
    for (int i = 0; i < 3; ++i) {
      const cuda::ConvPass& c = plan->pass[i];
      *passes[i] = ConvPassReport{c.chosen, c.available, c.measured, c.deterministic, c.algo, c.ws};
    }
    r.lookups = plan->lookups;
    out.push_back(r);
  }
  return out;
}

}  // namespace gancu
