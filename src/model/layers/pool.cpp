// Max and average pooling layers over NHWC images (k x k windows, stride s, padding p; see
// PoolDims): `maxpool k=2` and `avgpool k=3 s=1 p=1`; `avgpool ... include_pad=false` divides by
// the taps inside the image (PyTorch's count_include_pad=False; max pooling refuses the key). No
// parameters; backward runs through the pooling ops of ops.h (max pooling recomputes each window's
// argmax from x and y, so nothing is saved between forward and backward).
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class PoolLayer final : public Layer<T> {
 public:
  PoolLayer(bool max, int kernel, int stride, int pad, bool include_pad, std::string where)
      : max_(max),
        kernel_(kernel),
        stride_(stride),
        pad_(pad),
        include_pad_(include_pad),
        where_(std::move(where)) {}

  Shape configure(const Shape& in) override {
    try {
      d_ = PoolDims::make(in.n, in.h, in.w, in.c, kernel_, stride_, pad_, include_pad_);
    } catch (const UsageError& e) {
      usage_error(where_, ": ", e.what(), " (input ", in.str(), ")");
    }
    return Shape::image(in.n, d_.p, d_.q, d_.c);
  }
  std::string describe() const override {
    return detail::concat(max_ ? "maxpool" : "avgpool", " k", kernel_, " s", stride_, " p", pad_,
                          include_pad_ ? "" : " (padding not counted)");
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    const PoolDims d = at_batch(io.batch);
    if (max_)
      ops::maxpool2d_forward<T>(ex, d, io.x, io.y);
    else
      ops::avgpool2d_forward<T>(ex, d, io.x, io.y);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (!io.dx) return;  // no parameters: nothing else to compute
    const PoolDims d = at_batch(io.batch);
    if (max_)
      ops::maxpool2d_backward<T>(ex, d, io.x, io.y, io.dy, io.dx, io.accumulate_dx);
    else
      ops::avgpool2d_backward<T>(ex, d, io.dy, io.dx, io.accumulate_dx);
  }
  // Both poolings are linear in x for a fixed choice of maxima: the tangent follows the forward's
  // choice, and both adjoints are the ordinary backward (max pooling finds its maxima from x, y).
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    const PoolDims d = at_batch(io.batch);
    if (max_)
      ops::maxpool2d_jvp<T>(ex, d, io.x, io.y, io.tx, io.ty);
    else
      ops::avgpool2d_forward<T>(ex, d, io.tx, io.ty);
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    const PoolDims d = at_batch(io.batch);
    const auto back = [&](const T* dy, T* dx, bool acc) {
      if (!dx) return;
      if (max_)
        ops::maxpool2d_backward<T>(ex, d, io.x, io.y, dy, dx, acc);
      else
        ops::avgpool2d_backward<T>(ex, d, dy, dx, acc);
    };
    if (!io.dy_zero) back(io.dy, io.dx, io.accumulate_dx);
    if (io.dty) back(io.dty, io.dtx, io.accumulate_dtx);
  }

 private:
  PoolDims at_batch(int batch) const {
    PoolDims d = d_;
    d.n = batch;
    return d;
  }

  bool max_;
  int kernel_, stride_, pad_;
  bool include_pad_;
  std::string where_;
  PoolDims d_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_pool(const LayerSpec& spec, bool max, const std::string& where) {
  const int k = spec.get_int("k", where);
  // maxpool has no include_pad key (layer_spec's key table refuses it): it ignores padding anyway.
  const bool include_pad = max || spec.get_bool("include_pad", true, where);
  return std::make_unique<PoolLayer<T>>(max, k, spec.get_int("s", k, where), spec.get_int("p", 0, where, 0),
                                        include_pad, where);
}
GANCU_INSTANTIATE_LAYER(make_pool, const LayerSpec&, bool, const std::string&)

}  // namespace gancu
