#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/checkpoint.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/memory.h"
#include "gancu/session.h"

namespace gancu::cli {

namespace {
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

void add_sample(CLI::App& app) {
  struct Flags {
    std::string run, checkpoint, out;
    int64_t n = 64;
    int64_t seed = -1;
    int cls = -1;
    BackendFlags exec;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("sample", "Generate images from a trained generator");
  cmd->add_option("--run", f->run, "Run folder (its newest checkpoint is used)");
  cmd->add_option("--checkpoint", f->checkpoint, "A checkpoint file");
  cmd->add_option("--n", f->n, "Number of images (default 64)");
  cmd->add_option("--out", f->out,
                  "FILE.idx or FILE.idx.gz (uint8 IDX images), FILE.png (one grid), a folder (one PNG each); "
                  "FILE.csv for generators of 2-d points")
      ->required();
  cmd->add_option("--seed", f->seed, "Noise seed (default: the run's seed)");
  cmd->add_option(
      "--class", f->cls,
      "A conditional model: draw class K only (default: every class in turn; a PNG grid has one row "
      "per class)");
  f->exec.add_to(*cmd);
  cmd->callback([f] {
    if (f->run.empty() == f->checkpoint.empty())
      usage_error("sample: give exactly one of --run DIR or --checkpoint FILE");
    if (f->n < 1 || f->n > 1000000) usage_error("--n: must be in [1, 1000000], got ", f->n);
    Exec ex = f->exec.open();
    TrainedGan t = load_trained(ex, f->run.empty() ? f->checkpoint : f->run);
    const Shape image = t.image;
    const uint64_t seed = f->seed >= 0 ? uint64_t(f->seed) : t.cfg.seed;
    // The classes of a conditional model's samples: --class K for all, else every class in turn,
    // or for a PNG grid one row per class (n rounded up to whole rows).
    const int classes = t.cfg.classes;
    const bool class_given = f->cls != -1;
    if (class_given && classes == 0)
      usage_error("--class: ", t.checkpoint,
                  " is an unconditional model (model.classes = 0); it draws no class");
    if (class_given && (f->cls < 0 || f->cls >= classes))
      usage_error("--class: ", f->cls, " is outside the model's classes 0..", classes - 1);
    int64_t n = f->n;
    int grid_cols = int(std::ceil(std::sqrt(double(n))));
    std::vector<int32_t> requested;
    if (classes > 0) {
      if (class_given) {
        requested.assign(size_t(n), int32_t(f->cls));
      } else if (ends_with(f->out, ".png")) {
        grid_cols = int((n + classes - 1) / classes);
        requested = classes_by_row(classes, grid_cols);
        n = int64_t(requested.size());
      } else {
        requested = classes_in_turn(n, classes);
      }
    }
    Mixture2D mix;
    if (mixture_by_name(t.cfg.data, &mix)) {
      // A generator of 2-d points: its samples are coordinates, not pixels.
      if (!ends_with(f->out, ".csv"))
        usage_error("--out: ", t.cfg.data, " generators draw 2-d points; write them to FILE.csv");
      const std::vector<float> points = draw_samples(t.ex, *t.session.gan, n, seed, 1);
      std::string csv = "x,y\n";
      char line[64];
      for (int64_t i = 0; i < n; ++i) {
        std::snprintf(line, sizeof line, "%.6g,%.6g\n", points[size_t(2 * i)], points[size_t(2 * i + 1)]);
        csv += line;
      }
      atomic_write(f->out, csv);
      std::cout << "wrote " << n << " points to " << f->out << " (from " << t.checkpoint << ")\n";
      return;
    }
    if (ends_with(f->out, ".csv"))
      usage_error("--out: CSV is for generators of 2-d points; ", t.cfg.data, " generators draw images");
    const std::vector<uint8_t> pixels =
        float_to_u8(draw_samples(t.ex, *t.session.gan, n, seed, 1, requested));
    const std::string& ckpt = t.checkpoint;

    if (ends_with(f->out, ".idx") || ends_with(f->out, ".idx.gz")) {
      write_idx_images(f->out, pixels.data(), n, image.h, image.w, image.c);
    } else if (ends_with(f->out, ".png")) {
      const int cols = grid_cols;
      const GridShape g = grid_shape(int(n), image.h, image.w, cols);
      write_png(f->out, make_grid(pixels.data(), int(n), image.h, image.w, image.c, cols).data(), g.h, g.w,
                image.c);
    } else {
      make_dirs(f->out);
      for (int64_t i = 0; i < n; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "/%06lld.png", (long long)i);
        write_png(f->out + name, pixels.data() + i * image.per_sample(), image.h, image.w, image.c);
      }
    }
    const std::string which = classes == 0  ? ""
                              : class_given ? detail::concat(" of class ", f->cls)
                              : ends_with(f->out, ".png")
                                  ? detail::concat(", one row of ", grid_cols, " per class 0..", classes - 1)
                                  : detail::concat(", classes 0..", classes - 1, " in turn");
    std::cout << "wrote " << n << " samples of " << image.h << "x" << image.w << "x" << image.c << which
              << " to " << f->out << " (from " << ckpt << ")\n";
  });
}

}  // namespace gancu::cli
