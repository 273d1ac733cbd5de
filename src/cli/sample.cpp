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
    std::string run, checkpoint, out, backend = "auto";
    int64_t n = 64;
    int64_t seed = -1;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("sample", "Generate images from a trained generator");
  cmd->add_option("--run", f->run, "Run folder (its newest checkpoint is used)");
  cmd->add_option("--checkpoint", f->checkpoint, "A checkpoint file");
  cmd->add_option("--n", f->n, "Number of images (default 64)");
  cmd->add_option(
         "--out", f->out,
         "FILE.idx or FILE.idx.gz (uint8 IDX images), FILE.png (one grid), or a folder (one PNG each)")
      ->required();
  cmd->add_option("--seed", f->seed, "Noise seed (default: the run's seed)");
  cmd->add_option("--backend", f->backend, "cpu, cuda or auto");
  cmd->add_option("--threads", f->threads, "CPU threads (0: all cores)");
  cmd->callback([f] {
    if (f->run.empty() == f->checkpoint.empty())
      usage_error("sample: give exactly one of --run DIR or --checkpoint FILE");
    if (f->n < 1 || f->n > 1000000) usage_error("--n: must be in [1, 1000000], got ", f->n);
    if (f->threads < 0) usage_error("--threads: must be at least 0, got ", f->threads);
    std::string ckpt = f->checkpoint;
    if (!f->run.empty()) {
      if (!dir_exists(f->run)) runtime_error("--run: ", f->run, " is not a folder");
      ckpt = latest_checkpoint(f->run);
      if (ckpt.empty())
        runtime_error("--run: ", f->run, " has no checkpoints (", f->run, "/checkpoints/ is empty)");
    }
    if (!file_exists(ckpt)) runtime_error("--checkpoint: ", ckpt, " not found");
    const Config cfg = checkpoint_config(ckpt);
    const Shape image = checkpoint_image(ckpt);
    Exec ex = open_backend(f->backend, f->threads, cfg.math, std::cerr);
    GanSession s = make_session(cfg, image.with_batch(cfg.batch), cfg.batch, ex);
    s.gan->initialize(ex);
    load_checkpoint(ex, *s.gan, ckpt);

    const int64_t n = f->n;
    Buffer<float> z(ex, size_t(n) * cfg.z_dim), images(ex, size_t(n) * image.per_sample());
    s.gan->fixed_noise(ex, n, f->seed >= 0 ? uint64_t(f->seed) : cfg.seed, 1, z.data());
    s.gan->generate(ex, z.data(), n, images.data());
    const std::vector<uint8_t> pixels = float_to_u8(images.download());

    if (ends_with(f->out, ".idx") || ends_with(f->out, ".idx.gz")) {
      write_idx_images(f->out, pixels.data(), n, image.h, image.w, image.c);
    } else if (ends_with(f->out, ".png")) {
      const int cols = int(std::ceil(std::sqrt(double(n))));
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
    std::cout << "wrote " << n << " samples of " << image.h << "x" << image.w << "x" << image.c << " to "
              << f->out << " (from " << ckpt << ")\n";
  });
}

}  // namespace gancu::cli
