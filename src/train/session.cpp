#include "gancu/session.h"

#include <algorithm>
#include <thread>

#include "gancu/blas_kernel.h"
#include "gancu/check.h"
#include "gancu/checkpoint.h"
#include "gancu/comm.h"
#include "gancu/fileutil.h"
#include "gancu/ops.h"

namespace gancu {

Exec open_backend(const std::string& requested, int threads, const std::string& math, std::ostream& log) {
  std::string why;
  Backend backend = Backend::CPU;
  if (requested == "cuda") {
    if (!cuda_available(&why)) runtime_error("--backend cuda: no usable GPU (", why, ")");
    backend = Backend::CUDA;
  } else if (requested == "auto") {
#if GANCU_CUDA_EMULATION
    // The emulator is a test device, orders of magnitude slower than the CPU backend: only an
    // explicit --backend cuda runs on it.
    why = "the CUDA backend of this build is emulated; --backend cuda runs it";
#else
    backend = cuda_available(&why) ? Backend::CUDA : Backend::CPU;
#endif
  } else if (requested != "cpu") {
    usage_error("--backend: expected auto, cpu or cuda, got '", requested, "'");
  }
  Exec ex;
  // The ranks of a data-parallel job on one node take a GPU each, or share the CPU's cores.
  const Communicator& comm = world();
  if (backend == Backend::CUDA) {
    try {
      ex = Exec::cuda(comm.local_rank());
    } catch (const RuntimeError& e) {
      // The device answered the probe but could not be set up (memory full, a cuDNN library
      // missing): auto still has the CPU; an explicit --backend cuda fails with the reason.
      if (requested != "auto") throw;
      why = e.what();
      backend = Backend::CPU;
    }
  }
  if (backend == Backend::CPU) {
    if (threads == 0 && comm.local_size() > 1) {
      const unsigned cores = std::thread::hardware_concurrency();
      threads = std::max(1, int(cores) / comm.local_size());
    }
    ex = Exec::cpu(threads);
  }
  ex.set_tf32(math == "tf32");
  if (backend == Backend::CUDA)
    log << "gancu: backend cuda" << (comm.size() > 1 ? detail::concat(", device ", comm.local_rank()) : "")
        << (requested == "auto" ? " (a GPU is present)" : "") << "\n";
  else
    log << "gancu: backend cpu, " << ex.threads() << " threads, OpenBLAS " << blas_kernel_name() << " kernels"
        << (requested == "auto" ? " (no GPU: " + why + ")" : "") << "\n";
  if (backend == Backend::CPU) {
    const std::string blas_note = blas_kernel_note();
    if (!blas_note.empty()) log << "gancu: note: " << blas_note << "\n";
  }
  return ex;
}

namespace {
GanSession plan_session(std::unique_ptr<Gan> gan, const Config& cfg, Exec& ex, bool record_penalty_draws,
                        bool sample_only) {
  GanSession s;
  s.gan = std::move(gan);
  if (record_penalty_draws) s.gan->record_penalty_draws();
  ex.set_deterministic(cfg.deterministic);  // before planning: the convolutions' algorithms
  ArenaPlan plan;
  s.gan->plan(plan, ex, sample_only);
  s.arena = Arena(ex.backend(), std::move(plan));
  s.gan->bind(s.arena);
  ex.set_workspace(s.arena.workspace(), s.arena.workspace_bytes());
  return s;
}
}  // namespace

GanSession make_session(const Config& cfg, Shape image, int batch, Exec& ex, bool record_penalty_draws,
                        bool sample_only) {
  return plan_session(std::make_unique<Gan>(cfg, image, batch), cfg, ex, record_penalty_draws, sample_only);
}

GanSession make_session(const Config& cfg, Shape image, Shard shard, Exec& ex) {
  return plan_session(std::make_unique<Gan>(cfg, image, shard), cfg, ex, false, false);
}

Shape generator_image(const Config& cfg) {
  const Network<float> g("G", 1, cfg.generator, "model.generator",
                         network_inputs(cfg, Shape::features(1, cfg.z_dim)), cfg.init);
  return g.output_shape().with_batch(0);
}

DeviceDataset::DeviceDataset(const Exec& ex, const Dataset& data, Shard shard, uint64_t seed)
    : images_(ex, data.images), labels_(ex, data.labels) {
  gather_.num_images = data.count;
  gather_.image_elems = int64_t(data.image_bytes());
  gather_.batch = shard.batch;
  gather_.first = shard.first;
  gather_.global_batch = shard.global_batch;
  gather_.seed = seed;
  source_ = [this](const Exec& e, float* out, int32_t* classes, const int64_t* data_step) {
    ops::gather_batch<float>(e, gather_, images_.data(), data_step, out);
    if (classes) {
      GANCU_CHECK(labels_.size() > 0, "a conditional model's real batch needs labels (checked when loaded)");
      ops::gather_labels<float>(e, gather_, labels_.data(), data_step, classes);
    }
  };
}

TrainedGan load_trained(const Exec& ex, const std::string& run_or_checkpoint) {
  TrainedGan t;
  t.ex = ex;
  t.checkpoint = run_or_checkpoint;
  if (dir_exists(run_or_checkpoint)) {
    t.checkpoint = latest_checkpoint(run_or_checkpoint);
    if (t.checkpoint.empty())
      runtime_error(run_or_checkpoint, " has no checkpoints (", run_or_checkpoint,
                    "/checkpoints/ is empty or missing)");
  } else if (!file_exists(run_or_checkpoint)) {
    runtime_error(run_or_checkpoint, ": no such run folder or checkpoint file");
  }
  t.cfg = checkpoint_config(t.checkpoint);
  t.image = checkpoint_image(t.checkpoint);
  t.session = make_session(t.cfg, t.image.with_batch(t.cfg.batch), t.cfg.batch, t.ex, false, true);
  t.session.gan->initialize(t.ex);
  load_checkpoint(t.ex, *t.session.gan, t.checkpoint);
  return t;
}

std::vector<float> draw_samples(const Exec& ex, Gan& gan, int64_t n, uint64_t seed, uint64_t set_id,
                                const std::vector<int32_t>& classes) {
  GANCU_CHECK(classes.empty() || int64_t(classes.size()) == n, "draw_samples: ", classes.size(),
              " classes for ", n, " samples");
  // Every command that draws from noise (sample, eval, compare) comes through here.
  if (gan.config().supervised())
    usage_error(
        "this generator was trained in train.mode = supervised: it reads an image's mean pixel "
        "value, not noise, and draws no samples from noise; draw its grids with gancu sample --sweep "
        "or --mix A:wa,B:wb (docs/conditional.md#the-supervised-generator)");
  const int64_t per_sample = gan.image().per_sample();
  Buffer<float> z(ex, size_t(n) * gan.config().z_dim), images(ex, size_t(n) * per_sample);
  gan.fixed_noise(ex, n, seed, set_id, z.data());
  gan.generate(ex, z.data(), n, images.data(), classes.empty() ? nullptr : classes.data());
  return images.download();
}

std::vector<int32_t> classes_in_turn(int64_t n, int classes) {
  std::vector<int32_t> out(classes > 0 ? size_t(n) : 0);
  for (size_t i = 0; i < out.size(); ++i) out[i] = int32_t(int64_t(i) % classes);
  return out;
}

std::vector<int32_t> classes_by_row(int classes, int cols) {
  std::vector<int32_t> out(size_t(classes) * size_t(cols));
  for (size_t i = 0; i < out.size(); ++i) out[i] = int32_t(i / size_t(cols));
  return out;
}

void check_conditional_data(const Config& cfg, const Dataset& data) {
  if (cfg.classes == 0) return;
  if (data.labels.empty())
    usage_error("model.classes = ", cfg.classes, ": a conditional model needs class labels, but ", data.name,
                " has none (an image folder gets classes from its sub-folders; or set model.classes = 0 and "
                "an unconditional preset)");
  int largest = 0;
  for (uint8_t l : data.labels) largest = std::max(largest, int(l));
  if (largest >= cfg.classes)
    usage_error("model.classes = ", cfg.classes, ": ", data.name, " has a label ", largest,
                ", outside the model's classes 0..", cfg.classes - 1,
                " (set model.classes = ", std::max(data.num_classes, largest + 1), ")");
}

bool mixture_by_name(const std::string& name, Mixture2D* out) {
  Mixture2D m;
  if (name == "ring8") {
    m.grid = false;
    m.modes = 8;
    m.scale = 2.0f;
    m.std = 0.02f;
  } else if (name == "grid25") {
    m.grid = true;
    m.modes = 25;
    m.scale = 2.0f;
    m.std = 0.05f;
  } else {
    return false;
  }
  if (out) *out = m;
  return true;
}

RealData::RealData(const Exec& ex, const std::string& name, int batch, uint64_t seed)
    : RealData(ex, name, Shard{0, batch, batch}, seed) {}

ImageFolderOptions folder_options(const Config& cfg) {
  const Shape g = generator_image(cfg);
  ImageFolderOptions o;
  o.size = g.h == g.w ? g.h : 0;  // load_image_folder refuses 0 with the generator's shape
  o.channels = g.c;
  o.strict = cfg.data_strict;
  return o;
}

RealData::RealData(const Exec& ex, const std::string& name, Shard shard, uint64_t seed,
                   const ImageFolderOptions* folder) {
  if (mixture_by_name(name, &mixture_)) {
    is_mixture_ = true;
    mixture_.seed = seed;
    image_ = Shape::features(0, 2);
    const Mixture2D mix = mixture_;
    if (shard.whole()) {
      source_ = [mix, batch = shard.batch](const Exec& e, float* out, int32_t*, const int64_t* data_step) {
        ops::sample_mixture<float>(e, mix, batch, data_step, out);
      };
      return;
    }
    // A rank draws the global batch's points (two numbers each: cheap) and keeps its rows.
    mixture_batch_ = std::make_unique<Buffer<float>>(ex, size_t(shard.global_batch) * 2);
    source_ = [mix, shard, all = mixture_batch_->data()](const Exec& e, float* out, int32_t*,
                                                         const int64_t* data_step) {
      ops::sample_mixture<float>(e, mix, shard.global_batch, data_step, all);
      enqueue_copy_on_device(e, out, all + int64_t(shard.first) * 2, size_t(shard.batch) * 2 * sizeof(float));
    };
    return;
  }
  images_ = load_dataset(name, Split::Train, folder);
  if (images_.count < shard.global_batch)
    usage_error("train.batch: ", shard.global_batch, " is larger than the data set (", images_.count,
                " images in ", images_.name, ")");
  image_ = Shape::image(0, images_.h, images_.w, images_.c);
  device_ = std::make_unique<DeviceDataset>(ex, images_, shard, seed);
  source_ = device_->source();
}

std::string RealData::describe() const {
  if (is_mixture_)
    return detail::concat("a mixture of ", mixture_.modes, " Gaussians on a ",
                          mixture_.grid ? "grid" : "ring", " (scale ", mixture_.scale, ", std ", mixture_.std,
                          "), sampled on the device");
  std::string classes;
  for (const std::string& name : images_.class_names) classes += (classes.empty() ? "" : ", ") + name;
  return detail::concat(
      images_.name, ": ", images_.count, " images of ", images_.h, "x", images_.w, "x", images_.c,
      classes.empty() ? ""
                      : " in " + std::to_string(images_.class_names.size()) + " classes (" + classes + ")");
}

}  // namespace gancu
