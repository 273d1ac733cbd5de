#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>

#include "gancu/check.h"
#include "gancu/layer_spec.h"

namespace gancu {

namespace {

// The keys each layer kind accepts, in positional order.
const std::map<std::string, std::vector<std::string>>& known_keys() {
  static const std::map<std::string, std::vector<std::string>> keys = {
      {"linear", {"out", "bias"}},
      {"conv", {"out", "k", "s", "p", "bias", "kh", "kw", "ph", "pw"}},
      {"convT", {"out", "k", "s", "p", "bias", "kh", "kw", "ph", "pw"}},
      {"bn", {"momentum", "eps"}},
      {"relu", {}},
      {"lrelu", {"slope"}},
      {"tanh", {}},
      {"sigmoid", {}},
      {"dropout", {"p"}},
      {"reshape", {"h", "w", "c"}},
      {"resize", {"h", "w"}},
      {"flatten", {}},
      {"maxpool", {"k", "s", "p"}},
      {"avgpool", {"k", "s", "p", "include_pad"}},
      {"ln", {"eps"}},
      {"concat", {}},
      {"add", {}},
      {"mbdisc", {"kernels", "dims", "std"}},
      {"mbstd", {"eps"}},
      {"embed", {"dim"}},
      {"project", {}},
  };
  return keys;
}

bool valid_name(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// name=NAME and in=A,B: names start with a letter or '_' and hold letters, digits and '_' (as the
// PyTorch peer's parser).
void parse_graph_key(LayerSpec& spec, const std::string& key, const std::string& value,
                     const std::string& where) {
  if (key == "name") {
    if (!spec.name.empty()) usage_error(where, ": \"", spec.text, "\": 'name' given twice");
    if (!valid_name(value))
      usage_error(where, ": \"", spec.text, "\": '", value,
                  "' is not a valid name (a letter or '_', then letters, digits or '_')");
    spec.name = value;
    return;
  }
  if (!spec.inputs.empty()) usage_error(where, ": \"", spec.text, "\": 'in' given twice");
  std::stringstream list(value);
  for (std::string item; std::getline(list, item, ',');) {
    if (!valid_name(item))
      usage_error(where, ": \"", spec.text, "\": in= lists '", item, "', which is not a valid name");
    spec.inputs.push_back(item);
  }
  if (spec.inputs.empty() || value.back() == ',')
    usage_error(where, ": \"", spec.text, "\": in= needs names separated by commas");
}

std::string kinds_list() {
  std::string s;
  for (const auto& [kind, _] : known_keys()) s += (s.empty() ? "" : ", ") + kind;
  return s;
}

}  // namespace

LayerSpec parse_layer_spec(const std::string& text, const std::string& where) {
  std::istringstream in(text);
  LayerSpec spec;
  spec.text = text;
  if (!(in >> spec.kind)) usage_error(where, ": empty layer description");
  const auto found = known_keys().find(spec.kind);
  if (found == known_keys().end())
    usage_error(where, ": unknown layer kind '", spec.kind, "' in \"", text, "\" (known: ", kinds_list(),
                ")");
  const auto& keys = found->second;

  std::string token;
  size_t positional = 0;
  while (in >> token) {
    const auto eq = token.find('=');
    std::string key, value;
    if (eq == std::string::npos) {
      if (positional >= keys.size())
        usage_error(where, ": \"", text, "\": unexpected value '", token, "' (", spec.kind, " takes ",
                    keys.empty() ? std::string("no arguments") : "key=value arguments", ")");
      key = keys[positional++];
      value = token;
    } else {
      key = token.substr(0, eq);
      value = token.substr(eq + 1);
      bool ok = key == "name" || key == "in";
      for (const auto& k : keys) ok = ok || k == key;
      if (!ok) usage_error(where, ": \"", text, "\": ", spec.kind, " has no argument '", key, "'");
    }
    if (value.empty()) usage_error(where, ": \"", text, "\": '", key, "' has no value");
    if (key == "name" || key == "in") {
      parse_graph_key(spec, key, value, where);
      continue;
    }
    if (!spec.args.emplace(key, value).second)
      usage_error(where, ": \"", text, "\": '", key, "' given twice");
  }
  return spec;
}

int LayerSpec::get_int(const std::string& key, const std::string& where, int min_value) const {
  const auto it = args.find(key);
  if (it == args.end()) usage_error(where, ": \"", text, "\" needs ", key, "=<integer>");
  char* end = nullptr;
  const long v = std::strtol(it->second.c_str(), &end, 10);
  if (*end != '\0' || v < min_value || v > (1 << 24))
    usage_error(where, ": \"", text, "\": ", key, " must be an integer >= ", min_value, ", got '", it->second,
                "'");
  return int(v);
}

int LayerSpec::get_int(const std::string& key, int fallback, const std::string& where, int min_value) const {
  if (!args.count(key)) return fallback;
  return get_int(key, where, min_value);
}

float LayerSpec::get_float(const std::string& key, float fallback, const std::string& where) const {
  const auto it = args.find(key);
  if (it == args.end()) return fallback;
  char* end = nullptr;
  const float v = std::strtof(it->second.c_str(), &end);
  if (*end != '\0' || !(v == v))
    usage_error(where, ": \"", text, "\": ", key, " must be a number, got '", it->second, "'");
  return v;
}

bool LayerSpec::get_bool(const std::string& key, bool fallback, const std::string& where) const {
  const auto it = args.find(key);
  if (it == args.end()) return fallback;
  if (it->second == "true") return true;
  if (it->second == "false") return false;
  usage_error(where, ": \"", text, "\": ", key, " must be true or false, got '", it->second, "'");
}

}  // namespace gancu
