#include "gancu/evaluation.h"

#include <algorithm>
#include <cstdio>

#include "gancu/check.h"
#include "gancu/image_io.h"
#include "gancu/session.h"

namespace gancu {

Evaluator::Evaluator(const Exec& ex, Shape image, const std::string& classifier_path, int64_t reference)
    : image_(image.with_batch(0)), ex_(&ex) {
  classifier_ = Classifier::load(ex, classifier_path, 256);
  const Shape in = classifier_->info().input;
  stacked_ =
      image_.c == 3 && in.c == 1 && image_.h == in.h && image_.w == in.w && classifier_->info().classes == 10;
  if (!stacked_ && image_ != in)
    runtime_error("classifier ", classifier_path, " judges ", in.h, "x", in.w, "x", in.c,
                  " images, but the samples are ", image_.h, "x", image_.w, "x", image_.c);
  Dataset real = heldout_images(classifier_->info());
  if (stacked_) real = make_stacked_mnist(real, std::min<int64_t>(reference, 10000), 0x5eedull);
  real_n_ = std::min<int64_t>(reference, real.count);
  if (real_n_ < 2)
    runtime_error("classifier ", classifier_path, ": its held-out set has fewer than 2 images");
  judge(real.images.data(), real_n_, nullptr, &real_features_);
  const int dim = int(real_features_.size() / size_t(real_n_));
  real_gaussian_ = fit_gaussian(real_features_.data(), real_n_, dim);
}

Evaluator::Evaluator(const Mixture2D& mix) : has_mixture_(true), mixture_(mix) {}

Evaluator::~Evaluator() = default;

void Evaluator::judge(const uint8_t* images, int64_t n, std::vector<float>* probs,
                      std::vector<float>* features) {
  const int classes = classifier_->info().classes, dim = classifier_->feature_dim();
  if (!stacked_) {
    if (probs) probs->resize(size_t(n) * classes);
    if (features) features->resize(size_t(n) * dim);
    classifier_->evaluate_u8(images, n, probs ? probs->data() : nullptr,
                             features ? features->data() : nullptr);
    return;
  }
  // Stacked MNIST: each channel is a digit; classify the 3n single-channel images.
  const size_t pixels = size_t(image_.h) * image_.w;
  std::vector<uint8_t> channels(size_t(3 * n) * pixels);
  for (int64_t i = 0; i < n; ++i)
    for (int ch = 0; ch < 3; ++ch)
      for (size_t p = 0; p < pixels; ++p)
        channels[(size_t(i) * 3 + ch) * pixels + p] = images[(size_t(i) * pixels + p) * 3 + ch];
  std::vector<float> p3(size_t(3 * n) * classes), f3(features ? size_t(3 * n) * dim : 0);
  classifier_->evaluate_u8(channels.data(), 3 * n, p3.data(), features ? f3.data() : nullptr);
  if (features) *features = std::move(f3);  // [n, 3 * dim]: the three channels' features side by side
  if (probs) {
    // p(a, b, c | x) = p(a | ch0) p(b | ch1) p(c | ch2): 1,000 classes.
    probs->assign(size_t(n) * 1000, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      const float* p = p3.data() + size_t(i) * 3 * classes;
      float* out = probs->data() + size_t(i) * 1000;
      for (int a = 0; a < 10; ++a)
        for (int b = 0; b < 10; ++b)
          for (int c = 0; c < 10; ++c) out[a * 100 + b * 10 + c] = p[a] * p[classes + b] * p[2 * classes + c];
    }
  }
}

EvalResult Evaluator::evaluate_images(const uint8_t* images, int64_t n, const int32_t* requested) {
  if (has_mixture_) runtime_error("this evaluator judges 2-d points, not images");
  if (n < 2) runtime_error("evaluation needs at least 2 samples, got ", n);
  EvalResult r;
  r.samples = n;
  r.images = true;
  r.stacked = stacked_;
  std::vector<float> probs, features;
  judge(images, n, &probs, &features);
  r.classes_total = stacked_ ? 1000 : classifier_->info().classes;
  r.classes = class_statistics(probs.data(), n, r.classes_total);
  const int dim = int(features.size() / size_t(n));
  r.fid = frechet_distance(fit_gaussian(features.data(), n, dim), real_gaussian_);
  r.prdc =
      precision_recall_density_coverage(*ex_, real_features_.data(), real_n_, features.data(), n, dim, 3);
  if (requested) {
    if (stacked_) runtime_error("class accuracy: Stacked MNIST samples have no requested class");
    r.conditional = true;
    std::vector<int64_t> asked(size_t(r.classes_total), 0), hit(size_t(r.classes_total), 0);
    int64_t hits = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t want = requested[i];
      if (want < 0 || want >= r.classes_total)
        runtime_error("class accuracy: requested class ", want, " is outside the classifier's 0..",
                      r.classes_total - 1);
      const float* p = probs.data() + size_t(i) * size_t(r.classes_total);
      const bool ok = std::max_element(p, p + r.classes_total) - p == want;
      ++asked[size_t(want)];
      hit[size_t(want)] += ok;
      hits += ok;
    }
    r.class_accuracy = double(hits) / double(n);
    for (size_t k = 0; k < asked.size(); ++k)
      r.class_accuracy_per_class.push_back(asked[k] ? double(hit[k]) / double(asked[k]) : -1.0);
  }
  return r;
}

EvalResult Evaluator::evaluate_points(const float* points, int64_t n) {
  if (!has_mixture_) runtime_error("this evaluator judges images, not 2-d points");
  EvalResult r;
  r.samples = n;
  r.mixture = true;
  r.mix = mixture_statistics(mixture_, points, n);
  return r;
}

EvalResult Evaluator::evaluate_generated(const float* samples, int64_t n, const int32_t* requested) {
  if (has_mixture_) return evaluate_points(samples, n);
  std::vector<uint8_t> pixels(size_t(n * image_.per_sample()));
  float_to_u8(samples, pixels.size(), pixels.data());
  return evaluate_images(pixels.data(), n, requested);
}

std::vector<int> Evaluator::classify(const uint8_t* images, int64_t n) {
  std::vector<float> probs;
  judge(images, n, &probs, nullptr);
  const int classes = stacked_ ? 1000 : classifier_->info().classes;
  std::vector<int> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probs.data() + size_t(i) * classes;
    out[size_t(i)] = int(std::max_element(p, p + classes) - p);
  }
  return out;
}

nlohmann::json EvalResult::json() const {
  nlohmann::json j;
  if (mixture) {
    j["eval/modes"] = mix.modes_covered;
    j["eval/modes_total"] = int(mix.per_mode.size());
    j["eval/high_quality"] = mix.high_quality;
    return j;
  }
  j["eval/modes"] = classes.modes_covered;
  j["eval/modes_total"] = classes_total;
  j["eval/kl_uniform"] = classes.kl_from_uniform;
  j["eval/score"] = classes.inception_score;
  j["eval/fid_classifier"] = fid;
  j["eval/precision"] = prdc.precision;
  j["eval/recall"] = prdc.recall;
  j["eval/f1"] = prdc.f1;
  j["eval/density"] = prdc.density;
  j["eval/coverage"] = prdc.coverage;
  if (conditional) {
    j["eval/class_accuracy"] = class_accuracy;
    for (size_t k = 0; k < class_accuracy_per_class.size(); ++k)
      if (class_accuracy_per_class[k] >= 0)
        j["eval/class_accuracy_" + std::to_string(k)] = class_accuracy_per_class[k];
  }
  return j;
}

std::string EvalResult::table() const {
  char buf[1024];
  if (mixture) {
    std::string per;
    for (auto c : mix.per_mode) per += std::to_string(c) + " ";
    std::snprintf(buf, sizeof buf,
                  "samples            %lld\n"
                  "modes covered      %d of %zu (at least 1%% of the samples within 3 std)\n"
                  "high quality       %.1f%% of the samples within 3 std of a mode\n"
                  "per mode           %s\n",
                  (long long)samples, mix.modes_covered, mix.per_mode.size(), 100.0 * mix.high_quality,
                  per.c_str());
    return buf;
  }
  std::string hist;
  if (!stacked)
    for (auto c : classes.histogram) hist += std::to_string(c) + " ";
  std::snprintf(buf, sizeof buf,
                "samples            %lld\n"
                "modes covered      %d of %d%s\n"
                "KL(classes||unif)  %.4f nats\n"
                "score (IS-style)   %.3f  (classifier probabilities; max %d)\n"
                "FID (classifier)   %.3f  (classifier features; not comparable to Inception FID)\n"
                "precision/recall   %.3f / %.3f  (F1 %.3f; k-NN manifolds, k=3)\n"
                "density/coverage   %.3f / %.3f\n"
                "%s%s%s",
                (long long)samples, classes.modes_covered, classes_total,
                stacked ? " (Stacked MNIST: digit triples)" : "", classes.kl_from_uniform,
                classes.inception_score, classes_total, fid, prdc.precision, prdc.recall, prdc.f1,
                prdc.density, prdc.coverage, stacked ? "" : "class histogram    ", hist.c_str(),
                stacked ? "" : "\n");
  std::string out = buf;
  if (conditional) {
    std::string per;
    for (double a : class_accuracy_per_class) {
      char one[16] = "- ";
      if (a >= 0) std::snprintf(one, sizeof one, "%.2f ", a);
      per += one;
    }
    std::snprintf(buf, sizeof buf,
                  "class accuracy     %.3f  (samples the classifier assigns to the requested class)\n"
                  "  per class        %s\n",
                  class_accuracy, per.c_str());
    out += buf;
  }
  return out;
}

std::string resolve_classifier(const std::string& given, const std::string& data_name) {
  if (!given.empty()) return given;
  const std::string base = data_name == "stacked-mnist" ? "mnist" : data_name;
  const std::string found = default_classifier_path(base);
  if (found.empty())
    usage_error("no classifier for data '", data_name,
                "': give --classifier FILE (or eval.classifier), or train one: ",
                "gancu classifier train --data ", base, " --out models/", base, "_classifier.safetensors");
  return found;
}

std::unique_ptr<Evaluator> evaluator_for(const Exec& ex, const std::string& data_name, Shape image,
                                         const std::string& classifier) {
  Mixture2D mix;
  if (mixture_by_name(data_name, &mix)) return std::make_unique<Evaluator>(mix);
  return std::make_unique<Evaluator>(ex, image, resolve_classifier(classifier, data_name));
}

}  // namespace gancu
