// Evaluation of a generator's samples: the numbers of gancu eval, of evaluation during training
// (log.eval_every) and of gancu compare.
//
// Images are judged by a classifier (classifier.h): its class histogram, modes covered, KL from
// uniform and Inception-style score; the Frechet distance between classifier features of the
// samples and of the real held-out images (classifier-feature FID: NOT comparable to Inception
// FID); precision, recall, F1, density and coverage on the same features. Stacked-MNIST samples
// (three channels, a single-channel classifier) are classified per channel: 1,000 modes.
// Samples of a 2-d mixture are judged by their distance to the mixture's modes.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gancu/classifier.h"
#include "gancu/metrics.h"

namespace gancu {

struct EvalResult {
  int64_t samples = 0;
  bool images = false, stacked = false, mixture = false;
  ClassStats classes;  // images: over the classifier's classes; stacked: over 1,000 digit triples
  int classes_total = 0;
  double fid = 0;  // classifier-feature Frechet distance
  PRDC prdc;
  MixtureStats mix;
  // A conditional generator's samples drawn for requested classes: the share of them that the
  // classifier assigns to the requested class, overall and per requested class (samples of class
  // k assigned to k over the samples requested as k; -1 for a class not requested).
  bool conditional = false;
  double class_accuracy = 0;
  std::vector<double> class_accuracy_per_class;

  nlohmann::json json() const;  // flat keys, e.g. "eval/modes", "eval/fid_classifier"
  std::string table() const;    // a few lines a user reads
};

class Evaluator {
 public:
  // For a generator of `image`-shaped images, judged by the classifier file (its held-out real
  // images, at most `reference` of them, are the reference set; loaded and featurized once).
  Evaluator(const Exec& ex, Shape image, const std::string& classifier_path, int64_t reference = 10000);
  // For a generator of 2-d points from `mix`.
  explicit Evaluator(const Mixture2D& mix);
  ~Evaluator();

  // uint8 images [n, h, w, c] on the host (as `gancu sample` writes them). With `requested` ([n]
  // classes, for a conditional generator's samples) the result also has class_accuracy.
  EvalResult evaluate_images(const uint8_t* images, int64_t n, const int32_t* requested = nullptr);
  // 2-d points [n, 2] on the host.
  EvalResult evaluate_points(const float* points, int64_t n);
  // A generator's output as drawn (host floats: images in [-1, 1], or 2-d points), judged by
  // whichever of the two this evaluator is for.
  EvalResult evaluate_generated(const float* samples, int64_t n, const int32_t* requested = nullptr);
  // Predicted classes of images (stacked: the digit triple as 100 a + 10 b + c), for gancu compare.
  std::vector<int> classify(const uint8_t* images, int64_t n);

  bool for_mixture() const { return has_mixture_; }
  const Classifier* classifier() const { return classifier_.get(); }

 private:
  // Probabilities [n, classes_total] and features [n, feature_dims] of n images.
  void judge(const uint8_t* images, int64_t n, std::vector<float>* probs, std::vector<float>* features);

  Shape image_;
  bool stacked_ = false;
  std::unique_ptr<Classifier> classifier_;
  std::vector<float> real_features_;
  int64_t real_n_ = 0;
  Gaussian real_gaussian_;
  bool has_mixture_ = false;
  Mixture2D mixture_;
  const Exec* ex_ = nullptr;
};

// Where the classifier for a run's data set is: `given` when not empty, else the shipped one for
// the data set (stacked-mnist uses mnist's); a UsageError naming what to do when there is none.
std::string resolve_classifier(const std::string& given, const std::string& data_name);

// The judge of a generator trained on `data_name` that draws `image`-shaped samples: the
// mixture's when the name is a 2-d mixture (session.h's mixture_by_name), else the classifier
// `classifier` (or the shipped one, by resolve_classifier).
std::unique_ptr<Evaluator> evaluator_for(const Exec& ex, const std::string& data_name, Shape image,
                                         const std::string& classifier);

}  // namespace gancu
