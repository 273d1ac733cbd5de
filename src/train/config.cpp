#include "gancu/config.h"

#include <fstream>
#include <sstream>
#include <toml.hpp>

#include "gancu/check.h"
#include "gancu/objective.h"

namespace gancu {

const std::map<std::string, std::string>& embedded_presets();  // generated from configs/presets

namespace {

using Toml = toml::basic_value<toml::discard_comments, std::map, std::vector>;

// Every key gancu knows, with its default. A key that is not here is a typo.
const char* kDefaults = R"toml(
preset = ""
description = ""

[data]
name = "fashion-mnist"
strict = false

[model]
z_dim = 100
latent = "normal"
init = "dcgan"
generator = []
discriminator = []
sync_bn = false
classes = 0

[train]
mode = "gan"
loss = "bce"
batch = 64
steps = 1000
d_steps = 1
label_smoothing = 0.0
feature_matching = ""
distance_head = ""
distance_label = "norm"
distance_weight = 1.0
d_pretrain_steps = 0
d_pretrain_fakes = "histogram"
seed = 1
gp_weight = 10.0
clip = 0.01
r1_gamma = 10.0
r1_interval = 1
dragan_spread = 0.5
began_gamma = 0.5
began_lambda_k = 0.001
began_k0 = 0.0

[optim.g]
name = "adam"
lr = 0.0002
beta1 = 0.5
beta2 = 0.999
eps = 1e-8
weight_decay = 0.0
momentum = 0.0
alpha = 0.99

[optim.d]
name = "adam"
lr = 0.0002
beta1 = 0.5
beta2 = 0.999
eps = 1e-8
weight_decay = 0.0
momentum = 0.0
alpha = 0.99

[log]
log_every = 50
sample_every = 250
checkpoint_every = 500
grid = 64
eval_every = 0

[eval]
samples = 2000
classifier = ""

[run]
backend = "auto"
threads = 0
math = "fp32"
deterministic = true
cuda_graph = true
sample_bn = "batch"
collective_timeout_s = 600.0
)toml";

Toml parse_toml(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  try {
    return toml::parse<toml::discard_comments, std::map, std::vector>(in, name);
  } catch (const std::exception& e) {
    usage_error(name, ": not valid TOML:\n", e.what());
  }
}

const char* type_name(const Toml& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_integer()) return "an integer";
  if (v.is_floating()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_table()) return "a table";
  return "a date or time";
}

// Where each key's value came from, for error messages.
using Sources = std::map<std::string, std::string>;

// Sets `key` (dotted) in `root` to `value`, checking it against the defaults' key and type.
void assign(Toml& root, const Toml& defaults, const std::string& key, Toml value, const std::string& source) {
  std::vector<std::string> path;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) path.push_back(part);
  const Toml* def = &defaults;
  Toml* node = &root;
  std::string walked;
  for (size_t i = 0; i < path.size(); ++i) {
    walked += (i ? "." : "") + path[i];
    if (!def->is_table() || !def->as_table().count(path[i]))
      usage_error(source, ": unknown config key '", walked, "'");
    def = &def->as_table().at(path[i]);
    if (i + 1 < path.size()) node = &node->as_table()[path[i]];
  }
  if (def->is_table()) {
    if (!value.is_table()) usage_error(source, ": '", key, "' is a section; expected a table");
    for (const auto& [k, v] : value.as_table()) assign(root, defaults, key + "." + k, v, source);
    return;
  }
  // Integers are accepted where numbers are expected ("lr = 1" is fine).
  if (def->is_floating() && value.is_integer()) value = Toml(double(value.as_integer()));
  if (def->type() != value.type())
    usage_error(source, ": '", key, "' must be ", type_name(*def), ", got ", type_name(value));
  if (def->is_array())
    for (const auto& item : value.as_array())
      if (!item.is_string()) usage_error(source, ": '", key, "' must be an array of strings");
  node->as_table()[path.back()] = std::move(value);
}

void merge_file(Toml& root, const Toml& defaults, const Toml& file, const std::string& source,
                Sources& sources, const std::string& prefix = "") {
  for (const auto& [k, v] : file.as_table()) {
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    if (v.is_table() && defaults.is_table()) {
      merge_file(root, defaults, v, source, sources, key);
      continue;
    }
    assign(root, defaults, key, v, source);
    sources[key] = source;
  }
}

// A --set value: a TOML literal where it parses as one ("128", "true", "[\"a\"]", "\"x\""),
// else the text as a string (so that --set data.name=mnist needs no quotes).
Toml parse_override_value(const std::string& text) {
  try {
    std::istringstream in("v = " + text);
    const Toml t = toml::parse<toml::discard_comments, std::map, std::vector>(in, "--set");
    return t.as_table().at("v");
  } catch (const std::exception&) {
    return Toml(text);
  }
}

struct Reader {
  const Toml& root;
  const Sources& sources;

  const Toml& at(const std::string& key) const {
    const Toml* node = &root;
    std::stringstream ss(key);
    for (std::string part; std::getline(ss, part, '.');) node = &node->as_table().at(part);
    return *node;
  }
  std::string source(const std::string& key) const {
    const auto it = sources.find(key);
    return it == sources.end() ? "config " + key : it->second + " (" + key + ")";
  }
  template <class... A>
  [[noreturn]] void fail(const std::string& key, const A&... what) const {
    usage_error(source(key), ": ", what...);
  }
  std::string str(const std::string& key) const { return at(key).as_string(); }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const int64_t v = at(key).as_integer();
    if (v < lo || v > hi) fail(key, "must be in [", lo, ", ", hi, "], got ", v);
    return v;
  }
  float number(const std::string& key, double lo, double hi, bool lo_open = false,
               bool hi_open = false) const {
    const double v = at(key).as_floating();
    const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok || v != v)
      fail(key, "must be in ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]", ", got ", v);
    return float(v);
  }
  std::string choice(const std::string& key, const std::vector<std::string>& options) const {
    const std::string v = str(key);
    for (const auto& o : options)
      if (o == v) return v;
    std::string list;
    for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
    fail(key, "expected one of ", list, "; got \"", v, "\"");
  }
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& item : at(key).as_array()) out.push_back(item.as_string());
    return out;
  }
  OptimConfig optim(const std::string& section) const {
    OptimConfig o;
    o.name = choice(section + ".name", {"adam", "sgd", "rmsprop"});
    o.lr = number(section + ".lr", 0.0, 10.0, true);
    o.beta1 = number(section + ".beta1", 0.0, 1.0, false, true);
    o.beta2 = number(section + ".beta2", 0.0, 1.0, false, true);
    o.eps = number(section + ".eps", 0.0, 1.0, true);
    o.weight_decay = number(section + ".weight_decay", 0.0, 1.0);
    o.momentum = number(section + ".momentum", 0.0, 1.0, false, true);
    o.alpha = number(section + ".alpha", 0.0, 1.0, false, true);
    return o;
  }
};

// train.mode = "supervised" trains G alone from (one-hot label, mean pixel value): what it needs,
// and the keys that would need a D (or random noise), each refused by name.
void check_supervised(const Reader& r, const Config& c) {
  const char* mode = "train.mode = supervised";
  if (c.classes == 0)
    r.fail("model.classes", mode,
           " feeds G each real image's one-hot label; set model.classes (10 for MNIST)");
  if (c.z_dim != 1)
    r.fail("model.z_dim", mode,
           " feeds G one number, the real image's mean pixel value, as its input; set "
           "model.z_dim = 1 (got ",
           c.z_dim, ")");
  if (!c.discriminator.empty())
    r.fail("model.discriminator", mode, " trains G alone; leave model.discriminator empty (set it to [])");
  if (!c.feature_matching.empty()) r.fail("train.feature_matching", mode, " has no D to match features of");
  if (!c.distance_head.empty()) r.fail("train.distance_head", mode, " trains G with the MSE alone");
  if (c.d_pretrain_steps > 0) r.fail("train.d_pretrain_steps", mode, " has no D to pre-train");
  if (c.eval_every > 0)
    r.fail("log.eval_every", mode,
           " is not evaluated as a GAN (its input is not noise); draw its grids with "
           "gancu sample --sweep or --mix");
}

Config to_config(const Toml& root, const Sources& sources) {
  const Reader r{root, sources};
  Config c;
  c.preset = r.str("preset");
  c.description = r.str("description");
  c.data = r.str("data.name");
  if (c.data.empty()) r.fail("data.name", "must name a data set or a folder");
  c.data_strict = r.at("data.strict").as_boolean();

  c.z_dim = int(r.integer("model.z_dim", 1, 1 << 16));
  c.latent =
      r.choice("model.latent", {"normal", "uniform"}) == "normal" ? NoiseKind::Normal : NoiseKind::Uniform;
  c.init = parse_init_scheme(r.str("model.init"), r.source("model.init"));
  c.generator = r.strings("model.generator");
  c.discriminator = r.strings("model.discriminator");
  c.sync_bn = r.at("model.sync_bn").as_boolean();
  c.classes = int(r.integer("model.classes", 0, 256));
  if (c.generator.empty())
    r.fail("model.generator", "is empty: a preset or config must define the generator");
  c.mode = r.choice("train.mode", {"gan", "supervised"});
  if (c.discriminator.empty() && !c.supervised())
    r.fail("model.discriminator", "is empty: a preset or config must define it");

  c.loss = r.choice("train.loss", objective_names());
  c.batch = int(r.integer("train.batch", 1, 1 << 20));
  c.steps = r.integer("train.steps", 0, int64_t(1) << 40);
  c.d_steps = int(r.integer("train.d_steps", 1, 100));
  c.label_smoothing = r.number("train.label_smoothing", 0.0, 0.5, false, true);
  c.feature_matching = r.str("train.feature_matching");
  c.distance_head = r.str("train.distance_head");
  c.distance_label = r.choice("train.distance_label", {"norm", "mean_distance"});
  c.distance_weight = r.number("train.distance_weight", 0.0, 1e6);
  c.d_pretrain_steps = r.integer("train.d_pretrain_steps", 0, int64_t(1) << 40);
  c.d_pretrain_fakes = r.choice("train.d_pretrain_fakes", {"histogram", "scrambled"});
  c.seed = uint64_t(r.integer("train.seed", 0, INT64_MAX));
  c.gp_weight = r.number("train.gp_weight", 0.0, 1e6);
  c.clip = r.number("train.clip", 0.0, 1e9);
  c.r1_gamma = r.number("train.r1_gamma", 0.0, 1e6);
  c.r1_interval = int(r.integer("train.r1_interval", 1, 1 << 20));
  c.dragan_spread = r.number("train.dragan_spread", 0.0, 100.0);
  c.began_gamma = r.number("train.began_gamma", 0.0, 1.0, true);
  c.began_lambda_k = r.number("train.began_lambda_k", 0.0, 1.0);
  c.began_k0 = r.number("train.began_k0", 0.0, 1.0);

  c.optim_g = r.optim("optim.g");
  c.optim_d = r.optim("optim.d");

  c.log_every = r.integer("log.log_every", 1, INT64_MAX);
  c.sample_every = r.integer("log.sample_every", 0, INT64_MAX);
  c.checkpoint_every = r.integer("log.checkpoint_every", 0, INT64_MAX);
  c.grid = int(r.integer("log.grid", 1, 1024));
  c.eval_every = r.integer("log.eval_every", 0, INT64_MAX);
  c.eval_samples = r.integer("eval.samples", 2, 1000000);
  c.eval_classifier = r.str("eval.classifier");

  c.backend = r.choice("run.backend", {"auto", "cpu", "cuda"});
  c.threads = int(r.integer("run.threads", 0, 4096));
  c.math = r.choice("run.math", {"fp32", "tf32"});
  c.deterministic = r.at("run.deterministic").as_boolean();
  c.cuda_graph = r.at("run.cuda_graph").as_boolean();
  c.sample_bn = r.choice("run.sample_bn", {"batch", "running"});
  c.collective_timeout_s = r.number("run.collective_timeout_s", 0.0, 1e7, true);
  if (c.supervised()) check_supervised(r, c);
  c.toml = toml::format(root, 100, 9);
  return c;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : embedded_presets()) names.push_back(name);
  return names;
}

const std::string& preset_text(const std::string& name) {
  const auto it = embedded_presets().find(name);
  if (it == embedded_presets().end()) {
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    usage_error("--preset: unknown preset '", name, "' (known: ", list, ")");
  }
  return it->second;
}

namespace {
Config build_config(const std::string& preset, const std::string& text, const std::string& source,
                    const std::vector<ConfigOverride>& overrides) {
  const Toml defaults = parse_toml(kDefaults, "built-in defaults");
  Toml root = defaults;
  Sources sources;
  if (!preset.empty()) {
    merge_file(root, defaults, parse_toml(preset_text(preset), "preset " + preset), "preset " + preset,
               sources);
    assign(root, defaults, "preset", Toml(preset), "--preset");
  }
  if (!source.empty()) merge_file(root, defaults, parse_toml(text, source), source, sources);
  for (const auto& o : overrides) {
    assign(root, defaults, o.key, parse_override_value(o.value), o.source);
    sources[o.key] = o.source;
  }
  if (preset.empty() && source.empty()) usage_error("no model: give --preset NAME or --config FILE.toml");
  return to_config(root, sources);
}
}  // namespace

Config load_config(const std::string& preset, const std::string& config_file,
                   const std::vector<ConfigOverride>& overrides) {
  std::string text;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) usage_error("--config: cannot read '", config_file, "'");
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  return build_config(preset, text, config_file, overrides);
}

Config load_config_text(const std::string& toml_text, const std::string& source,
                        const std::vector<ConfigOverride>& overrides) {
  return build_config("", toml_text, source, overrides);
}

namespace {
// Every leaf of a resolved config as "dotted.key" -> its value written as TOML.
void flatten(const Toml& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (node.is_table()) {
    for (const auto& [k, v] : node.as_table()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  std::string text = toml::format(node, 0, 9);  // 9 digits: every float32 exactly
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  out[prefix] = text;
}
}  // namespace

std::vector<ConfigChange> config_changes(const Config& before, const Config& after) {
  std::map<std::string, std::string> a, b;
  flatten(parse_toml(before.toml, "config before"), "", a);
  flatten(parse_toml(after.toml, "config after"), "", b);
  std::vector<ConfigChange> changes;
  for (const auto& [key, value] : b) {
    const auto it = a.find(key);
    const std::string old = it == a.end() ? std::string("(unset)") : it->second;
    if (old != value) changes.push_back({key, old, value});
  }
  for (const auto& [key, value] : a)
    if (!b.count(key)) changes.push_back({key, value, "(unset)"});
  return changes;
}

}  // namespace gancu
