// Optimizers over a network's flat parameter buffer: one op launch per step, state planned into
// the arena (Adam: m, v and the step count t; SGD: the momentum buffer; RMSprop: the running
// mean of squared gradients).
#pragma once

#include <string>

#include "gancu/arena.h"
#include "gancu/exec.h"
#include "gancu/op_types.h"

namespace gancu {

struct OptimConfig {
  std::string name = "adam";  // adam | sgd | rmsprop
  float lr = 2e-4f, beta1 = 0.5f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f, momentum = 0.0f;
  float alpha = 0.99f;  // rmsprop's smoothing constant
};

template <class T>
class Optimizer {
 public:
  Optimizer(std::string name, const OptimConfig& cfg, int64_t count);
  void plan(ArenaPlan& plan);
  void bind(const Arena& arena);
  void reset(const Exec& ex);  // zero state; the hyperparameters to backend memory
  void step(const Exec& ex, T* params, const T* grads);
  // A new learning rate from the next step on. The steps read their hyperparameters from backend
  // memory, so this also changes what a captured CUDA graph does (schedules work with the graph).
  void set_lr(const Exec& ex, float lr);

  // Checkpointed state: [m | v] for Adam, [momentum] for SGD, [square average] for RMSprop, and
  // the step count.
  T* state() const { return state_; }
  int64_t state_count() const;
  int64_t* step_count() const { return t_; }
  const std::string& name() const { return name_; }
  const OptimConfig& config() const { return cfg_; }

 private:
  std::string name_;
  OptimConfig cfg_;
  int64_t count_;
  void upload_hyper(const Exec& ex);

  Slot state_slot_, t_slot_, hyper_slot_;
  T* state_ = nullptr;
  int64_t* t_ = nullptr;
  void* hyper_ = nullptr;  // the AdamHyper, SgdHyper or RmspropHyper of cfg_, in backend memory
};

}  // namespace gancu
