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
#include "gancu/supervised.h"

namespace gancu::cli {

namespace {
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The supervised generator's grids (--sweep, --mix): label rows by mean pixel values, the values
// swept over the range of the run's data.
void write_supervised_grids(TrainedGan& t, bool sweep, const std::string& mix, int cls, int columns,
                            const std::string& out) {
  const Config& cfg = t.cfg;
  const char* flag = sweep ? "--sweep" : "--mix";
  if (!cfg.supervised())
    usage_error(flag, ": ", t.checkpoint, " is not a supervised generator (train.mode = ", cfg.mode,
                "); its input is noise, not a mean pixel value");
  if (!ends_with(out, ".png")) usage_error("--out: ", flag, " draws a grid; write it to FILE.png");
  if (columns < 2 || columns > 100) usage_error("--columns: must be in [2, 100], got ", columns);
  if (cls != -1 && (cls < 0 || cls >= cfg.classes))
    usage_error("--class: ", cls, " is outside the model's classes 0..", cfg.classes - 1);
  if (!sweep && cls != -1) usage_error("--class: goes with --sweep (a --mix names its classes)");
  std::vector<std::pair<int, float>> parts;
  if (!sweep) {
    check_reads_label_linearly(cfg, "--mix");
    parts = parse_label_mix(mix, cfg.classes, "--mix");
  }
  const ImageFolderOptions folder = folder_options(cfg);
  const PixelLevels levels = pixel_levels(load_dataset(cfg.data, Split::Train, &folder), cfg.classes);
  const std::vector<float> swept = sweep_levels(levels, columns);
  SupervisedGrid grid = sweep ? sweep_grid(cfg.classes, swept) : mix_grid(cfg.classes, parts, swept);
  if (sweep && cls != -1) {
    grid.rows = {grid.rows[size_t(cls)]};
    grid.row_names = {grid.row_names[size_t(cls)]};
  }
  write_supervised_grid(t.ex, *t.session.gan, grid, out);
  std::string rows;
  for (const auto& name : grid.row_names) rows += (rows.empty() ? "" : "; ") + name;
  std::printf(
      "wrote a grid of %zu rows (labels: %s) by %d mean pixel values from %.4g to %.4g to %s (from %s)\n",
      grid.rows.size(), rows.c_str(), columns, double(swept.front()), double(swept.back()), out.c_str(),
      t.checkpoint.c_str());
}
}  // namespace

void add_sample(CLI::App& app) {
  struct Flags {
    std::string run, checkpoint, out;
    int64_t n = 64;
    int64_t seed = -1;
    int cls = -1;
    bool sweep = false;
    std::string mix;
    int columns = 10;
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
  cmd->add_flag(
      "--sweep", f->sweep,
      "A supervised generator: a grid with one row per class (or --class K's) and one column per mean "
      "pixel value, from low to high over the data's range (1st to 99th percentile)");
  cmd->add_option("--mix", f->mix,
                  "A supervised generator: a grid of the classes of the mix A:wa,B:wb[,...] (weights >= 0 "
                  "summing to 1), one row each, then a row of the mixed label sum w_k onehot(k); columns as "
                  "--sweep");
  CLI::Option* columns =
      cmd->add_option("--columns", f->columns, "--sweep, --mix: the mean pixel values per row (default 10)");
  f->exec.add_to(*cmd);
  cmd->callback([f, columns] {
    if (f->run.empty() == f->checkpoint.empty())
      usage_error("sample: give exactly one of --run DIR or --checkpoint FILE");
    if (f->n < 1 || f->n > 1000000) usage_error("--n: must be in [1, 1000000], got ", f->n);
    Exec ex = f->exec.open();
    if (f->sweep && !f->mix.empty()) usage_error("sample: give --sweep or --mix, not both");
    if (columns->count() > 0 && !f->sweep && f->mix.empty())
      usage_error("--columns: goes with --sweep or --mix");
    TrainedGan t = load_trained(ex, f->run.empty() ? f->checkpoint : f->run);
    if (f->sweep || !f->mix.empty())
      return write_supervised_grids(t, f->sweep, f->mix, f->cls, f->columns, f->out);
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
