// The layers with several inputs: concat (along channels, or features; a feature vector joins an
// image as constant channel maps) and add (a residual sum). Both are linear, so their tangent
// pass is their forward on the tangents and both adjoints are their backward.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class JoinLayer final : public Layer<T> {
 public:
  JoinLayer(bool concat, std::string where) : concat_(concat), where_(std::move(where)) {}

  bool multi_input() const override { return true; }
  Shape configure(const Shape& in) override { return configure_inputs({in}); }
  Shape configure_inputs(const std::vector<Shape>& in) override {
    const char* kind = concat_ ? "concat" : "add";
    if (in.size() < 2) usage_error(where_, ": ", kind, " needs in= with two or more inputs");
    return concat_ ? configure_concat(in) : configure_add(in);
  }
  std::string describe() const override {
    return detail::concat(concat_ ? "concat " : "add ", parts_.size(), " inputs");
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    if (concat_) {
      for (size_t k = 0; k < parts_.size(); ++k)
        ops::concat_forward<T>(ex, part(k, io.batch), io.xs[k], io.y);
      return;
    }
    const int64_t n = io.batch * out_.per_sample();
    ops::add<T>(ex, n, io.xs[0], io.xs[1], io.y);
    for (size_t k = 2; k < io.xs.size(); ++k) ops::add<T>(ex, n, io.y, io.xs[k], io.y);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    for (size_t k = 0; k < parts_.size(); ++k)
      pass_back(ex, io.batch, k, io.dy, io.dxs[k], io.accumulate_dxs[k]);
  }

  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    const int64_t n = io.batch * out_.per_sample();
    if (concat_) {
      // Inputs without a tangent (labels) contribute zeros.
      bool all = true;
      for (const T* t : io.txs) all = all && t;
      if (!all) ops::fill<T>(ex, n, io.ty, T(0));
      for (size_t k = 0; k < parts_.size(); ++k)
        if (io.txs[k]) ops::concat_forward<T>(ex, part(k, io.batch), io.txs[k], io.ty);
      return;
    }
    bool first = true;
    for (const T* t : io.txs) {
      if (!t) continue;
      if (first)
        ops::activation_forward<T>(ex, n, t, io.ty, Activation{});  // a copy
      else
        ops::add<T>(ex, n, io.ty, t, io.ty);
      first = false;
    }
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    for (size_t k = 0; k < parts_.size(); ++k) {
      if (!io.dy_zero) pass_back(ex, io.batch, k, io.dy, io.dxs[k], io.accumulate_dxs[k]);
      if (io.dty) pass_back(ex, io.batch, k, io.dty, io.dtxs[k], io.accumulate_dtxs[k]);
    }
  }

 private:
  Shape configure_concat(const std::vector<Shape>& in) {
    // The spatial size: that of the images among the inputs (all alike); 1x1 when all are features.
    int h = 1, w = 1, channels = 0;
    bool image = false;
    for (const Shape& s : in) {
      if (s.is_features()) continue;
      if (image && (s.h != h || s.w != w))
        usage_error(where_, ": concat of images of different sizes (", h, "x", w, " and ", s.h, "x", s.w,
                    ")");
      h = s.h;
      w = s.w;
      image = true;
    }
    parts_.clear();
    for (const Shape& s : in) {
      ConcatPart p;
      p.positions = int64_t(h) * w;
      p.src_channels = s.c;
      p.offset = channels;
      p.broadcast = image && s.is_features();
      channels += s.c;
      parts_.push_back(p);
    }
    for (ConcatPart& p : parts_) p.dst_channels = channels;
    out_ = Shape::image(in[0].n, h, w, channels);
    return out_;
  }
  Shape configure_add(const std::vector<Shape>& in) {
    for (const Shape& s : in)
      if (s != in[0]) usage_error(where_, ": add of different shapes (", in[0].str(), " and ", s.str(), ")");
    parts_.assign(in.size(), ConcatPart{});
    out_ = in[0];
    return out_;
  }
  ConcatPart part(size_t k, int batch) const {
    ConcatPart p = parts_[k];
    p.samples = batch;
    return p;
  }
  // The gradient of input k from the gradient of the output.
  void pass_back(const Exec& ex, int batch, size_t k, const T* dy, T* dx, bool accumulate) const {
    if (!dx) return;
    const int64_t n = batch * out_.per_sample();
    if (concat_)
      ops::concat_backward<T>(ex, part(k, batch), dy, dx, accumulate);
    else if (accumulate)
      ops::add_into<T>(ex, n, dy, dx);
    else  // a copy (activation_backward would read its y, which add does not have, on CUDA)
      ops::activation_forward<T>(ex, n, dy, dx, Activation{});
  }

  bool concat_;
  std::string where_;
  std::vector<ConcatPart> parts_;
  Shape out_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_join(const LayerSpec&, bool concat, const std::string& where) {
  return std::make_unique<JoinLayer<T>>(concat, where);
}
GANCU_INSTANTIATE_LAYER(make_join, const LayerSpec&, bool, const std::string&)

}  // namespace gancu
