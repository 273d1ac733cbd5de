#include <iostream>
#include <memory>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/evaluation.h"
#include "gancu/image_folder.h"
#include "gancu/image_io.h"
#include "gancu/inception.h"
#include "gancu/safetensors.h"
#include "gancu/session.h"

namespace gancu::cli {

namespace {

struct InceptionFlags {
  std::string weights, reference, features_out;
  int64_t reference_n = 10000;
};

// The real images FID and KID compare with: `name` read at the samples' shape (an image folder is
// decoded at that size; a data set of another shape is refused, its statistics would be of other
// images).
Dataset reference_data(const std::string& name, Shape image, const ImageFolderOptions* run_folder) {
  ImageFolderOptions folder = run_folder ? *run_folder : ImageFolderOptions{};
  if (!run_folder) {
    folder.size = image.h == image.w ? image.h : 0;
    folder.channels = image.c;
  }
  Dataset d = load_dataset(name, Split::Train, &folder);
  if (d.h != image.h || d.w != image.w || d.c != image.c)
    usage_error("--reference ", name, ": its images are ", d.h, "x", d.w, "x", d.c, ", the samples ", image.h,
                "x", image.w, "x", image.c, " (compare like with like)");
  return d;
}

// FID, IS and KID of the samples (uint8 or floats in [-1, 1]) on Inception features.
InceptionResult inception_eval(const Exec& ex, const InceptionFlags& f, Shape image, const uint8_t* u8,
                               const float* floats, int64_t n, const std::string& reference,
                               const ImageFolderOptions* run_folder) {
  InceptionJudge judge(ex, f.weights);
  // The reference set first: a wrong one is refused before the samples' long featurization.
  const Dataset ref_data = reference.empty() ? Dataset{} : reference_data(reference, image, run_folder);
  std::vector<float> features, logits;
  if (u8)
    judge.featurize_u8(image, u8, n, &features, &logits, std::cerr);
  else
    judge.featurize(image, floats, n, &features, &logits, std::cerr);
  if (!f.features_out.empty()) {
    std::map<std::string, TensorData> t;
    t["features"] = make_tensor<float>({n, kInceptionFeatures}, features.data());
    t["logits"] = make_tensor<float>({n, int64_t(judge.classes())}, logits.data());
    write_safetensors(f.features_out, t, {{"variant", inception_variant_name(judge.variant())}});
  }
  if (reference.empty()) return judge.score(features, logits, n, nullptr);
  const std::vector<float> ref = judge.reference_features(ref_data, f.reference_n, std::cerr);
  return judge.score(features, logits, n, &ref);
}

}  // namespace

void add_eval(CLI::App& app) {
  struct Flags {
    std::string run, samples, classifier;
    int64_t n = 10000;
    bool json = false;
    BackendFlags exec;
    InceptionFlags inception;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("eval", "How good and how varied a generator's samples are");
  cmd->add_option("--run", f->run, "A run folder or checkpoint: draws --n samples from its generator");
  cmd->add_option("--samples", f->samples, "An IDX file of uint8 samples (as gancu sample writes)");
  cmd->add_option("--classifier", f->classifier,
                  "The judging classifier (default: models/DATA_classifier.safetensors for the run's data)");
  cmd->add_option("--n", f->n, "Samples drawn from --run (default 10000)");
  cmd->add_option("--inception", f->inception.weights,
                  "Inception-v3 weights (tools/convert_inception.py): report FID, IS and KID on its features "
                  "instead of the classifier's numbers");
  cmd->add_option("--reference", f->inception.reference,
                  "With --inception: the real images of FID and KID, a data set name, folder or IDX file "
                  "(default: the run's data; without it --samples gets the Inception score only)");
  cmd->add_option("--reference-n", f->inception.reference_n,
                  "With --inception: at most this many reference images (default 10000)");
  cmd->add_option("--features-out", f->inception.features_out,
                  "With --inception: write the samples' features and logits to this safetensors file");
  f->exec.add_to(*cmd);
  cmd->add_flag("--json", f->json, "Print one JSON object");
  cmd->callback([f] {
    if (f->run.empty() == f->samples.empty())
      usage_error("eval: give exactly one of --run DIR or --samples FILE.idx");
    if (f->n < 2 || f->n > 1000000) usage_error("--n: must be in [2, 1000000], got ", f->n);
    if (f->inception.weights.empty() &&
        (!f->inception.reference.empty() || !f->inception.features_out.empty()))
      usage_error("--reference and --features-out go with --inception FILE");
    if (f->inception.reference_n < 2)
      usage_error("--reference-n: must be at least 2, got ", f->inception.reference_n);
    Exec ex = f->exec.open();
    if (!f->inception.weights.empty()) {
      InceptionResult r;
      std::string what;
      if (!f->run.empty()) {
        TrainedGan t = load_trained(ex, f->run);
        what = t.checkpoint;
        if (t.image.h == 1 && t.image.w == 1)
          usage_error("--inception: ", f->run, " draws 2-d points, not images");
        const std::vector<float> samples = draw_samples(t.ex, *t.session.gan, f->n, t.cfg.seed, 1);
        const ImageFolderOptions folder = folder_options(t.cfg);
        const std::string reference = f->inception.reference.empty() ? t.cfg.data : f->inception.reference;
        r = inception_eval(ex, f->inception, t.image, nullptr, samples.data(), f->n, reference,
                           f->inception.reference.empty() ? &folder : nullptr);
      } else {
        const Dataset d = read_idx_images(f->samples);
        what = f->samples;
        if (d.count < 2)
          runtime_error(f->samples, ": holds ", d.count, " images; evaluation needs at least 2");
        r = inception_eval(ex, f->inception, Shape::image(0, d.h, d.w, d.c), d.images.data(), nullptr,
                           d.count, f->inception.reference, nullptr);
      }
      if (f->json) {
        nlohmann::json j = r.json();
        j["source"] = what;
        std::cout << j.dump() << "\n";
      } else {
        std::cout << "evaluation of " << what << "\n" << r.table();
      }
      return;
    }
    EvalResult r;
    std::string what;
    if (!f->run.empty()) {
      TrainedGan t = load_trained(ex, f->run);
      what = t.checkpoint;
      // A conditional generator draws the classes in turn and is judged on them too.
      const std::vector<int32_t> requested = classes_in_turn(f->n, t.cfg.classes);
      const std::vector<float> samples = draw_samples(t.ex, *t.session.gan, f->n, t.cfg.seed, 1, requested);
      r = evaluator_for(ex, t.cfg.data, t.image, f->classifier)
              ->evaluate_generated(samples.data(), f->n, requested.empty() ? nullptr : requested.data());
    } else {
      if (f->classifier.empty())
        usage_error(
            "--classifier: required with --samples (which data set the samples imitate is not known)");
      const Dataset d = read_idx_images(f->samples);
      what = f->samples;
      if (d.count < 2) runtime_error(f->samples, ": holds ", d.count, " images; evaluation needs at least 2");
      Evaluator e(ex, Shape::image(0, d.h, d.w, d.c), f->classifier);
      r = e.evaluate_images(d.images.data(), d.count);
    }
    if (f->json) {
      nlohmann::json j = r.json();
      j["source"] = what;
      j["samples"] = r.samples;
      // The counts behind the summary numbers: per class, or per mode of a 2-d mixture.
      if (r.mixture)
        j["per_mode"] = r.mix.per_mode;
      else
        j["histogram"] = r.classes.histogram;
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "evaluation of " << what << "\n" << r.table();
    }
  });
}

}  // namespace gancu::cli
