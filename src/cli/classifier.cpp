#include "gancu/classifier.h"

#include <iostream>
#include <memory>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/session.h"

namespace gancu::cli {

void add_classifier(CLI::App& app) {
  struct Flags {
    std::string data, out, classifier;
    int epochs = 5;
    int64_t holdout = 2000, seed = 1;
    BackendFlags exec;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("classifier", "Train or check the classifiers that judge samples");
  cmd->require_subcommand(1, 1);

  CLI::App* train = cmd->add_subcommand("train", "Train a classifier and report its held-out accuracy");
  train->add_option("--data", f->data, "mnist, fashion-mnist, or a labelled IDX/CIFAR folder")->required();
  train->add_option("--out", f->out, "Where to write it (default models/DATA_classifier.safetensors)");
  train->add_option("--epochs", f->epochs, "Passes over the training images (default 5)");
  train->add_option(
      "--holdout", f->holdout,
      "Images held out where the data set has a single split (MNIST's test set here; default 2000)");
  train->add_option("--seed", f->seed, "Seed of the initial weights and the data order");
  f->exec.add_to(*train);
  train->callback([f, train] {
    if (f->epochs < 1 || f->epochs > 1000) usage_error("--epochs: must be in [1, 1000], got ", f->epochs);
    if (f->seed < 0) usage_error("--seed: must be at least 0");
    Exec ex = f->exec.open();
    const HeldoutSplit split = heldout_split(f->data, f->holdout);
    std::cerr << "gancu: classifier on " << split.train.count << " training and " << split.heldout.count
              << " held-out images of " << f->data << " (" << split.rule << ")\n";
    ClassifierTraining opt;
    opt.epochs = f->epochs;
    opt.seed = uint64_t(f->seed);
    auto c = train_classifier(ex, split, opt, std::cerr);
    c->info().data = f->data;
    std::string command = "gancu classifier train --data " + f->data + " --epochs " +
                          std::to_string(f->epochs) + " --seed " + std::to_string(f->seed);
    if (split.rule != "test-split") command += " --holdout " + std::to_string(f->holdout);
    c->info().command = command;
    const std::string out = f->out.empty() ? "models/" + f->data + "_classifier.safetensors" : f->out;
    c->save(out);
    std::cout << "held-out accuracy " << c->info().heldout_accuracy << " on " << split.heldout.count
              << " images; wrote " << out << "\n";
  });

  CLI::App* check = cmd->add_subcommand("check", "Measure a classifier's accuracy on its held-out images");
  check->add_option("--classifier", f->classifier, "The classifier file")->required();
  f->exec.add_to(*check);
  check->callback([f] {
    Exec ex = f->exec.open();
    auto c = Classifier::load(ex, f->classifier);
    const Dataset heldout = heldout_images(c->info());
    const double acc = c->accuracy(heldout);
    std::cout << "held-out accuracy " << acc << " on " << heldout.count << " images of " << c->info().data
              << " (recorded when trained: " << c->info().heldout_accuracy
              << "; made by: " << c->info().command << ")\n";
  });
}

}  // namespace gancu::cli
