// safetensors files: gancu's checkpoints and the classifier weights it loads. The parser, every
// tensor's values as float and int64, and a checkpoint's metadata (config and image shape).
// Seeds: tests/fuzz/corpus/safetensors.
#include <vector>

#include "fuzz_util.h"
#include "gancu/checkpoint.h"
#include "gancu/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  gancu::fuzz::expect_clean([&] {
    const gancu::SafeTensors f = gancu::parse_safetensors(bytes, "fuzz.safetensors");
    for (const auto& entry : f.tensors) {
      const gancu::TensorData& t = entry.second;
      gancu::fuzz::expect_clean([&] { gancu::tensor_values<float>(t, entry.first); });
      gancu::fuzz::expect_clean([&] { gancu::tensor_values<int64_t>(t, entry.first); });
    }
  });
  const gancu::fuzz::MemFile file(data, size);
  gancu::fuzz::expect_clean([&] { gancu::checkpoint_config(file.path()); });
  gancu::fuzz::expect_clean([&] { gancu::checkpoint_image(file.path()); });
  return 0;
}
