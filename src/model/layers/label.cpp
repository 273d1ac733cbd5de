// The layers that read class labels (conditional models): `embed`, a learned table looked up at
// each sample's class, and `project`, the projection discriminator's term <table[y], phi(x)>
// (Miyato & Koyama 2018). Both read the label input of a conditional network, one-hot rows
// [batch, classes], and take the class as the position of the row's largest value (ops.h), so the
// number of classes is the label input's width.
//
// Neither passes a gradient to the label (a class is piecewise constant in the row), and the label
// has no tangent in the tangent pass of a gradient penalty: `embed` has a zero tangent (the
// network skips it there) but still adds the primal adjoint that reaches it to its table's
// gradient; `project` is linear in the features for a fixed class, so its tangent is the same
// lookup applied to the features' tangent, without second-order terms.
#include "gancu/check.h"
#include "gancu/ops.h"
#include "layer_impl.h"

namespace gancu {

namespace {

// The width of a label input, checked: a feature vector of at least one class.
int label_classes(const Shape& label, const char* kind, const std::string& where) {
  if (!label.is_features())
    usage_error(where, ": ", kind, " reads class labels [batch, classes] (in=label), but gets a ", label.h,
                "x", label.w, "x", label.c, " image");
  return label.c;
}

template <class T>
class EmbedLayer final : public Layer<T> {
 public:
  EmbedLayer(int dim, std::string where) : dim_(dim), where_(std::move(where)) {
    if (dim_ < 1) usage_error(where_, ": embed dim must be at least 1, got ", dim_);
  }

  Shape configure(const Shape& in) override {
    classes_ = label_classes(in, "embed", where_);
    return Shape::features(in.n, dim_);
  }
  std::string describe() const override { return detail::concat("embed ", classes_, " classes->", dim_); }
  // As PyTorch's nn.Embedding: N(0, 1) under both init schemes.
  std::vector<ParamSpec> params() const override {
    return {{"weight", {classes_, dim_}, false, {InitRule::Normal, 0.0f, 1.0f}}};
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::embedding_forward<T>(ex, dims(io), io.x, io.params[0], io.y);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (io.param_grads) ops::embedding_backward<T>(ex, dims(io), io.x, io.dy, nullptr, io.grads[0]);
  }
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    // Only reached when the main input is the label itself: a class does not move with it.
    ops::fill<T>(ex, int64_t(io.batch) * dim_, io.ty, T(0));
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (!io.dy_zero) ops::embedding_backward<T>(ex, dims(io), io.x, io.dy, nullptr, io.grads[0]);
  }

 private:
  EmbeddingDims dims(const LayerIO<T>& io) const { return {io.batch, classes_, dim_}; }

  int dim_;
  std::string where_;
  int classes_ = 0;
};

template <class T>
class ProjectLayer final : public Layer<T> {
 public:
  ProjectLayer(InitScheme init, std::string where) : init_(init), where_(std::move(where)) {}

  bool multi_input() const override { return true; }
  Shape configure(const Shape& in) override { return configure_inputs({in}); }
  Shape configure_inputs(const std::vector<Shape>& in) override {
    if (in.size() != 2)
      usage_error(where_, ": project reads two inputs, the features and the labels (in=features,label)");
    if (!in[0].is_features())
      usage_error(where_, ": project needs a feature vector first (in=features,label) but gets a ", in[0].h,
                  "x", in[0].w, "x", in[0].c, " image; flatten it first");
    dim_ = in[0].c;
    classes_ = label_classes(in[1], "project", where_);
    return Shape::features(in[0].n, 1);
  }
  std::string describe() const override {
    return detail::concat("project ", dim_, " features x ", classes_, " classes");
  }
  std::vector<ParamSpec> params() const override {
    return {{"weight", {classes_, dim_}, false, weight_init(init_, dim_)}};
  }

  void forward(const Exec& ex, const LayerIO<T>& io) const override {
    ops::projection_forward<T>(ex, dims(io), io.xs[1], io.params[0], io.xs[0], io.y);
  }
  void backward(const Exec& ex, const LayerIO<T>& io) const override {
    pass_back(ex, io, io.xs[0], io.dy, io.dxs[0], io.accumulate_dxs[0], io.param_grads);
  }
  void jvp(const Exec& ex, const LayerIO<T>& io) const override {
    if (io.txs[0])
      ops::projection_forward<T>(ex, dims(io), io.xs[1], io.params[0], io.txs[0], io.ty);
    else
      ops::fill<T>(ex, io.batch, io.ty, T(0));
  }
  void jvp_backward(const Exec& ex, const LayerIO<T>& io) const override {
    if (!io.dy_zero) pass_back(ex, io, io.xs[0], io.dy, io.dxs[0], io.accumulate_dxs[0], true);
    if (io.dty && io.txs[0]) pass_back(ex, io, io.txs[0], io.dty, io.dtxs[0], io.accumulate_dtxs[0], true);
  }

 private:
  EmbeddingDims dims(const LayerIO<T>& io) const { return {io.batch, classes_, dim_}; }
  // From the gradient dy of y = <table[class], x>: dx = dy table[class], dtable[class] += dy x.
  void pass_back(const Exec& ex, const LayerIO<T>& io, const T* x, const T* dy, T* dx, bool accumulate,
                 bool param_grads) const {
    ops::projection_backward<T>(ex, dims(io), io.xs[1], io.params[0], dy, dx, accumulate);
    if (param_grads) ops::embedding_backward<T>(ex, dims(io), io.xs[1], x, dy, io.grads[0]);
  }

  InitScheme init_;
  std::string where_;
  int dim_ = 0, classes_ = 0;
};

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_embed(const LayerSpec& spec, const std::string& where) {
  return std::make_unique<EmbedLayer<T>>(spec.get_int("dim", where), where);
}
GANCU_INSTANTIATE_LAYER(make_embed, const LayerSpec&, const std::string&)

template <class T>
std::unique_ptr<Layer<T>> make_project(const LayerSpec&, InitScheme init, const std::string& where) {
  return std::make_unique<ProjectLayer<T>>(init, where);
}
GANCU_INSTANTIATE_LAYER(make_project, const LayerSpec&, InitScheme, const std::string&)

}  // namespace gancu
