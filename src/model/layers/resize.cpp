// The bilinear resize layer, `resize h=299 w=299`: NHWC images to out h x w, as PyTorch's
// F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False, antialias=False) (ops.h,
// resize_bilinear_forward). Inception's input stage. No parameters; the op is linear, so its
// tangent is the forward of the tangent and both adjoints are the ordinary backward.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class ResizeLayer final : public Layer<T> {
 public:
  ResizeLayer(int out_h, int out_w, std::string where)
      : out_h_(out_h), out_w_(out_w), where_(std::move(where)) {}

  Shape configure(const Shape& in) override {
    if (in.is_features())
      usage_error(where_, ": resize needs an image, got features ", in.str(), "; add \"reshape\"");
    d_ = ResizeDims{in.n, in.h, in.w, in.c, out_h_, out_w_};
    return Shape::image(in.n, out_h_, out_w_, in.c);
  }
  std::string describe() const override {
    return detail::concat("resize ", d_.h, "x", d_.w, "->", out_h_, "x", out_w_, " bilinear");
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::resize_bilinear_forward<T>(ex, at_batch(io.batch), io.x, io.y);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (!io.dx) return;  // no parameters: nothing else to compute
    ops::resize_bilinear_backward<T>(ex, at_batch(io.batch), io.dy, io.dx, io.accumulate_dx);
  }
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    ops::resize_bilinear_forward<T>(ex, at_batch(io.batch), io.tx, io.ty);
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    const ResizeDims d = at_batch(io.batch);
    if (!io.dy_zero && io.dx) ops::resize_bilinear_backward<T>(ex, d, io.dy, io.dx, io.accumulate_dx);
    if (io.dty && io.dtx) ops::resize_bilinear_backward<T>(ex, d, io.dty, io.dtx, io.accumulate_dtx);
  }

 private:
  ResizeDims at_batch(int batch) const {
    ResizeDims d = d_;
    d.n = batch;
    return d;
  }

  int out_h_, out_w_;
  std::string where_;
  ResizeDims d_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_resize(const LayerSpec& spec, const std::string& where) {
  return std::make_unique<ResizeLayer<T>>(spec.get_int("h", where), spec.get_int("w", where), where);
}
GANCU_INSTANTIATE_LAYER(make_resize, const LayerSpec&, const std::string&)

}  // namespace gancu
