// Checkpoints: the whole training state of a Gan in one safetensors file, written atomically.
//
// Network tensors carry PyTorch's names and layouts ("G.4.weight", conv weights [k, c, r, s]),
// so `model.load_state_dict({k[2:]: v for k, v in f.items() if k.startswith("G.")})` loads the
// generator into the peer built from the same config. Optimizer state, step counters and the
// resolved config (metadata "config") make --resume continue exactly where the run stopped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gancu/check.h"
#include "gancu/config.h"
#include "gancu/exec.h"
#include "gancu/gan.h"

namespace gancu {

// Thrown instead of writing a checkpoint whose parameters are not finite.
struct DivergedError : RuntimeError {
  using RuntimeError::RuntimeError;
};

// Refuses (DivergedError) to write non-finite parameters: a diverged run keeps its last good
// checkpoint.
void save_checkpoint(const Exec& ex, Gan& gan, const std::string& path);
// Restores everything save_checkpoint wrote; names, shapes and dtypes must match the model.
void load_checkpoint(const Exec& ex, Gan& gan, const std::string& path);
// The resolved config stored in a checkpoint.
Config checkpoint_config(const std::string& path);
// The image shape (h, w, c at batch 0) stored in a checkpoint.
Shape checkpoint_image(const std::string& path);

// A network's tensors under its PyTorch names and layouts (conv weights [k, c, r, s]), and back.
// Export refuses non-finite values (DivergedError); import checks every name and shape.
struct TensorData;
struct SafeTensors;
void export_network(const Exec& ex, const Network<float>& net, std::map<std::string, TensorData>& out);
void import_network(const Exec& ex, Network<float>& net, const SafeTensors& file, const std::string& path);

// The checkpoint file of `step` inside run_dir, the steps of those there (ascending), and the
// newest one ("" when none).
std::string checkpoint_path(const std::string& run_dir, int64_t step);
std::vector<int64_t> checkpoint_steps(const std::string& run_dir);
std::string latest_checkpoint(const std::string& run_dir);

}  // namespace gancu
