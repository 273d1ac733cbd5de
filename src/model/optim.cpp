#include "gancu/optim.h"

#include <algorithm>
#include <vector>

#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/ops.h"

namespace gancu {

template <class T>
Optimizer<T>::Optimizer(std::string name, const OptimConfig& cfg, int64_t count)
    : name_(std::move(name)), cfg_(cfg), count_(count) {
  if (cfg.name != "adam" && cfg.name != "sgd" && cfg.name != "rmsprop")
    usage_error(name_, ".name: expected \"adam\", \"sgd\" or \"rmsprop\", got \"", cfg.name, "\"");
}

template <class T>
int64_t Optimizer<T>::state_count() const {
  if (cfg_.name == "adam") return 2 * count_;
  if (cfg_.name == "rmsprop") return count_;
  return cfg_.momentum != 0.0f ? count_ : 0;
}

template <class T>
void Optimizer<T>::plan(ArenaPlan& plan) {
  state_slot_ = plan.add_array<T>(ArenaKind::OptState, name_ + ".state", size_t(state_count()));
  t_slot_ = plan.add_array<int64_t>(ArenaKind::OptState, name_ + ".t", 1);
  constexpr size_t kHyperFloats =
      (std::max({sizeof(AdamHyper), sizeof(SgdHyper), sizeof(RmspropHyper)}) + 3) / 4;
  hyper_slot_ = plan.add_array<float>(ArenaKind::State, name_ + ".hyper", kHyperFloats);
}

template <class T>
void Optimizer<T>::bind(const Arena& arena) {
  state_ = arena.get<T>(state_slot_);
  t_ = arena.get<int64_t>(t_slot_);
  hyper_ = arena.get<float>(hyper_slot_);
}

template <class T>
void Optimizer<T>::upload_hyper(const Exec& ex) {
  if (cfg_.name == "adam") {
    const AdamHyper h{cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay};
    copy_to_device(ex, hyper_, &h, sizeof h);
  } else if (cfg_.name == "rmsprop") {
    const RmspropHyper h{cfg_.lr, cfg_.alpha, cfg_.eps, cfg_.weight_decay};
    copy_to_device(ex, hyper_, &h, sizeof h);
  } else {
    const SgdHyper h{cfg_.lr, cfg_.momentum, cfg_.weight_decay};
    copy_to_device(ex, hyper_, &h, sizeof h);
  }
}

template <class T>
void Optimizer<T>::set_lr(const Exec& ex, float lr) {
  if (!(lr > 0.0f)) usage_error(name_, ".lr: must be positive, got ", lr);
  cfg_.lr = lr;
  upload_hyper(ex);
}

template <class T>
void Optimizer<T>::reset(const Exec& ex) {
  ops::fill<T>(ex, state_count(), state_, T(0));
  const int64_t zero = 0;
  copy_to_device(ex, t_, &zero, sizeof zero);
  upload_hyper(ex);
}

template <class T>
void Optimizer<T>::step(const Exec& ex, T* params, const T* grads) {
  if (cfg_.name == "adam") {
    ops::adam_step<T>(ex, count_, params, grads, state_, state_ + count_,
                      static_cast<const AdamHyper*>(hyper_), t_);
  } else if (cfg_.name == "rmsprop") {
    ops::rmsprop_step<T>(ex, count_, params, grads, state_, static_cast<const RmspropHyper*>(hyper_), t_);
  } else {
    ops::sgd_step<T>(ex, count_, params, grads, cfg_.momentum != 0.0f ? state_ : nullptr,
                     static_cast<const SgdHyper*>(hyper_));
    ops::increment_counter<T>(ex, t_);
  }
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace gancu
