// StepGraph without CUDA: the body runs as is. The CUDA implementation is kernels/cuda_graph.cu.
#include "gancu/graph.h"

#if !GANCU_HAVE_CUDA
namespace gancu {

struct StepGraph::Impl {};

StepGraph::StepGraph(const Exec& ex, bool enabled) : ex_(&ex), enabled_(enabled) {}
StepGraph::~StepGraph() = default;
void StepGraph::run(const std::function<void()>& body) {
  body();
}
void StepGraph::reset() {}
bool StepGraph::captured() const {
  return false;
}

}  // namespace gancu
#endif
