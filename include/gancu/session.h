// What train, sample and bench share: choosing the backend, and a Gan planned into its arena on
// that backend.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "gancu/arena.h"
#include "gancu/config.h"
#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/gan.h"
#include "gancu/memory.h"

namespace gancu {

// "auto" picks CUDA where a usable GPU is present and the CPU otherwise; either way one line on
// `log` says which and why. "cuda" without a GPU is a RuntimeError.
Exec open_backend(const std::string& requested, int threads, const std::string& math, std::ostream& log);

// A Gan with its arena, bound and ready (parameters not yet initialized).
struct GanSession {
  std::unique_ptr<Gan> gan;
  Arena arena;
};
GanSession make_session(const Config& cfg, Shape image, int batch, Exec& ex);

// The image shape (batch 0) that the config's generator produces.
Shape generator_image(const Config& cfg);

// A data set uploaded once to the backend, and the real-batch source of a Gan that gathers each
// step's batch from it (through the epoch's permutation, on the device).
class DeviceDataset {
 public:
  DeviceDataset(const Exec& ex, const Dataset& data, int batch, uint64_t seed);
  DeviceDataset(const DeviceDataset&) = delete;  // source_ refers to this object
  DeviceDataset& operator=(const DeviceDataset&) = delete;
  const Gan::RealSource& source() const { return source_; }

 private:
  Buffer<uint8_t> images_;
  BatchGather gather_;
  Gan::RealSource source_;
};

}  // namespace gancu
