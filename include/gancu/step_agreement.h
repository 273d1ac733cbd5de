// Does one training iteration on one backend give what the CPU reference gives? `gancu bench`
// asks before it reports a time for the CUDA backend: a fast wrong kernel must not make a number.
#pragma once

#include <string>

#include "gancu/config.h"
#include "gancu/exec.h"

namespace gancu {

struct StepAgreement {
  // ||update_test - update_ref|| / ||update_ref|| over each network's parameters, after one SGD
  // step from the same initialization and the same batch (SGD: Adam's first step is about
  // lr * sign(g), which would hide most gradient errors).
  double rel_err_g = 0, rel_err_d = 0;
  bool finite = true;  // the tested backend's losses and parameters are finite
  double worst() const { return rel_err_g > rel_err_d ? rel_err_g : rel_err_d; }
};

// One SGD step of `cfg` (its networks and loss; synthetic images at `batch`) on `test` and on
// `ref`, compared.
StepAgreement compare_one_step(const Config& cfg, int batch, Exec& test, Exec& ref);

// The bound for compare_one_step's error: fp32 arithmetic summed in different orders (cuBLAS,
// cuDNN and the CPU's blocked loops) agrees to about 1e-5 relative per tensor over a step; TF32
// tensor cores round inputs to 10 bits of mantissa.
double step_agreement_bound(const std::string& math);

}  // namespace gancu
