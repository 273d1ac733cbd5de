// What every layer shares: one input unless it says otherwise, and no tangent pass unless it
// implements one (every kind of layer does; the defaults name the layer when one is missing).
#include "gancu/check.h"
#include "gancu/layers.h"

namespace gancu {

template <class T>
Shape Layer<T>::configure_inputs(const std::vector<Shape>& in) {
  GANCU_CHECK(in.size() == 1, describe(), " reads one input, got ", in.size());
  return configure(in[0]);
}

template <class T>
void Layer<T>::jvp(const Exec&, const LayerIO<T>&) const {
  GANCU_CHECK(false, describe(), " has no tangent pass");
}

template <class T>
void Layer<T>::jvp_backward(const Exec&, const LayerIO<T>&) const {
  GANCU_CHECK(false, describe(), " has no tangent pass");
}

template class Layer<float>;
template class Layer<double>;

}  // namespace gancu
