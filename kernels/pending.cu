// TEMPORARY (stage 1 of the new ops): the CUDA entry points of the ops whose kernels are not
// written yet, so that the CUDA build links. Each throws a RuntimeError naming the op; the CPU
// backend has them all. This file goes away when the kernels land.
#include <type_traits>

#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {
namespace {
[[noreturn]] void pending(const char* op) {
  runtime_error("the CUDA kernel of ", op, " is not written yet; use --backend cpu");
}
}  // namespace

template <class T>
void l1_reconstruction_loss(const Exec&, int64_t, int64_t, const T*, const T*, float, const T*, T*, T*, bool,
                            T*, T*) {
  pending("l1_reconstruction_loss");
}
template <class T>
void began_update(const Exec&, T*, const T*, const T*, float, float, T*) {
  pending("began_update");
}
template <class T>
void interpolate_samples(const Exec&, int64_t, int64_t, const T*, const T*, T*, T*, uint64_t, uint32_t,
                         const int64_t*) {
  pending("interpolate_samples");
}
template <class T>
void perturb_samples(const Exec&, int64_t, int64_t, const T*, float, T*, T*, T*, uint64_t, uint32_t,
                     const int64_t*) {
  pending("perturb_samples");
}
template <class T>
void gradient_penalty(const Exec&, PenaltyKind, int64_t, int64_t, const T*, float, T*, T*, T*) {
  pending("gradient_penalty");
}
template <class T>
void activation_second_order(const Exec&, int64_t, const T*, const T*, const T*, const T*, T*, Activation) {
  pending("activation_second_order");
}
template <class T>
void rmsprop_step(const Exec&, int64_t, T*, const T*, T*, const RmspropHyper&, int64_t*) {
  pending("rmsprop_step");
}
template <class T>
void clamp_values(const Exec&, int64_t, T*, float, float) {
  pending("clamp_values");
}
template <class T>
void maxpool2d_jvp(const Exec&, const PoolDims&, const T*, const T*, const T*, T*) {
  pending("maxpool2d_jvp");
}
template <class T>
void layernorm_forward(const Exec&, const LayerNormDims&, const T*, const T*, const T*, T*, T*, T*,
                       Activation) {
  pending("layernorm_forward");
}
template <class T>
void layernorm_backward(const Exec&, const LayerNormDims&, const T*, const T*, const T*, const T*, const T*,
                        T*, T*, bool, T*, T*, Activation) {
  pending("layernorm_backward");
}
template <class T>
void layernorm_jvp(const Exec&, const LayerNormDims&, const T*, const T*, const T*, const T*, const T*,
                   const T*, T*, Activation) {
  pending("layernorm_jvp");
}
template <class T>
void layernorm_jvp_backward(const Exec&, const LayerNormDims&, const T*, const T*, const T*, const T*,
                            const T*, const T*, const T*, T*, const T*, T*, bool, T*, bool, T*, T*,
                            Activation) {
  pending("layernorm_jvp_backward");
}
template <class T>
void concat_forward(const Exec&, const ConcatPart&, const T*, T*) {
  pending("concat_forward");
}
template <class T>
void concat_backward(const Exec&, const ConcatPart&, const T*, T*, bool) {
  pending("concat_backward");
}
template <class T>
void add(const Exec&, int64_t, const T*, const T*, T*) {
  pending("add");
}

#define F float
template void l1_reconstruction_loss<F>(const Exec&, int64_t, int64_t, const F*, const F*, float, const F*,
                                        F*, F*, bool, F*, F*);
template void began_update<F>(const Exec&, F*, const F*, const F*, float, float, F*);
template void interpolate_samples<F>(const Exec&, int64_t, int64_t, const F*, const F*, F*, F*, uint64_t,
                                     uint32_t, const int64_t*);
template void perturb_samples<F>(const Exec&, int64_t, int64_t, const F*, float, F*, F*, F*, uint64_t,
                                 uint32_t, const int64_t*);
template void gradient_penalty<F>(const Exec&, PenaltyKind, int64_t, int64_t, const F*, float, F*, F*, F*);
template void activation_second_order<F>(const Exec&, int64_t, const F*, const F*, const F*, const F*, F*,
                                         Activation);
template void rmsprop_step<F>(const Exec&, int64_t, F*, const F*, F*, const RmspropHyper&, int64_t*);
template void clamp_values<F>(const Exec&, int64_t, F*, float, float);
template void maxpool2d_jvp<F>(const Exec&, const PoolDims&, const F*, const F*, const F*, F*);
template void layernorm_forward<F>(const Exec&, const LayerNormDims&, const F*, const F*, const F*, F*, F*,
                                   F*, Activation);
template void layernorm_backward<F>(const Exec&, const LayerNormDims&, const F*, const F*, const F*, const F*,
                                    const F*, F*, F*, bool, F*, F*, Activation);
template void layernorm_jvp<F>(const Exec&, const LayerNormDims&, const F*, const F*, const F*, const F*,
                               const F*, const F*, F*, Activation);
template void layernorm_jvp_backward<F>(const Exec&, const LayerNormDims&, const F*, const F*, const F*,
                                        const F*, const F*, const F*, const F*, F*, const F*, F*, bool, F*,
                                        bool, F*, F*, Activation);
template void concat_forward<F>(const Exec&, const ConcatPart&, const F*, F*);
template void concat_backward<F>(const Exec&, const ConcatPart&, const F*, F*, bool);
template void add<F>(const Exec&, int64_t, const F*, const F*, F*);
#undef F

}  // namespace gancu::cuda
