#include <ctime>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/comm.h"
#include "gancu/fileutil.h"
#include "gancu/session.h"
#include "gancu/stop_signal.h"
#include "gancu/trainer.h"

namespace gancu::cli {

namespace {
std::string default_run_dir(const std::string& preset) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + (preset.empty() ? std::string("run") : preset) + "-" + stamp;
}
}  // namespace

void add_train(CLI::App& app) {
  struct Flags {
    ModelFlags model;
    std::string out;
    bool resume = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("train", "Train a GAN into a run folder");
  f->model.add_to(*cmd, true);
  cmd->add_option("--out", f->out, "Run folder (default: runs/PRESET-DATE-TIME)");
  cmd->add_flag("--resume", f->resume, "Continue the run in --out from its newest checkpoint");
  cmd->callback([f] {
    std::vector<ConfigOverride> overrides = f->model.overrides();
    Config cfg;
    if (f->resume) {
      if (f->out.empty()) usage_error("--resume: name the run folder with --out");
      if (!f->model.preset.empty() || !f->model.config.empty())
        usage_error(
            "--resume: the run's own config.toml is used; drop --preset/--config (use --set to change keys)");
      const std::string path = f->out + "/config.toml";
      if (!file_exists(path))
        runtime_error("--resume: ", path, " not found (is ", f->out, " a gancu run folder?)");
      const std::vector<uint8_t> text = read_file(path);
      cfg = load_config_text(std::string(text.begin(), text.end()), path, overrides);
    } else {
      cfg = load_config(f->model.preset, f->model.config, overrides);
    }
    // In a data-parallel job rank 0 speaks for all, and its default folder name (a time stamp) is
    // everyone's.
    Communicator& comm = world();
    comm.set_timeout(cfg.collective_timeout_s);
    std::string out = f->out.empty() ? default_run_dir(cfg.preset) : f->out;
    comm.broadcast_string(&out, "the run folder's name");
    std::ostringstream quiet;
    std::ostream& log = comm.rank() == 0 ? std::cerr : quiet;
    Exec ex = open_backend(cfg.backend, cfg.threads, cfg.math, log);
    const TrainResult r = train(cfg, ex, TrainRun{out, f->resume, &log});
    if (comm.rank() != 0) {
      if (r.stopped_by != 0) die_by_signal(r.stopped_by);
      return;
    }
    std::cout << "run folder:  " << out << "\n";
    if (!r.last_samples.empty()) std::cout << "samples:     " << r.last_samples << "\n";
    if (!r.last_checkpoint.empty()) std::cout << "checkpoint:  " << r.last_checkpoint << "\n";
    if (!r.video.empty()) std::cout << "video:       " << r.video << "\n";
    std::cout << "TensorBoard: tensorboard --logdir " << out << "\n";
    // Stopped by Ctrl-C or SIGTERM: the checkpoint is written; end as an interrupted program does.
    if (r.stopped_by != 0) die_by_signal(r.stopped_by);
  });
}

}  // namespace gancu::cli
