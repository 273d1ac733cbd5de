// The training iteration as a CUDA graph: captured on its first run, replayed afterwards.
//
// Everything that changes from one iteration to the next (the step counter, hence the noise and
// the batch; the optimizer's step count) lives in device memory, so the same executable graph
// serves every step. On the CPU, or when capture is disabled (`--set cuda_graph=false`, for
// debugging), run() simply calls the body.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "gancu/exec.h"

namespace gancu {

class StepGraph {
 public:
  StepGraph(const Exec& ex, bool enabled);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Runs one iteration: the body itself (CPU, disabled, or first call, during which it is
  // captured) or a replay of the captured graph.
  void run(const std::function<void()>& body);
  // Forgets the captured graph (after anything the body reads from the host changed).
  void reset();
  bool captured() const;

 private:
  struct Impl;
  const Exec* ex_;
  bool enabled_;
  std::unique_ptr<Impl> impl_;
};

// One StepGraph per variant of the iteration. An iteration's host-side shape can differ from step
// to step (Gan::penalty_steps: which D steps run a lazy penalty); each variant is captured once
// and replayed whenever it comes round. Most runs have a single variant.
class StepGraphs {
 public:
  StepGraphs(const Exec& ex, bool enabled) : ex_(&ex), enabled_(enabled) {}
  void run(uint32_t variant, const std::function<void()>& body) {
    auto& g = graphs_[variant];
    if (!g) g = std::make_unique<StepGraph>(*ex_, enabled_);
    g->run(body);
  }

 private:
  const Exec* ex_;
  bool enabled_;
  std::map<uint32_t, std::unique_ptr<StepGraph>> graphs_;
};

}  // namespace gancu
