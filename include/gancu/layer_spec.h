// The text form of a layer, as written in presets and configs: `kind key=value ...`, e.g.
// "conv out=64 k=4 s=2 p=1 bias=false". A bare first value fills the layer's first key
// ("lrelu 0.2" is "lrelu slope=0.2"). Any kind also takes `name=` and `in=` (network.h). tools/gancu_torch.py
// reads the same strings to build the PyTorch peer, so the grammar lives in one place per language and is
// documented in docs/config.md.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace gancu {

struct LayerSpec {
  std::string kind;                         // linear, conv, convT, bn, relu, lrelu, tanh, ...
  std::map<std::string, std::string> args;  // key -> value, as written (name= and in= excluded)
  std::string text;                         // the original string, for messages
  // The graph keys every kind accepts: `name=NAME` names the layer's output; `in=A,B` lists the
  // values it reads (default: the previous string's output).
  std::string name;
  std::vector<std::string> inputs;

  // Typed access. `where` names the config field for error messages. Missing keys without a
  // default, unparsable values and keys the layer does not know are UsageErrors.
  int get_int(const std::string& key, const std::string& where, int min_value = 1) const;
  int get_int(const std::string& key, int fallback, const std::string& where, int min_value = 1) const;
  float get_float(const std::string& key, float fallback, const std::string& where) const;
  bool get_bool(const std::string& key, bool fallback, const std::string& where) const;
};

// Parses one layer string. `where` is e.g. "model.generator[4]".
LayerSpec parse_layer_spec(const std::string& text, const std::string& where);

}  // namespace gancu
