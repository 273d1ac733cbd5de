// The Inception-v3 network of the Frechet Inception Distance, the Inception Score and the Kernel
// Inception Distance, built from gancu's own layers (conv, bn, relu, pooling, concat, resize) on
// either backend.
//
// Two variants, chosen by the weights file:
// - `fid`: the network of the common PyTorch FID tools (the TensorFlow FID graph ported to
//   PyTorch: the weights file pt_inception-2015-12-05). It differs from torchvision's model in four
//   places: 1,008 logits instead of 1,000; the pooling branch of every A, C and first E block
//   averages only the in-image taps of its 3x3 window (count_include_pad=False); the pooling branch
//   of the last E block (Mixed_7c) takes the maximum instead of the average.
// - `torchvision`: torchvision's inception_v3 (aux_logits=False, transform_input=False).
//
// Both read images in [-1, 1] (what gancu's generators draw), resized to 299x299 with bilinear
// interpolation (align_corners=False, no antialiasing: F.interpolate's default, as the FID tools
// do); one-channel images are repeated to three channels first. The features are the 2,048 values
// of the global average pool (pool3), the logits those of the final linear layer.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "gancu/arena.h"
#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/metrics.h"
#include "gancu/network.h"

namespace gancu {

enum class InceptionVariant { Fid, Torchvision };

const char* inception_variant_name(InceptionVariant v);
// "fid" or "torchvision"; a UsageError naming `where` otherwise.
InceptionVariant parse_inception_variant(const std::string& name, const std::string& where);

constexpr int kInceptionFeatures = 2048;
constexpr int kInceptionSize = 299;

// The layer strings of Inception-v3 for images of `image` (h, w, c; batch ignored), and for each
// string the PyTorch module whose parameters it holds ("Mixed_5b.branch1x1.conv"; "" for strings
// without parameters). The string named `pool3` is the feature vector; the last string is the logits.
struct InceptionLayers {
  std::vector<std::string> layers;
  std::vector<std::string> modules;
  int classes = 0;
};
InceptionLayers inception_v3_layers(InceptionVariant variant, Shape image);

// An Inception-v3 network that extracts features and logits of batches of images.
class InceptionNet {
 public:
  // Random parameters (PyTorch's default init) drawn from `seed`: for benchmarks and tests.
  InceptionNet(const Exec& ex, InceptionVariant variant, Shape image, int batch, uint64_t seed = 1);
  ~InceptionNet();
  // Loads a weights file written by tools/convert_inception.py. A missing or foreign file, or
  // tensors that do not fit, are RuntimeErrors naming the file.
  static std::unique_ptr<InceptionNet> load(const Exec& ex, const std::string& path, Shape image,
                                            int batch = 16);

  InceptionVariant variant() const { return variant_; }
  int classes() const { return classes_; }
  int batch() const { return batch_; }
  Shape image() const { return image_; }
  // Identifies the weights (a hash of the file's bytes, or "random-SEED"): part of the key of
  // cached reference statistics.
  const std::string& weights_id() const { return weights_id_; }

  // pool3 features [n, 2048] and logits [n, classes] (host; either may be null) of n uint8 images
  // [n, h, w, c] on the host, scaled to [-1, 1] as in training.
  void evaluate_u8(const uint8_t* images, int64_t n, float* features, float* logits);
  // The same for float images in [-1, 1] on the host.
  void evaluate(const float* images, int64_t n, float* features, float* logits);

  Network<float>& network() { return *net_; }

 private:
  struct Classes {  // a type of its own: `InceptionNet(ex, v, image, 2, 7)` must mean seed 7
    int n;
  };
  InceptionNet(const Exec& ex, InceptionVariant variant, Shape image, int batch, Classes classes);
  void run_batch(int chunk, float* features, float* logits);

  Exec ex_;
  InceptionVariant variant_;
  Shape image_;
  int batch_ = 0, classes_ = 0;
  std::string weights_id_;
  std::unique_ptr<Network<float>> net_;
  std::vector<std::string> modules_;
  Arena arena_;
  Slot input_slot_, step_slot_;
  float* input_ = nullptr;
  int64_t* step_ = nullptr;
  int pool3_ = 0;
};

// ---- Scores on Inception features ---------------------------------------------------------------

// FID, IS and KID of a sample set (FID and KID only with a reference set).
struct InceptionResult {
  std::string variant;  // of the network: "fid" or "torchvision"
  int64_t samples = 0, reference = 0;
  bool has_reference = false;
  double fid = 0;
  MeanSpread is;                // 10 splits
  MeanSpread kid;               // 100 subsets of min(1000, samples, reference)
  nlohmann::json json() const;  // flat keys: "inception/fid", "inception/is", ...
  std::string table() const;
};

// Runs the Inception network of one weights file on images of any shape (one network per image
// shape, built when first needed) and scores sample sets against reference sets.
class InceptionJudge {
 public:
  InceptionJudge(const Exec& ex, std::string weights_path, int batch = 16);
  ~InceptionJudge();

  // Features [n, 2048] and logits [n, classes] of uint8 images [n, image] or of float images in
  // [-1, 1]; either output may be null. A progress line goes to `log` every few seconds.
  void featurize_u8(Shape image, const uint8_t* images, int64_t n, std::vector<float>* features,
                    std::vector<float>* logits, std::ostream& log);
  void featurize(Shape image, const float* images, int64_t n, std::vector<float>* features,
                 std::vector<float>* logits, std::ostream& log);

  // Features of at most `max_images` images of `data` (evenly spaced through it when it holds
  // more), read from the cache (image_cache_dir()/inception/) when an entry for the same images
  // and weights exists, else computed and stored there.
  std::vector<float> reference_features(const Dataset& data, int64_t max_images, std::ostream& log);

  // Scores of n samples' features and logits; `reference` may be null (IS only).
  InceptionResult score(const std::vector<float>& features, const std::vector<float>& logits, int64_t n,
                        const std::vector<float>* reference) const;

  int classes() const;
  InceptionVariant variant() const;

 private:
  InceptionNet& net_for(Shape image);
  Exec ex_;
  std::string path_;
  int batch_;
  std::map<std::tuple<int, int, int>, std::unique_ptr<InceptionNet>> nets_;
};

}  // namespace gancu
