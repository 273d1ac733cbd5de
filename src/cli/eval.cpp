#include <iostream>
#include <memory>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/evaluation.h"
#include "gancu/image_io.h"
#include "gancu/session.h"

namespace gancu::cli {

void add_eval(CLI::App& app) {
  struct Flags {
    std::string run, samples, classifier;
    int64_t n = 10000;
    bool json = false;
    BackendFlags exec;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("eval", "How good and how varied a generator's samples are");
  cmd->add_option("--run", f->run, "A run folder or checkpoint: draws --n samples from its generator");
  cmd->add_option("--samples", f->samples, "An IDX file of uint8 samples (as gancu sample writes)");
  cmd->add_option("--classifier", f->classifier,
                  "The judging classifier (default: models/DATA_classifier.safetensors for the run's data)");
  cmd->add_option("--n", f->n, "Samples drawn from --run (default 10000)");
  f->exec.add_to(*cmd);
  cmd->add_flag("--json", f->json, "Print one JSON object");
  cmd->callback([f] {
    if (f->run.empty() == f->samples.empty())
      usage_error("eval: give exactly one of --run DIR or --samples FILE.idx");
    if (f->n < 2 || f->n > 1000000) usage_error("--n: must be in [2, 1000000], got ", f->n);
    Exec ex = f->exec.open();
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
