// What a long run on a shared machine meets: a second trainer on the same folder, Ctrl-C and
// SIGTERM, SIGKILL at any moment (checkpoint writes included), a full disk. Each test drives the
// gancu binary as a user would and then checks the run folder with the library's own readers.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli_test_util.h"
#include "gancu/checkpoint.h"
#include "gancu/fileutil.h"
#include "gancu/plot.h"
#include "gancu/resume_policy.h"
#include "gancu/run_lock.h"
#include "gancu/session.h"
#include "process_test_util.h"

namespace gancu {
namespace {

using testing_cli::expect;
using testing_cli::run;
using testing_cli::temp;
using testing_process::Child;
using testing_process::wait_until;

// A small model with a checkpoint of about 0.8 MB (D's 66k parameters and their Adam moments):
// steps take about a millisecond, so most of a run's time goes to writing checkpoints and a
// random kill often lands inside one.
std::string small_run(const std::string& dir, int64_t steps) {
  return "train --preset mlp --backend cpu --threads 1 --data synthetic:8x8x1:256 --batch 16 --steps " +
         std::to_string(steps) + " --out " + dir +
         " --set model.z_dim=8"
         " --set 'model.generator=[\"linear out=64\", \"tanh\", \"reshape h=8 w=8 c=1\"]'"
         " --set 'model.discriminator=[\"flatten\", \"linear out=1024\", \"lrelu\", \"linear out=1\"]'"
         " --set log.log_every=1 --set log.checkpoint_every=1 --set log.sample_every=5 --set log.grid=4";
}

// The files named *.tmp.<pid> anywhere in a run folder (a writer that did not finish).
std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> found;
  for (const char* sub : {"", "/checkpoints", "/samples"}) {
    DIR* d = ::opendir((dir + sub).c_str());
    if (!d) continue;
    while (const dirent* e = ::readdir(d))
      if (std::string(e->d_name).find(".tmp.") != std::string::npos)
        found.push_back(dir + sub + "/" + e->d_name);
    ::closedir(d);
  }
  return found;
}

int64_t metrics_lines(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// The step of the newest checkpoint, after loading it completely (-1 when there is none).
int64_t load_newest_checkpoint(const std::string& dir) {
  const std::string path = latest_checkpoint(dir);
  if (path.empty()) return -1;
  Exec ex = Exec::cpu(1);
  const TrainedGan t = load_trained(ex, dir);
  EXPECT_EQ(t.checkpoint, path);
  return t.session.gan->read_step(t.ex);
}

int64_t stopped_at(const std::string& log, const std::string& signal) {
  const std::string key = "stopped by " + signal + " at step ";
  const size_t at = log.find(key);
  return at == std::string::npos ? -1 : std::atoll(log.c_str() + at + key.size());
}

TEST(Reliability, SecondTrainerOnTheSameFolderIsRefusedWithTheHoldersPid) {
  const std::string dir = temp("locked");
  Child first(small_run(dir, 1000000), dir + ".log");
  ASSERT_TRUE(wait_until([&] { return !latest_checkpoint(dir).empty(); })) << first.log();
  const std::string pid = std::to_string(first.pid());
  expect(run(small_run(dir, 10)), 1, {"is in use by another gancu train (pid " + pid, "gancu.lock"});
  expect(run("train --resume --out " + dir), 1, {"pid " + pid});
  EXPECT_EQ(first.wait(0), -1) << "the first trainer must go on running: " << first.log();

  // A crash releases the lock (the kernel drops it with the process): --resume just works.
  first.signal(SIGKILL);
  EXPECT_EQ(first.wait(), 128 + SIGKILL);
  const int64_t at = load_newest_checkpoint(dir);
  ASSERT_GT(at, 0);
  expect(run("train --resume --out " + dir + " --steps " + std::to_string(at + 2)), 0,
         {"resuming", "step " + std::to_string(at + 2) + "/"});
  EXPECT_TRUE(temp_files(dir).empty());
}

TEST(Reliability, TheLockIsHeldByAnOpenFileAndReleasedWithIt) {
  const std::string dir = temp("lock_object");
  {
    const RunLock lock(dir);
    try {
      const RunLock second(dir);  // flock is per open file: a second open in one process conflicts
      ADD_FAILURE() << "a second lock on one folder was granted";
    } catch (const RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos)
          << e.what();
    }
  }
  const RunLock again(dir);  // released by the first one's destructor
  SUCCEED();
}

// A trainer refused after it took the lock (here: D pre-training asked of a 2-d mixture, found when
// the data are loaded) leaves no run folder that it made; one the user made stays, with its files.
TEST(Reliability, ARefusedTrainerRemovesTheFolderItMadeAndNothingElse) {
  const std::string made = temp("refused_new");
  const std::string refused =
      "train --preset ring8 --backend cpu --threads 1 --set train.d_pretrain_steps=5 --out ";
  expect(run(refused + made), 2, {"train.d_pretrain_steps"});
  EXPECT_FALSE(dir_exists(made)) << made << " was left behind";

  const std::string own = temp("refused_own");
  make_dirs(own);
  expect(run(refused + own), 2, {"train.d_pretrain_steps"});
  EXPECT_TRUE(dir_exists(own)) << "a folder the user made must stay";

  const std::string nested = temp("refused_nested") + "/a/b";
  expect(run(refused + nested), 2, {"train.d_pretrain_steps"});
  EXPECT_FALSE(dir_exists(nested));
  {
    const RunLock lock(made);
    atomic_write(made + "/notes.txt", std::string("a file written while the lock was held"));
  }
  EXPECT_TRUE(file_exists(made + "/notes.txt")) << "a folder with content is never removed";
}

TEST(Reliability, StaleTemporaryFilesAreRemovedByTheNextWriter) {
  const std::string dir = temp("stale");
  make_dirs(dir + "/checkpoints");
  atomic_write(dir + "/checkpoints/step_00000001.safetensors.tmp.99999", std::string("torn"));
  atomic_write(dir + "/metrics.jsonl.tmp.12", std::string("torn"));
  atomic_write(dir + "/keep.tmp.txt", std::string("not a temporary file of gancu's"));
  { const RunLock lock(dir); }
  EXPECT_TRUE(temp_files(dir) == std::vector<std::string>{dir + "/keep.tmp.txt"});
}

void expect_clean_stop(int sig, const std::string& name) {
  const std::string dir = temp("stop_" + name);
  Child child(small_run(dir, 1000000), dir + ".log");
  // The handlers are installed before the first step; a logged step means they are in place.
  ASSERT_TRUE(wait_until([&] { return metrics_lines(dir) >= 3; })) << child.log();
  child.signal(sig);
  EXPECT_EQ(child.wait(), 128 + sig) << child.log();
  EXPECT_TRUE(child.ended_by_signal()) << "a shell expects an interrupted program to end by the signal";
  const std::string log = child.log();
  const int64_t step = stopped_at(log, name);
  ASSERT_GT(step, 0) << log;
  EXPECT_NE(log.find("continue with: gancu train --resume --out " + dir), std::string::npos) << log;
  // The step it stopped at has its checkpoint (loadable, at that step), its grid and its metrics line.
  EXPECT_EQ(load_newest_checkpoint(dir), step);
  char grid[48];
  std::snprintf(grid, sizeof grid, "/samples/step_%06lld.png", (long long)step);
  EXPECT_TRUE(file_exists(dir + grid)) << grid;
  const MetricsLog metrics = read_metrics_log(dir + "/metrics.jsonl");
  EXPECT_EQ(metrics.series.at("loss_d").back().first, step);
  EXPECT_FALSE(metrics.skipped_torn_line);
  EXPECT_TRUE(temp_files(dir).empty());
  expect(run("train --resume --out " + dir + " --steps " + std::to_string(step + 2)), 0,
         {"from step " + std::to_string(step)});
}

TEST(Reliability, SigintStopsAtTheEndOfAStepWithACheckpointAndExits130) {
  expect_clean_stop(SIGINT, "SIGINT");
}

TEST(Reliability, SigtermStopsAtTheEndOfAStepWithACheckpointAndExits143) {
  expect_clean_stop(SIGTERM, "SIGTERM");
}

TEST(Reliability, ASecondCtrlCQuitsAtOnce) {
  // Steps of a few hundred milliseconds (D: 3072 -> 2048 -> 1): the second Ctrl-C arrives long
  // before the step the first one waits for has ended.
  const std::string dir = temp("second_sigint");
  Child child(
      "train --preset mlp --backend cpu --threads 1 --data synthetic:32x32x3:256 --batch 64 --steps 100000 "
      "--out " +
          dir +
          " --set model.z_dim=8"
          " --set 'model.generator=[\"linear out=3072\", \"tanh\", \"reshape h=32 w=32 c=3\"]'"
          " --set 'model.discriminator=[\"flatten\", \"linear out=2048\", \"lrelu\", \"linear out=1\"]'"
          " --set log.log_every=1 --set log.checkpoint_every=1000",
      dir + ".log");
  ASSERT_TRUE(wait_until([&] { return metrics_lines(dir) >= 1; })) << child.log();
  child.signal(SIGINT);
  ASSERT_TRUE(wait_until([&] { return child.log().find("Ctrl-C again") != std::string::npos; }))
      << child.log();
  child.signal(SIGINT);
  EXPECT_EQ(child.wait(), 130) << child.log();
  EXPECT_TRUE(child.ended_by_signal());
  const std::string log = child.log();
  EXPECT_NE(log.find("second signal: stopping now"), std::string::npos) << log;
  EXPECT_EQ(stopped_at(log, "SIGINT"), -1) << "the second Ctrl-C waited for the step: " << log;
}

// SIGKILL at random moments: during start-up, steps, checkpoint, grid and metrics writes. After
// each kill the newest checkpoint loads completely, metrics.jsonl reads, and the next start
// resumes from the folder as it is. The seed is printed, so that a failure can be replayed.
TEST(Reliability, KilledAtRandomMomentsTheRunAlwaysResumes) {
  const std::string dir = temp("killed");
  const char* env_seed = std::getenv("GANCU_KILL_SEED");
  const unsigned seed = env_seed ? unsigned(std::atol(env_seed)) : std::random_device{}();
  std::cout << "kill seed " << seed << " (replay with GANCU_KILL_SEED=" << seed << ")\n";
  std::mt19937 rng(seed);
  // The kill moments scale with this machine's start-up time (a sanitized build starts slower):
  // the first run is killed once its first checkpoint is on disk, the others at random within a
  // few start-ups, so that they die in start-up, in steps and in writes alike.
  const auto t0 = std::chrono::steady_clock::now();
  Child first(small_run(dir, 1000000), dir + ".log");
  ASSERT_TRUE(wait_until([&] { return !latest_checkpoint(dir).empty(); })) << first.log();
  const int startup_ms = int(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  first.signal(SIGKILL);
  ASSERT_EQ(first.wait(), 128 + SIGKILL) << first.log();
  std::uniform_int_distribution<int> delay_ms(startup_ms / 2, 3 * startup_ms + 100);
  int kills_leaving_temp_files = 0, resumes = 0;
  int64_t previous = load_newest_checkpoint(dir);
  for (int round = 0; round < 16; ++round) {
    const bool resume = !latest_checkpoint(dir).empty();
    resumes += resume;
    Child child(resume ? "train --resume --out " + dir : small_run(dir, 1000000), dir + ".log");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    child.signal(SIGKILL);
    ASSERT_EQ(child.wait(), 128 + SIGKILL) << "round " << round << " ended before the kill:\n" << child.log();
    kills_leaving_temp_files += !temp_files(dir).empty();
    const int64_t newest = load_newest_checkpoint(dir);
    EXPECT_GE(newest, previous) << "round " << round << ": the run went back";
    previous = newest;
    if (metrics_lines(dir) > 0) {
      const MetricsLog m = read_metrics_log(dir + "/metrics.jsonl");
      EXPECT_GT(m.lines, 0);
    }
  }
  std::cout << "start-up " << startup_ms << " ms; 16 kills: " << resumes << " resumed starts, "
            << kills_leaving_temp_files << " left a half-written file behind, newest checkpoint at step "
            << previous << "\n";
  EXPECT_EQ(resumes, 16);

  // A torn last line, as a kill inside a write would leave: readers skip it, --resume drops it.
  ASSERT_GT(previous, 0);
  {
    std::ofstream(dir + "/metrics.jsonl", std::ios::app)
        << "{\"step\": " << previous + 1 << ", \"loss_d\": 0.6";
  }
  EXPECT_TRUE(read_metrics_log(dir + "/metrics.jsonl").skipped_torn_line);
  expect(run("train --resume --out " + dir + " --steps " + std::to_string(previous + 3)), 0,
         {"from step " + std::to_string(previous)});
  EXPECT_TRUE(temp_files(dir).empty());
  const MetricsLog m = read_metrics_log(dir + "/metrics.jsonl");
  EXPECT_FALSE(m.skipped_torn_line);
  const auto& steps = m.series.at("loss_d");
  for (size_t i = 1; i < steps.size(); ++i)
    EXPECT_LT(steps[i - 1].first, steps[i].first) << "metrics.jsonl repeats or reorders steps";
  EXPECT_EQ(steps.back().first, previous + 3);
}

// A run whose folder is on a 3 MB tmpfs: checkpoints of 0.8 MB (three kept, and the fourth's
// temporary file) fill it within a few steps. The mount is made in a private mount namespace
// (unshare), so that it disappears with the shell that made it; the folder is copied out first.
TEST(Reliability, AFullDiskEndsTheRunWithAClearMessageAndTheLastGoodCheckpoint) {
  const std::string base = temp("full_disk");
  const std::string mnt = base + "/mnt", copy = base + "/copy", log = base + "/log";
  make_dirs(mnt);
  const bool root = ::geteuid() == 0;
  // Without root, a user namespace can still mount a tmpfs where the kernel allows it.
  const std::string unshare = root ? "unshare --mount" : "unshare --user --map-root-user --mount";
  const std::string script = "mount -t tmpfs -o size=3m gancu_full_disk '" + mnt + "' || exit 90; " +
                             GANCU_BINARY + " " + small_run(mnt + "/run", 1000000) + " >'" + log +
                             "' 2>&1; code=$?; cp -a '" + mnt + "/run' '" + copy + "'; exit $code";
  // The script goes to sh through a file: no quoting of the quoted --set values.
  const std::string script_path = base + "/script.sh";
  std::ofstream(script_path) << script << "\n";
  const int status =
      std::system((unshare + " sh '" + script_path + "' >'" + base + "/mount.log' 2>&1").c_str());
  testing_cli::Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  {
    std::ifstream mount_log(base + "/mount.log");
    std::stringstream text;
    text << mount_log.rdbuf();
    r.output = text.str();
  }
  if (r.code == 90 || (r.code != 0 && r.code != 1)) {
    if (root) FAIL() << "cannot mount a tmpfs as root (exit " << r.code << "):\n" << r.output;
    GTEST_SKIP() << "NOT TESTED: a tmpfs cannot be mounted here (not root, and no user namespaces): "
                 << r.output;
  }
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  const std::string out = s.str();
  EXPECT_EQ(r.code, 1) << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  EXPECT_NE(out.find("The last good checkpoint is"), std::string::npos) << out;
  EXPECT_NE(out.find("gancu train --resume --out"), std::string::npos) << out;
  EXPECT_TRUE(temp_files(copy).empty());
  EXPECT_GT(load_newest_checkpoint(copy), 0);
  const MetricsLog m = read_metrics_log(copy + "/metrics.jsonl");
  EXPECT_FALSE(m.skipped_torn_line) << "a failed append must not leave a torn line";
}

TEST(ResumeConfig, KeysThatChangeTheModelDataOrTrainingAreRefusedAndListed) {
  const std::string dir = temp("resume_config");
  expect(run(small_run(dir, 2)), 0, {"step 2/2"});
  expect(run(small_run(dir, 4)), 2, {"already holds a run; use --resume"});
  // Model, data and objective keys: refused (exit 2), each listed with both values.
  expect(run("train --resume --out " + dir +
             " --steps 4 --batch 32 --set model.z_dim=16 --set train.loss=hinge"),
         2,
         {"model.z_dim: 8 -> 16 (the model)", "train.batch: 16 -> 32 (the data)",
          "train.loss: \"bce\" -> \"hinge\" (the objective)", "Only train.steps, log.*, eval.* and run.*"});
  expect(run("train --resume --out " + dir + " --set optim.d.lr=0.001"), 2,
         {"optim.d.lr", "(the optimizer)"});
  EXPECT_EQ(load_newest_checkpoint(dir), 2) << "a refused resume must not touch the run";
  // Steps, logging and the machine: allowed.
  expect(run("train --resume --out " + dir + " --steps 4 --threads 2 --set log.log_every=2 --set log.grid=9"),
         0, {"from step 2", "step 4/4"});
  // A hand-edited config.toml is compared with the checkpoint too.
  const std::vector<uint8_t> bytes = read_file(dir + "/config.toml");
  std::string toml(bytes.begin(), bytes.end());
  const size_t at = toml.find("z_dim = 8");
  ASSERT_NE(at, std::string::npos) << toml;
  atomic_write(dir + "/config.toml", toml.replace(at, 9, "z_dim = 4"));
  expect(run("train --resume --out " + dir + " --steps 6"), 2, {"model.z_dim: 8 -> 4"});
}

TEST(ResumeConfig, EveryKeyIsClassified) {
  for (const char* key :
       {"train.steps", "log.log_every", "log.sample_every", "log.checkpoint_every", "log.grid",
        "log.eval_every", "eval.samples", "eval.classifier", "run.backend", "run.threads", "run.math",
        "run.deterministic", "run.cuda_graph", "run.sample_bn", "description", "preset"})
    EXPECT_EQ(resume_refuses(key), "") << key;
  for (const char* key :
       {"model.z_dim", "model.latent", "model.init", "model.generator", "model.discriminator"})
    EXPECT_EQ(resume_refuses(key), "the model") << key;
  for (const char* key : {"data.name", "train.batch", "train.seed"})
    EXPECT_EQ(resume_refuses(key), "the data") << key;
  for (const char* key : {"train.loss", "train.d_steps", "train.label_smoothing", "train.gp_weight",
                          "train.clip", "train.r1_gamma", "train.r1_interval", "train.dragan_spread",
                          "train.began_gamma", "train.began_lambda_k", "train.began_k0"})
    EXPECT_EQ(resume_refuses(key), "the objective") << key;
  for (const char* side : {"optim.g.", "optim.d."})
    for (const char* key : {"name", "lr", "beta1", "beta2", "eps", "weight_decay", "momentum", "alpha"})
      EXPECT_EQ(resume_refuses(std::string(side) + key), "the optimizer") << side << key;
  // Every key a config has is one of the above (a new key fails here until it is classified).
  const Config c = load_config("mlp", "", {});
  const Config d = load_config("mlp", "", {{"train.steps", "7", "test"}});
  const std::vector<ConfigChange> changes = config_changes(c, d);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].key, "train.steps");
  EXPECT_EQ(changes[0].before, "3000");
  EXPECT_EQ(changes[0].after, "7");
}

}  // namespace
}  // namespace gancu
