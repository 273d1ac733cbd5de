// gancu compare: the same saved noise vectors through several generators (the Minibatch-GAN
// seed's method of comparing mode collapse): one picture per noise set with a row per run, and a
// table of how many distinct classes each run draws from each set.
//
// Runs are columns by position, never keyed by path: a path given twice is two columns, the second
// labelled "PATH #2"; two spellings of one folder are two columns under their own paths.
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/evaluation.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/memory.h"
#include "gancu/safetensors.h"
#include "gancu/session.h"

namespace gancu::cli {

namespace {

// One distinct label per run, in the order given: the path, with " #k" appended to a repetition
// (the smallest k >= 2 that no other label has).
std::vector<std::string> column_labels(const std::vector<std::string>& runs) {
  std::vector<std::string> labels;
  std::set<std::string> used;
  for (const auto& r : runs) {
    std::string label = r;
    for (int k = 2; used.count(label); ++k) label = r + " #" + std::to_string(k);
    used.insert(label);
    labels.push_back(label);
  }
  return labels;
}

}  // namespace

void add_compare(CLI::App& app) {
  struct Flags {
    std::vector<std::string> runs;
    std::string out = "compare", classifier;
    int sets = 8, per_set = 9;
    BackendFlags exec;
    int64_t seed = 1;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("compare", "Feed the same noise to several generators, side by side");
  cmd->add_option("runs", f->runs, "Run folders or checkpoints (two or more)")->required();
  cmd->add_option("--sets", f->sets, "Noise sets (default 8)");
  cmd->add_option("--per-set", f->per_set, "Noise vectors per set (default 9)");
  cmd->add_option("--out", f->out,
                  "Folder for set_NN.png, noise.safetensors and table.json (default compare/)");
  cmd->add_option("--classifier", f->classifier,
                  "Judging classifier (default: the shipped one for the runs' data)");
  cmd->add_option("--seed", f->seed, "Seed of the noise sets (default 1)");
  f->exec.add_to(*cmd);
  cmd->add_flag("--json", f->json, "Print the table as JSON");
  cmd->callback([f] {
    if (f->runs.size() < 2) usage_error("compare: give at least two runs");
    if (f->sets < 1 || f->sets > 1000) usage_error("--sets: must be in [1, 1000], got ", f->sets);
    if (f->per_set < 1 || f->per_set > 1000) usage_error("--per-set: must be in [1, 1000], got ", f->per_set);
    if (f->seed < 0) usage_error("--seed: must be at least 0");
    Exec ex = f->exec.open();
    std::vector<TrainedGan> gans;
    for (const auto& r : f->runs) gans.push_back(load_trained(ex, r));
    const TrainedGan& first = gans.front();
    for (const auto& g : gans) {
      if (g.cfg.supervised())
        usage_error("compare: ", g.checkpoint,
                    " was trained in train.mode = supervised: it reads an image's mean "
                    "pixel value, not noise; draw its grids with gancu sample --sweep or --mix");
      if (g.cfg.z_dim != first.cfg.z_dim || g.cfg.latent != first.cfg.latent || g.image != first.image)
        usage_error("compare: ", g.checkpoint, " has another latent space or image shape than ",
                    first.checkpoint, " (z_dim ", g.cfg.z_dim, " vs ", first.cfg.z_dim,
                    "): the same noise means nothing across them");
    }
    if (first.image.per_sample() == 2) usage_error("compare: works on image generators, not 2-d points");
    Evaluator judge(ex, first.image, resolve_classifier(f->classifier, first.cfg.data));
    make_dirs(f->out);

    const std::vector<std::string> labels = column_labels(f->runs);
    const Shape im = first.image;
    const int n = f->per_set;
    std::map<std::string, TensorData> noise;
    nlohmann::json table = nlohmann::json::array();
    std::vector<std::vector<int>> distinct(gans.size());
    for (int s = 0; s < f->sets; ++s) {
      // The noise of set s, saved so that the comparison can be repeated with other tools.
      Buffer<float> z(ex, size_t(n) * first.cfg.z_dim);
      first.session.gan->fixed_noise(ex, n, uint64_t(f->seed), 100 + uint64_t(s), z.data());
      const std::vector<float> zh = z.download();
      char name[32];
      std::snprintf(name, sizeof name, "set_%02d", s);
      noise[name] = make_tensor<float>({n, first.cfg.z_dim}, zh.data());
      std::vector<uint8_t> rows;  // one row of n images per run
      nlohmann::json entry = {{"set", s}, {"runs", nlohmann::json::array()}};
      for (size_t g = 0; g < gans.size(); ++g) {
        Buffer<float> images(ex, size_t(n) * im.per_sample());
        gans[g].session.gan->generate(gans[g].ex, z.data(), n, images.data());
        const std::vector<uint8_t> px = float_to_u8(images.download());
        rows.insert(rows.end(), px.begin(), px.end());
        const std::vector<int> classes = judge.classify(px.data(), n);
        const int count = int(std::set<int>(classes.begin(), classes.end()).size());
        distinct[g].push_back(count);
        entry["runs"].push_back({{"run", labels[g]},
                                 {"path", f->runs[g]},
                                 {"checkpoint", gans[g].checkpoint},
                                 {"distinct_classes", count},
                                 {"classes", classes}});
      }
      table.push_back(entry);
      const GridShape gs = grid_shape(int(gans.size()) * n, im.h, im.w, n);
      write_png(f->out + "/" + name + ".png",
                make_grid(rows.data(), int(gans.size()) * n, im.h, im.w, im.c, n).data(), gs.h, gs.w, im.c);
    }
    write_safetensors(f->out + "/noise.safetensors", noise,
                      {{"seed", std::to_string(f->seed)},
                       {"latent", first.cfg.latent == NoiseKind::Normal ? "normal" : "uniform"}});
    atomic_write(f->out + "/table.json", table.dump(2) + "\n");
    if (f->json) {
      std::cout << table.dump() << "\n";
      return;
    }
    std::cout << "distinct classes among " << n << " samples of each noise set (rows: sets; pictures in "
              << f->out << "/set_NN.png, one row per run in this order)\n| set |";
    for (const auto& label : labels) std::cout << " " << label << " |";
    std::cout << "\n|---|";
    for (size_t g = 0; g < gans.size(); ++g) std::cout << "---|";
    std::cout << "\n";
    for (int s = 0; s < f->sets; ++s) {
      std::cout << "| " << s << " |";
      for (size_t g = 0; g < gans.size(); ++g) std::cout << " " << distinct[g][size_t(s)] << " |";
      std::cout << "\n";
    }
    std::cout << "| mean |";
    for (size_t g = 0; g < gans.size(); ++g) {
      double sum = 0;
      for (int c : distinct[g]) sum += c;
      char mean[32];
      std::snprintf(mean, sizeof mean, " %.2f |", sum / f->sets);
      std::cout << mean;
    }
    std::cout << std::endl;
  });
}

}  // namespace gancu::cli
