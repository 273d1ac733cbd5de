// Classifiers as judges: a small CNN trained on the real data set, whose class probabilities give
// the class histogram, the modes covered and the Inception-style score of a set of samples, and
// whose penultimate features give the Frechet distance and the k-NN precision/recall.
//
// A classifier file is a safetensors file: the network's tensors ("C.0.weight", PyTorch layouts)
// and metadata naming its layers, input shape, feature layer, the data it was trained on, the
// images held out from training (the real reference set of the evaluation), its held-out accuracy
// and the command that made it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gancu/arena.h"
#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/network.h"

namespace gancu {

struct ClassifierInfo {
  std::vector<std::string> layers;  // layer strings
  Shape input;                      // image shape, batch 0
  int classes = 10;
  // Index (in `layers`) of the layer whose output is the feature vector; an activation string
  // right after it is fused into it (network.h), so the shipped classifiers' features are the
  // ReLU outputs of their `linear out=128` layer.
  int feature_layer = 0;
  std::string data;     // the data set name it was trained on
  std::string heldout;  // how the held-out images are chosen (see heldout_split)
  double heldout_accuracy = 0;
  std::string command;
};

// The default architecture for h x w x c images and `classes` classes.
ClassifierInfo default_classifier(Shape image, int classes);

// The split of a data set into training and held-out images. For data sets with a test split
// (Fashion-MNIST) the test split is held out. The MNIST copy on these machines has only the
// 10,000 test images: the last `holdout` positions of a fixed Feistel permutation (seed 0) of
// them are held out and the rest train. `rule` is stored in the classifier's metadata.
struct HeldoutSplit {
  Dataset train, heldout;
  std::string rule;
};
HeldoutSplit heldout_split(const std::string& data_name, int64_t holdout = 2000);
// Only the held-out images of a classifier's rule (for the evaluation's real reference set).
Dataset heldout_images(const ClassifierInfo& info);

class Classifier {
 public:
  // Builds the network (parameters initialized from `seed`) for batches of up to `batch`.
  Classifier(const Exec& ex, ClassifierInfo info, int batch, uint64_t seed = 1);
  ~Classifier();
  // Loads a classifier file. Missing file, another format, or tensors that do not fit: RuntimeError.
  static std::unique_ptr<Classifier> load(const Exec& ex, const std::string& path, int batch = 256);
  void save(const std::string& path) const;

  const ClassifierInfo& info() const { return info_; }
  ClassifierInfo& info() { return info_; }
  int feature_dim() const { return feature_dim_; }
  int batch() const { return batch_; }

  // Class probabilities [n, classes] and features [n, feature_dim] (host) of n images given as
  // floats in [-1, 1], [n, h, w, c] in backend memory. Either output may be null. Batch norm and
  // dropout run in evaluation mode.
  void evaluate(const float* images, int64_t n, float* probs, float* features);
  // The same for uint8 images on the host (scaled to [-1, 1] as in training).
  void evaluate_u8(const uint8_t* images, int64_t n, float* probs, float* features);
  // Share of correctly classified images (labels required).
  double accuracy(const Dataset& data);

  // One training step on a batch (images [batch, ...] floats and labels in backend memory):
  // softmax cross-entropy, backward, Adam. Adds to the device sums read by read_train_stats.
  void train_step(const float* images, const int32_t* labels);
  // Mean loss and accuracy of the steps since the last call.
  std::pair<double, double> read_train_stats(int64_t steps);

  Network<float>& network() { return *net_; }

 private:
  Exec ex_;  // a copy with this classifier's workspace
  ClassifierInfo info_;
  int batch_;
  int feature_dim_ = 0;
  std::unique_ptr<Network<float>> net_;
  struct State;
  std::unique_ptr<State> state_;
  Arena arena_;
};

// Trains a classifier on `split.train` and measures it on `split.heldout`; prints a progress line
// per epoch to `log`.
struct ClassifierTraining {
  int epochs = 5;
  int batch = 64;
  float lr = 1e-3f;
  uint64_t seed = 1;
};
std::unique_ptr<Classifier> train_classifier(const Exec& ex, const HeldoutSplit& split,
                                             const ClassifierTraining& opt, std::ostream& log);

// Where the shipped classifier for a data set is: models/<data>_classifier.safetensors next to
// the source tree or the executable ("" when none is found).
std::string default_classifier_path(const std::string& data_name);

}  // namespace gancu
