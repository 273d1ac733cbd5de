// Reshape and Flatten: they only relabel a buffer (NHWC order throughout), so the network lets
// their output share their input's memory and skips them at run time.
#include "gancu/check.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class RelabelLayer final : public Layer<T> {
 public:
  RelabelLayer(Shape target, std::string where) : target_(target), where_(std::move(where)) {}
  Shape configure(const Shape& in) override {
    Shape out = target_.c == 0 ? Shape::features(in.n, int(in.per_sample())) : target_.with_batch(in.n);
    if (out.per_sample() != in.per_sample())
      usage_error(where_, ": cannot reshape ", in.per_sample(), " values per sample (", in.str(), ") to ",
                  out.h, "x", out.w, "x", out.c);
    in_ = in;
    out_ = out;
    return out;
  }
  std::string describe() const override {
    return target_.c == 0 ? std::string("flatten")
                          : detail::concat("reshape ", out_.h, "x", out_.w, "x", out_.c);
  }
  bool aliases_input() const override { return true; }
  void forward(const Exec&, const LayerIO<T>&) const override {}
  void backward(const Exec&, const LayerIO<T>&) const override {}

 private:
  Shape target_;  // c == 0: flatten
  std::string where_;
  Shape in_, out_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_reshape(const LayerSpec& spec, const std::string& where) {
  return std::make_unique<RelabelLayer<T>>(
      Shape::image(0, spec.get_int("h", where), spec.get_int("w", where), spec.get_int("c", where)), where);
}
GANCU_INSTANTIATE_LAYER(make_reshape, const LayerSpec&, const std::string&)

template <class T>
std::unique_ptr<Layer<T>> make_flatten() {
  return std::make_unique<RelabelLayer<T>>(Shape{0, 1, 1, 0}, "flatten");
}
GANCU_INSTANTIATE_LAYER(make_flatten)

}  // namespace gancu
