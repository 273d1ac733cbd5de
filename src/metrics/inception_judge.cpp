// FID, IS and KID on Inception features (inception.h): featurizing in batches with a progress
// line, the cache of reference features, and the scores.
#include <chrono>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <type_traits>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/fnv_hash.h"
#include "gancu/image_folder.h"
#include "gancu/inception.h"
#include "gancu/safetensors.h"

namespace gancu {

namespace {

constexpr const char* kReferenceFormat = "gancu-inception-reference/1";
constexpr int64_t kFeaturizeChunk = 256;  // images per progress check

// Host softmax of logit rows, in double for the exponentials.
std::vector<float> softmax_rows(const std::vector<float>& logits, int64_t n, int classes) {
  std::vector<float> probs(logits.size());
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * classes;
    const float top = *std::max_element(row, row + classes);
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(double(row[c] - top));
    for (int c = 0; c < classes; ++c)
      probs[size_t(i * classes + c)] = float(std::exp(double(row[c] - top)) / sum);
  }
  return probs;
}

// Calls `run(begin, count)` over [0, n) in chunks and reports progress every few seconds.
template <class Run>
void in_chunks(int64_t n, const char* what, std::ostream& log, Run run) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto last = start;
  for (int64_t begin = 0; begin < n; begin += kFeaturizeChunk) {
    const int64_t count = std::min(kFeaturizeChunk, n - begin);
    run(begin, count);
    const auto now = Clock::now();
    const double since_last = std::chrono::duration<double>(now - last).count();
    if ((since_last > 10 || begin + count == n) && n > kFeaturizeChunk) {
      const double elapsed = std::chrono::duration<double>(now - start).count();
      log << "inception: " << what << " " << begin + count << "/" << n << " images, " << std::fixed
          << std::setprecision(1) << double(begin + count) / elapsed << " images/s\n"
          << std::defaultfloat;
      last = now;
    }
  }
}

// Features and logits of n images (uint8, or floats in [-1, 1]) through `net`, in chunks with a
// progress line.
template <class Pixel>
void featurize_with(InceptionNet& net, Shape image, const Pixel* images, int64_t n,
                    std::vector<float>* features, std::vector<float>* logits, std::ostream& log) {
  if (features) features->assign(size_t(n) * kInceptionFeatures, 0.0f);
  if (logits) logits->assign(size_t(n) * size_t(net.classes()), 0.0f);
  in_chunks(n, "featurized", log, [&](int64_t begin, int64_t count) {
    float* f = features ? features->data() + begin * kInceptionFeatures : nullptr;
    float* l = logits ? logits->data() + begin * net.classes() : nullptr;
    if constexpr (std::is_same_v<Pixel, uint8_t>)
      net.evaluate_u8(images + begin * image.per_sample(), count, f, l);
    else
      net.evaluate(images + begin * image.per_sample(), count, f, l);
  });
}

}  // namespace

InceptionJudge::InceptionJudge(const Exec& ex, std::string weights_path, int batch)
    : ex_(ex), path_(std::move(weights_path)), batch_(batch) {
  if (!file_exists(path_))
    runtime_error(path_,
                  ": no such Inception weights file (convert one with tools/convert_inception.py; "
                  "docs/evaluation.md says where the weights come from)");
}

InceptionJudge::~InceptionJudge() = default;

InceptionNet& InceptionJudge::net_for(Shape image) {
  const auto key = std::make_tuple(image.h, image.w, image.c);
  auto it = nets_.find(key);
  if (it == nets_.end())
    it = nets_.emplace(key, InceptionNet::load(ex_, path_, image.with_batch(0), batch_)).first;
  return *it->second;
}

int InceptionJudge::classes() const {
  if (nets_.empty()) runtime_error("inception: no network built yet");
  return nets_.begin()->second->classes();
}

InceptionVariant InceptionJudge::variant() const {
  if (nets_.empty()) runtime_error("inception: no network built yet");
  return nets_.begin()->second->variant();
}

void InceptionJudge::featurize_u8(Shape image, const uint8_t* images, int64_t n, std::vector<float>* features,
                                  std::vector<float>* logits, std::ostream& log) {
  featurize_with(net_for(image), image, images, n, features, logits, log);
}

void InceptionJudge::featurize(Shape image, const float* images, int64_t n, std::vector<float>* features,
                               std::vector<float>* logits, std::ostream& log) {
  featurize_with(net_for(image), image, images, n, features, logits, log);
}

std::vector<float> InceptionJudge::reference_features(const Dataset& data, int64_t max_images,
                                                      std::ostream& log) {
  if (data.count < 2)
    runtime_error(data.name, ": a reference set needs at least 2 images, it holds ", data.count);
  const Shape image = Shape::image(0, data.h, data.w, data.c);
  InceptionNet& net = net_for(image);
  // Evenly spaced through the set: a folder read class by class still gives every class its share.
  const int64_t n = std::min(max_images, data.count);
  const int64_t per_image = image.per_sample();
  std::vector<uint8_t> chosen(size_t(n * per_image));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = i * data.count / n;
    std::copy(data.images.begin() + src * per_image, data.images.begin() + (src + 1) * per_image,
              chosen.begin() + i * per_image);
  }
  // The key is the images themselves and the weights: any change to either misses the cache.
  Fnv key;
  key.add(kReferenceFormat);
  key.add(net.weights_id());
  key.add_value(image.h);
  key.add_value(image.w);
  key.add_value(image.c);
  key.add_value(n);
  key.add(chosen.data(), chosen.size());
  const std::string root = image_cache_dir();
  const std::string path = root.empty() ? std::string() : root + "/inception/" + key.hex() + ".safetensors";
  if (!path.empty() && file_exists(path)) {
    try {
      const SafeTensors f = read_safetensors(path);
      const auto it = f.tensors.find("features");
      if (it != f.tensors.end() && it->second.shape == std::vector<int64_t>{n, kInceptionFeatures}) {
        log << "inception: reference features of " << data.name << " (" << n << " images) from the cache "
            << path << "\n";
        return tensor_values<float>(it->second, path);
      }
      log << "gancu: note: the cache entry " << path << " holds other shapes; featurizing again\n";
    } catch (const std::exception& e) {
      log << "gancu: note: the cache entry " << path << " is unreadable (" << e.what()
          << "); featurizing again\n";
    }
  }
  log << "inception: featurizing " << n << " reference images of " << data.name << "\n";
  std::vector<float> features;
  featurize_u8(image, chosen.data(), n, &features, nullptr, log);
  if (!path.empty()) {
    try {
      make_dirs(root + "/inception");
      std::map<std::string, TensorData> t;
      t["features"] = make_tensor<float>({n, kInceptionFeatures}, features.data());
      write_safetensors(path, t,
                        {{"format", kReferenceFormat}, {"data", data.name}, {"weights", net.weights_id()}});
    } catch (const std::exception& e) {
      // A cache that cannot be written costs time next run, not this result.
      log << "gancu: note: could not cache the reference features (" << e.what() << ")\n";
    }
  }
  return features;
}

InceptionResult InceptionJudge::score(const std::vector<float>& features, const std::vector<float>& logits,
                                      int64_t n, const std::vector<float>* reference) const {
  InceptionResult r;
  r.variant = inception_variant_name(variant());
  r.samples = n;
  const int classes = this->classes();
  const std::vector<float> probs = softmax_rows(logits, n, classes);
  r.is = inception_score_splits(probs.data(), n, classes, int(std::min<int64_t>(10, n)));
  if (reference) {
    const int64_t n_ref = int64_t(reference->size()) / kInceptionFeatures;
    r.has_reference = true;
    r.reference = n_ref;
    r.fid = frechet_distance(fit_gaussian(features.data(), n, kInceptionFeatures),
                             fit_gaussian(reference->data(), n_ref, kInceptionFeatures));
    r.kid = kernel_inception_distance(features.data(), n, reference->data(), n_ref, kInceptionFeatures);
  }
  return r;
}

nlohmann::json InceptionResult::json() const {
  nlohmann::json j;
  j["inception/variant"] = variant;
  j["inception/samples"] = samples;
  j["inception/is"] = is.mean;
  j["inception/is_std"] = is.std;
  if (has_reference) {
    j["inception/reference"] = reference;
    j["inception/fid"] = fid;
    j["inception/kid"] = kid.mean;
    j["inception/kid_std"] = kid.std;
  }
  return j;
}

std::string InceptionResult::table() const {
  std::ostringstream s;
  s << std::fixed;
  s << "  Inception-v3 (" << variant << " weights), " << samples << " samples";
  if (has_reference) s << " against " << reference << " reference images";
  s << "\n";
  if (has_reference) {
    // General notation: a network without its trained weights can give FIDs of 1e20.
    s << std::defaultfloat << std::setprecision(6);
    s << "  FID                " << fid << "\n";
    s << "  KID                " << kid.mean << " +- " << kid.std << "\n";
    s << std::fixed;
  }
  s << "  Inception score    " << std::setprecision(3) << is.mean << " +- " << is.std << "\n";
  if (!has_reference) s << "  (FID and KID need a reference set: --reference DATA)\n";
  return s.str();
}

}  // namespace gancu
