// Minibatch standard deviation (`mbstd`, Karras et al. 2018): appends one channel (or feature)
// holding the mean over all features of their standard deviation over the batch, so that a
// discriminator can see a batch with too little variety. Karras et al. take the statistic over
// groups of 4 samples; gancu takes it over the whole batch (one group). Fused into one op pair
// (ops.h, mbstd_forward / mbstd_backward); no parameters.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class MinibatchStdLayer final : public Layer<T> {
 public:
  explicit MinibatchStdLayer(float eps) : eps_(eps) {}

  Shape configure(const Shape& in) override {
    in_ = in;
    return Shape::image(in.n, in.h, in.w, in.c + 1);
  }
  std::string describe() const override { return detail::concat("mbstd ", in_.c, "->", in_.c + 1); }
  // The batch mean and 1 / sigma of each feature, then s.
  std::vector<int64_t> scratch_counts() const override { return {2 * in_.per_sample() + 1}; }
  std::string tangent_refusal() const override {
    return "minibatch standard deviation appends a statistic of the whole batch, so a sample's output "
           "depends on the others and the per-sample input gradients of a gradient penalty do not "
           "exist; use an objective without a penalty";
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::mbstd_forward<T>(ex, dims(io.batch), io.x, io.y, io.scratch[0]);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::mbstd_backward<T>(ex, dims(io.batch), io.x, io.scratch[0], io.dy, io.dx, io.accumulate_dx);
  }

 private:
  MinibatchStdDims dims(int batch) const { return {batch, int64_t(in_.h) * in_.w, in_.c, eps_}; }

  float eps_;
  Shape in_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_minibatch_std(const LayerSpec& spec, const std::string& where) {
  const float eps = spec.get_float("eps", 1e-8f, where);
  if (!(eps > 0.0f)) usage_error(where, ": mbstd eps must be positive, got ", eps);
  return std::make_unique<MinibatchStdLayer<T>>(eps);
}
GANCU_INSTANTIATE_LAYER(make_minibatch_std, const LayerSpec&, const std::string&)

}  // namespace gancu
