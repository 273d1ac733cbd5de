#include "gancu/classifier.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

#include "gancu/check.h"
#include "gancu/checkpoint.h"
#include "gancu/fileutil.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/optim.h"
#include "gancu/rng.h"
#include "gancu/safetensors.h"

namespace gancu {

namespace {
constexpr const char* kFormat = "gancu-classifier/1";
}

ClassifierInfo default_classifier(Shape image, int classes) {
  ClassifierInfo info;
  // Two conv/pool stages and a 128-wide hidden layer: ~420k parameters at 28x28, over 98% on
  // MNIST and over 90% on Fashion-MNIST after a few epochs. The features are the hidden layer's
  // ReLU outputs (index 7, with the ReLU at 8 fused into it).
  info.layers = {"conv out=32 k=3 s=1 p=1",
                 "relu",
                 "maxpool k=2",
                 "conv out=64 k=3 s=1 p=1",
                 "relu",
                 "maxpool k=2",
                 "flatten",
                 "linear out=128",
                 "relu",
                 "linear out=" + std::to_string(classes)};
  info.input = image.with_batch(0);
  info.classes = classes;
  info.feature_layer = 7;
  return info;
}

HeldoutSplit heldout_split(const std::string& data_name, int64_t holdout) {
  HeldoutSplit s;
  Dataset train = load_dataset(data_name, Split::Train);
  Dataset test = load_dataset(data_name, Split::Test);
  if (train.labels.empty() || test.labels.empty())
    usage_error("--data ", data_name, ": a classifier needs labelled images");
  const bool one_split = train.count == test.count && train.images == test.images;
  if (!one_split) {
    s.train = std::move(train);
    s.heldout = std::move(test);
    s.rule = "test-split";
    return s;
  }
  // Only one split exists (MNIST's test set on these machines): hold out the tail of a fixed
  // permutation, so that the same images are held out every time.
  if (holdout < 1 || holdout >= test.count)
    runtime_error(data_name, ": cannot hold out ", holdout, " of ", test.count, " images");
  const int64_t n = test.count, keep = n - holdout;
  const size_t bytes = test.image_bytes();
  for (Dataset* d : {&s.train, &s.heldout}) {
    d->name = test.name;
    d->h = test.h;
    d->w = test.w;
    d->c = test.c;
    d->num_classes = test.num_classes;
  }
  s.train.count = keep;
  s.heldout.count = holdout;
  s.train.images.resize(size_t(keep) * bytes);
  s.heldout.images.resize(size_t(holdout) * bytes);
  s.train.labels.resize(size_t(keep));
  s.heldout.labels.resize(size_t(holdout));
  for (int64_t pos = 0; pos < n; ++pos) {
    const uint32_t src = feistel_permute(uint32_t(pos), uint32_t(n), 0, 0);
    Dataset& d = pos < keep ? s.train : s.heldout;
    const int64_t i = pos < keep ? pos : pos - keep;
    std::copy(test.image(src), test.image(src) + bytes, d.images.begin() + i * int64_t(bytes));
    d.labels[size_t(i)] = test.labels[src];
  }
  s.rule = "feistel-tail:" + std::to_string(holdout);
  return s;
}

Dataset heldout_images(const ClassifierInfo& info) {
  int64_t holdout = 2000;
  if (info.heldout.rfind("feistel-tail:", 0) == 0)
    holdout = std::stoll(info.heldout.substr(13));
  else if (info.heldout != "test-split")
    runtime_error("classifier: unknown held-out rule '", info.heldout, "'");
  return heldout_split(info.data, holdout).heldout;
}

// Everything a classifier plans beside its network.
struct Classifier::State {
  std::unique_ptr<Optimizer<float>> optim;
  Slot input, labels, probs, sums, step;
  float* input_ptr = nullptr;
  int32_t* labels_ptr = nullptr;
  float* probs_ptr = nullptr;
  float* sums_ptr = nullptr;  // loss, correct
  int64_t* step_ptr = nullptr;
};

Classifier::Classifier(const Exec& ex, ClassifierInfo info, int batch, uint64_t seed)
    : ex_(ex), info_(std::move(info)), batch_(batch), state_(std::make_unique<State>()) {
  net_ = std::make_unique<Network<float>>("C", 3, info_.layers, "classifier.layers",
                                          info_.input.with_batch(batch), InitScheme::PyTorch);
  if (net_->output_shape() != Shape::features(batch, info_.classes))
    runtime_error("classifier: its layers end in ", net_->output_shape().str(), ", not ", info_.classes,
                  " class logits");
  OptimConfig adam;
  adam.lr = 1e-3f;
  adam.beta1 = 0.9f;
  state_->optim = std::make_unique<Optimizer<float>>("classifier.optim", adam, net_->param_count());
  ArenaPlan plan;
  net_->plan(plan, ex, BackwardUse{true, false});  // trained; its input's gradient is never asked for
  state_->optim->plan(plan);
  const int64_t per_image = info_.input.per_sample();
  state_->input =
      plan.add_array<float>(ArenaKind::Activations, "classifier input", size_t(batch) * per_image);
  state_->labels = plan.add_array<int32_t>(ArenaKind::Activations, "classifier labels", size_t(batch));
  state_->probs =
      plan.add_array<float>(ArenaKind::Activations, "classifier probs", size_t(batch) * info_.classes);
  state_->sums = plan.add_array<float>(ArenaKind::State, "classifier sums", 2);
  state_->step = plan.add_array<int64_t>(ArenaKind::State, "classifier step", 1);
  arena_ = Arena(ex.backend(), std::move(plan));
  net_->bind(arena_);
  // The classifier's own workspace on its own copy of the Exec (same stream and handles): the
  // Exec it was given may belong to a GAN session whose arena holds another workspace.
  ex_.set_workspace(arena_.workspace(), arena_.workspace_bytes());
  state_->optim->bind(arena_);
  state_->input_ptr = arena_.get<float>(state_->input);
  state_->labels_ptr = arena_.get<int32_t>(state_->labels);
  state_->probs_ptr = arena_.get<float>(state_->probs);
  state_->sums_ptr = arena_.get<float>(state_->sums);
  state_->step_ptr = arena_.get<int64_t>(state_->step);
  net_->layer_output(info_.feature_layer);  // validates the index
  net_->initialize(ex_, seed);
  state_->optim->reset(ex_);
  // The features: the output of the feature layer, [batch, feature_dim].
  Shape shape = info_.input.with_batch(batch);
  Network<float> probe(
      "C", 3, std::vector<std::string>(info_.layers.begin(), info_.layers.begin() + info_.feature_layer + 1),
      "classifier.layers", shape, InitScheme::PyTorch);
  feature_dim_ = int(probe.output_shape().per_sample());
}

Classifier::~Classifier() = default;

void Classifier::evaluate(const float* images, int64_t n, float* probs, float* features) {
  const Exec& ex = ex_;
  const int64_t per_image = info_.input.per_sample();
  const float* feature_ptr = net_->layer_output(info_.feature_layer);
  HostBuffer<float> host_probs(ex.backend(), size_t(batch_) * info_.classes);
  HostBuffer<float> host_features(ex.backend(), size_t(batch_) * feature_dim_);
  for (int64_t begin = 0; begin < n; begin += batch_) {
    const int chunk = int(std::min<int64_t>(batch_, n - begin));
    net_->forward(ex, images + begin * per_image, chunk, BatchNormMode::Eval, state_->step_ptr, 0);
    if (probs) {
      ops::softmax<float>(ex, chunk, info_.classes, net_->output(), state_->probs_ptr);
      copy_to_host(ex, host_probs.data(), state_->probs_ptr, size_t(chunk) * info_.classes * sizeof(float));
      std::copy(host_probs.data(), host_probs.data() + size_t(chunk) * info_.classes,
                probs + begin * info_.classes);
    }
    if (features) {
      copy_to_host(ex, host_features.data(), feature_ptr, size_t(chunk) * feature_dim_ * sizeof(float));
      std::copy(host_features.data(), host_features.data() + size_t(chunk) * feature_dim_,
                features + begin * feature_dim_);
    }
  }
}

void Classifier::evaluate_u8(const uint8_t* images, int64_t n, float* probs, float* features) {
  const int64_t per_image = info_.input.per_sample();
  std::vector<float> chunk_f(size_t(batch_) * per_image);
  for (int64_t begin = 0; begin < n; begin += batch_) {
    const int64_t chunk = std::min<int64_t>(batch_, n - begin);
    const uint8_t* src = images + begin * per_image;
    for (int64_t i = 0; i < chunk * per_image; ++i)
      chunk_f[size_t(i)] = float(src[i]) * (2.0f / 255.0f) - 1.0f;
    copy_to_device(ex_, state_->input_ptr, chunk_f.data(), size_t(chunk * per_image) * sizeof(float));
    evaluate(state_->input_ptr, chunk, probs ? probs + begin * info_.classes : nullptr,
             features ? features + begin * feature_dim_ : nullptr);
  }
}

double Classifier::accuracy(const Dataset& data) {
  if (data.labels.empty()) runtime_error(data.name, ": accuracy needs labels");
  std::vector<float> probs(size_t(data.count) * info_.classes);
  evaluate_u8(data.images.data(), data.count, probs.data(), nullptr);
  int64_t correct = 0;
  for (int64_t i = 0; i < data.count; ++i) {
    const float* p = probs.data() + i * info_.classes;
    correct += std::max_element(p, p + info_.classes) - p == data.labels[size_t(i)];
  }
  return double(correct) / double(data.count);
}

void Classifier::train_step(const float* images, const int32_t* labels) {
  const Exec& ex = ex_;
  ops::fill<float>(ex, net_->param_count(), net_->grads(), 0.0f);
  net_->forward(ex, images, batch_, BatchNormMode::Train, state_->step_ptr, 7);
  ops::softmax_cross_entropy<float>(ex, batch_, info_.classes, net_->output(), labels, 1.0f,
                                    net_->output_grad(), state_->sums_ptr, state_->sums_ptr + 1);
  net_->backward(ex, nullptr, false, true);
  state_->optim->step(ex, net_->params(), net_->grads());
  ops::increment_counter<float>(ex, state_->step_ptr);
}

std::pair<double, double> Classifier::read_train_stats(int64_t steps) {
  float sums[2];
  copy_to_host(ex_, sums, state_->sums_ptr, sizeof sums);
  ops::fill<float>(ex_, 2, state_->sums_ptr, 0.0f);
  if (steps <= 0) return {0.0, 0.0};
  return {sums[0] / double(steps), sums[1] / double(steps * batch_)};
}

void Classifier::save(const std::string& path) const {
  std::map<std::string, TensorData> tensors;
  export_network(ex_, *net_, tensors);
  const nlohmann::json layers = info_.layers;
  const Shape& in = info_.input;
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"layers", layers.dump()},
      {"input", detail::concat(in.h, "x", in.w, "x", in.c)},
      {"classes", std::to_string(info_.classes)},
      {"feature_layer", std::to_string(info_.feature_layer)},
      {"data", info_.data},
      {"heldout", info_.heldout},
      {"heldout_accuracy", std::to_string(info_.heldout_accuracy)},
      {"command", info_.command},
  };
  write_safetensors(path, tensors, metadata);
}

std::unique_ptr<Classifier> Classifier::load(const Exec& ex, const std::string& path, int batch) {
  if (!file_exists(path)) runtime_error("classifier ", path, ": no such file");
  const SafeTensors f = read_safetensors(path);
  const auto meta = [&](const char* key) -> const std::string& {
    const auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      runtime_error(path, ": not a gancu classifier (no '", key, "' in its metadata)");
    return it->second;
  };
  if (meta("format") != kFormat)
    runtime_error(path, ": not a gancu classifier (format '", meta("format"), "')");
  ClassifierInfo info;
  try {
    info.layers = nlohmann::json::parse(meta("layers")).get<std::vector<std::string>>();
    int h = 0, w = 0, c = 0;
    if (std::sscanf(meta("input").c_str(), "%dx%dx%d", &h, &w, &c) != 3) throw std::runtime_error("input");
    info.input = Shape::image(0, h, w, c);
    info.classes = std::stoi(meta("classes"));
    info.feature_layer = std::stoi(meta("feature_layer"));
    info.heldout_accuracy = std::stod(meta("heldout_accuracy"));
  } catch (const std::exception& e) {
    runtime_error(path, ": corrupt classifier metadata (", e.what(), ")");
  }
  info.data = meta("data");
  info.heldout = meta("heldout");
  info.command = meta("command");
  auto c = std::make_unique<Classifier>(ex, info, batch);
  import_network(ex, *c->net_, f, path);
  return c;
}

std::unique_ptr<Classifier> train_classifier(const Exec& ex, const HeldoutSplit& split,
                                             const ClassifierTraining& opt, std::ostream& log) {
  const Dataset& train = split.train;
  if (train.count < opt.batch)
    runtime_error("classifier: ", train.count, " training images, fewer than a batch");
  int classes = 0;
  for (uint8_t l : train.labels) classes = std::max(classes, int(l) + 1);
  auto c = std::make_unique<Classifier>(
      ex, default_classifier(Shape::image(0, train.h, train.w, train.c), classes), opt.batch, opt.seed);
  c->info().data = train.name;
  c->info().heldout = split.rule;

  Buffer<uint8_t> images(ex, train.images);
  Buffer<uint8_t> labels(ex, train.labels);
  Buffer<float> x(ex, size_t(opt.batch) * train.image_bytes());
  Buffer<int32_t> y(ex, size_t(opt.batch));
  Buffer<int64_t> step(ex, 1);
  const BatchGather gather{train.count, int64_t(train.image_bytes()), opt.batch, opt.seed};
  const int64_t per_epoch = train.count / opt.batch;
  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    for (int64_t i = 0; i < per_epoch; ++i) {
      ops::gather_batch<float>(ex, gather, images.data(), step.data(), x.data());
      ops::gather_labels<float>(ex, gather, labels.data(), step.data(), y.data());
      c->train_step(x.data(), y.data());
      ops::increment_counter<float>(ex, step.data());
    }
    const auto [loss, acc] = c->read_train_stats(per_epoch);
    const double heldout = c->accuracy(split.heldout);
    char line[160];
    std::snprintf(line, sizeof line,
                  "epoch %d/%d | loss %.4f | train accuracy %.4f | held-out accuracy %.4f\n", epoch,
                  opt.epochs, loss, acc, heldout);
    log << line << std::flush;
    c->info().heldout_accuracy = heldout;
  }
  return c;
}

std::string default_classifier_path(const std::string& data_name) {
  const std::string file = "models/" + data_name + "_classifier.safetensors";
  std::vector<std::string> places;
  if (const char* env = std::getenv("GANCU_MODELS_DIR"); env && *env)
    places.push_back(std::string(env) + "/" + data_name + "_classifier.safetensors");
  const std::string exe = executable_dir();
  if (!exe.empty()) {
    places.push_back(exe + "/../" + file);
    places.push_back(exe + "/../../" + file);
  }
  places.push_back(file);
  for (const auto& p : places)
    if (file_exists(p)) return p;
  return "";
}

}  // namespace gancu
