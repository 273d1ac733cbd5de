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
  void reset(const Exec& ex);  // zero state
  void step(const Exec& ex, T* params, const T* grads);

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
  Slot state_slot_, t_slot_;
  T* state_ = nullptr;
  int64_t* t_ = nullptr;
};

}  // namespace gancu
