// What the CUDA backend's cache of convolution plans holds (kernels/conv.cu): for tests that must
// see that a plan is shared, which algorithm each pass got and why, and for diagnostics. Read-only;
// empty on the CPU backend and in builds without CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gancu/exec.h"
#include "gancu/op_types.h"

namespace gancu {

// One of cuDNN's three passes of a plan (forward, backward-data, backward-filter).
struct ConvPassReport {
  bool chosen = false;     // an algorithm was looked for (planned, or at its first call)
  bool available = false;  // one was found within the plan's workspace limit (and determinism)
  bool measured = false;   // timed by cuDNN's Find (else its heuristics' first choice)
  bool deterministic = false;
  int algo = -1;  // cuDNN's enum value; -1 when none
  size_t workspace = 0;
};

struct ConvPlanReport {
  ConvDims dims;
  // The key's conditions: see kernels/cuda_context.h (ConvKey).
  bool tf32 = false, deterministic_only = true, measured = false;
  size_t workspace_limit = 0;
  ConvPassReport fwd, bwd_data, bwd_filter;  // cuDNN's passes (a transposed conv reads them the other way)
  uint64_t lookups = 0;                      // calls (planning and ops) that used this plan
};

// The plans of `ex`'s CUDA context, in key order.
std::vector<ConvPlanReport> conv_plan_report(const Exec& ex);

}  // namespace gancu
