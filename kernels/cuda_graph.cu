// StepGraph on CUDA: the training iteration captured once as a CUDA graph and replayed.
//
// run(): the first call runs the body directly (a warm-up: every kernel, cuBLAS/cuBLASLt/cuDNN
// call and algorithm plan of the iteration is then initialized and loaded outside any capture,
// as PyTorch's graph recipe does); the second call (and the first after reset()) captures the
// body on the Exec's stream and launches the captured graph; later calls launch the executable
// graph. Every call therefore executes the iteration exactly once. Capture uses thread-local
// mode: a cudaMalloc or synchronization from this thread during capture is an error, which is
// how an allocation sneaking into the loop is caught. When the graph is captured again after
// reset(), the existing executable graph is updated in place (cudaGraphExecUpdate) when the
// topology allows, re-instantiated otherwise. With enabled=false the body runs directly,
// uncaptured, every time.
//
// Limits: the body must enqueue work on the Exec's stream only (no other stream joins the
// capture); whatever the body reads from host memory is frozen into the graph at capture time,
// so a change of such values needs reset().
#include <cuda_runtime.h>

#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/graph.h"

namespace gancu {

struct StepGraph::Impl {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool warmed_up = false;
  bool need_capture = true;

  void destroy_graph() {
    if (graph) GANCU_CUDA_CHECK(cudaGraphDestroy(graph));
    graph = nullptr;
  }
};

namespace {
// Ends a capture that the body left by throwing, so that the stream is usable again. The
// original exception is what the caller sees; the statuses here are deliberately dropped (the
// capture was invalidated, so EndCapture reports an error by design).
class CaptureGuard {
 public:
  explicit CaptureGuard(cudaStream_t s) : stream_(s) {}
  ~CaptureGuard() {
    if (!active_) return;
    cudaGraph_t partial = nullptr;
    (void)cudaStreamEndCapture(stream_, &partial);
    if (partial) (void)cudaGraphDestroy(partial);
    (void)cudaGetLastError();
  }
  void dismiss() { active_ = false; }

 private:
  cudaStream_t stream_;
  bool active_ = true;
};
}  // namespace

StepGraph::StepGraph(const Exec& ex, bool enabled)
    : ex_(&ex), enabled_(enabled && ex.on_cuda()), impl_(std::make_unique<Impl>()) {}

StepGraph::~StepGraph() {
  if (!impl_) return;
  if (impl_->exec) (void)cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) (void)cudaGraphDestroy(impl_->graph);
}

void StepGraph::run(const std::function<void()>& body) {
  if (!enabled_) {
    body();
    return;
  }
  cudaStream_t stream = cuda::stream_of(*ex_);
  if (!impl_->warmed_up) {
    body();
    impl_->warmed_up = true;
    return;
  }
  if (impl_->need_capture) {
    impl_->destroy_graph();
    GANCU_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    {
      CaptureGuard guard(stream);
      body();
      guard.dismiss();
    }
    GANCU_CUDA_CHECK(cudaStreamEndCapture(stream, &impl_->graph));
    bool updated = false;
    if (impl_->exec) {
      cudaGraphExecUpdateResultInfo info{};
      const cudaError_t e = cudaGraphExecUpdate(impl_->exec, impl_->graph, &info);
      if (e == cudaSuccess) {
        updated = true;
      } else {
        (void)cudaGetLastError();  // a topology change: instantiate afresh below
        GANCU_CUDA_CHECK(cudaGraphExecDestroy(impl_->exec));
        impl_->exec = nullptr;
      }
    }
    if (!updated) GANCU_CUDA_CHECK(cudaGraphInstantiate(&impl_->exec, impl_->graph, 0));
    impl_->need_capture = false;
  }
  GANCU_CUDA_CHECK(cudaGraphLaunch(impl_->exec, stream));
}

void StepGraph::reset() {
  if (!impl_) return;
  impl_->destroy_graph();
  impl_->need_capture = true;  // the executable graph is kept, to be updated by the next capture
}

bool StepGraph::captured() const {
  return impl_ && impl_->exec && !impl_->need_capture;
}

}  // namespace gancu
