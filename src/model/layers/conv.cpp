// Conv2d and ConvTranspose2d, NHWC, filter [k, r, s, c]. A transposed convolution is stored and
// computed as the adjoint of the convolution with the same ConvDims (see op_types.h), so its
// filter is PyTorch's ConvTranspose2d weight [in, out, r, s] with the channel axis moved last.
// Kernel and padding may differ between the axes (`conv out=192 kh=1 kw=7 ph=0 pw=3`, Inception's
// factorized convolutions): kh/kw override k, ph/pw override p; both kinds take them.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

template <class T>
class ConvLayer final : public Layer<T> {
 public:
  ConvLayer(bool transposed, int out, int kernel_h, int kernel_w, int stride, int pad_h, int pad_w, bool bias,
            InitScheme init, std::string where)
      : transposed_(transposed),
        out_(out),
        kernel_h_(kernel_h),
        kernel_w_(kernel_w),
        stride_(stride),
        pad_h_(pad_h),
        pad_w_(pad_w),
        bias_(bias),
        init_(init),
        where_(std::move(where)) {}

  Shape configure(const Shape& in) override {
    try {
      d_ = transposed_
               ? ConvDims::transposed(in.n, in.h, in.w, in.c, out_, kernel_h_, kernel_w_, stride_, pad_h_,
                                      pad_w_)
               : ConvDims::conv(in.n, in.h, in.w, in.c, out_, kernel_h_, kernel_w_, stride_, pad_h_, pad_w_);
    } catch (const UsageError& e) {
      usage_error(where_, ": ", e.what(), " (input ", in.str(), ")");
    }
    return transposed_ ? Shape::image(in.n, d_.h, d_.w, d_.c) : Shape::image(in.n, d_.p, d_.q, d_.k);
  }
  std::string describe() const override {
    const int cin = transposed_ ? d_.k : d_.c, cout = transposed_ ? d_.c : d_.k;
    // Square kernels and padding as before ("k4 s2 p1"); others per axis, rows first ("k1x7 s1 p0x3").
    const std::string k =
        kernel_h_ == kernel_w_ ? std::to_string(kernel_h_) : detail::concat(kernel_h_, "x", kernel_w_);
    const std::string p = pad_h_ == pad_w_ ? std::to_string(pad_h_) : detail::concat(pad_h_, "x", pad_w_);
    return detail::concat(transposed_ ? "convT " : "conv ", cin, "->", cout, " k", k, " s", stride_, " p", p,
                          bias_ ? "" : " (no bias)", act_.kind == Act::None ? "" : " +act");
  }
  std::vector<ParamSpec> params() const override {
    // PyTorch's fan-in is c*r*s for both kinds (for ConvTranspose2d it reads the weight's second
    // axis, which is its output channels, our c).
    const int64_t fan_in = int64_t(d_.c) * d_.r * d_.s;
    std::vector<ParamSpec> p{{"weight", {d_.k, d_.r, d_.s, d_.c}, true, weight_init(init_, fan_in)}};
    if (bias_) p.push_back({"bias", {transposed_ ? d_.c : d_.k}, false, bias_init(init_, fan_in)});
    return p;
  }
  size_t workspace_bytes(const Exec& ex, BackwardUse use) const override {
    // forward and jvp run the layer's forward; backward and jvp_backward its gradients.
    const ConvPasses passes{true, use.backward && use.input_grad, use.backward};
    return ops::conv_workspace_bytes<T>(ex, d_, transposed_, passes);
  }
  bool fuse_activation(const Activation& a) override {
    if (act_.kind != Act::None) return false;
    act_ = a;
    return true;
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    const ConvDims d = at_batch(io.batch);
    const T* b = bias_ ? io.params[1] : nullptr;
    if (transposed_)
      ops::conv_transpose2d_forward<T>(ex, d, io.x, io.params[0], b, io.y, act_);
    else
      ops::conv2d_forward<T>(ex, d, io.x, io.params[0], b, io.y, act_);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    const ConvDims d = at_batch(io.batch);
    T* dw = io.param_grads ? io.grads[0] : nullptr;
    T* db = io.param_grads && bias_ ? io.grads[1] : nullptr;
    if (transposed_)
      ops::conv_transpose2d_backward<T>(ex, d, io.x, io.params[0], io.y, io.dy, io.dx, io.accumulate_dx, dw,
                                        db, act_);
    else
      ops::conv2d_backward<T>(ex, d, io.x, io.params[0], io.y, io.dy, io.dx, io.accumulate_dx, dw, db, act_);
  }
  bool second_order() const override { return is_smooth(act_); }
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    const ConvDims d = at_batch(io.batch);
    affine_jvp<T>(ex, io, out_count(d), act_, [&](const T* x, T* y) {
      if (transposed_)
        ops::conv_transpose2d_forward<T>(ex, d, x, io.params[0], nullptr, y, Activation{});
      else
        ops::conv2d_forward<T>(ex, d, x, io.params[0], nullptr, y, Activation{});
    });
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    const ConvDims d = at_batch(io.batch);
    affine_jvp_backward<T>(
        ex, io, out_count(d), act_, [&](const T* x, T* dy, T* dx, bool acc, bool bias, Activation a) {
          T* db = bias && bias_ ? io.grads[1] : nullptr;
          if (transposed_)
            ops::conv_transpose2d_backward<T>(ex, d, x, io.params[0], io.y, dy, dx, acc, io.grads[0], db, a);
          else
            ops::conv2d_backward<T>(ex, d, x, io.params[0], io.y, dy, dx, acc, io.grads[0], db, a);
        });
  }

 private:
  int64_t out_count(const ConvDims& d) const { return transposed_ ? d.x_elems() : d.y_elems(); }
  ConvDims at_batch(int batch) const {
    ConvDims d = d_;
    d.n = batch;
    return d;
  }

  bool transposed_;
  int out_, kernel_h_, kernel_w_, stride_, pad_h_, pad_w_;
  bool bias_;
  InitScheme init_;
  std::string where_;
  ConvDims d_;
  Activation act_;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_conv(const LayerSpec& spec, InitScheme init, bool transposed,
                                    const std::string& where) {
  const bool square = spec.args.count("k") != 0;
  if (!square && !(spec.args.count("kh") && spec.args.count("kw")))
    usage_error(where, ": \"", spec.text, "\" needs k=<integer> or both kh= and kw=");
  const int k = square ? spec.get_int("k", where) : 0;
  const int p = spec.get_int("p", 0, where, 0);
  return std::make_unique<ConvLayer<T>>(transposed, spec.get_int("out", where), spec.get_int("kh", k, where),
                                        spec.get_int("kw", k, where), spec.get_int("s", 1, where),
                                        spec.get_int("ph", p, where, 0), spec.get_int("pw", p, where, 0),
                                        spec.get_bool("bias", true, where), init, where);
}
GANCU_INSTANTIATE_LAYER(make_conv, const LayerSpec&, InitScheme, bool, const std::string&)

}  // namespace gancu
