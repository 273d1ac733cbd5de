// Config keys on --resume. See include/gancu/resume_policy.h.
#include "gancu/resume_policy.h"

#include "gancu/check.h"

namespace gancu {

namespace {
bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}
}  // namespace

std::string resume_refuses(const std::string& key) {
  if (key == "train.steps" || key == "description" || key == "preset" || starts_with(key, "log.") ||
      starts_with(key, "eval.") || starts_with(key, "run."))
    return "";
  if (starts_with(key, "model.")) return "the model";
  if (key == "data.name" || key == "train.batch" || key == "train.seed") return "the data";
  if (starts_with(key, "optim.")) return "the optimizer";
  return "the objective";  // the rest of [train]; a new key is refused until it is classified here
}

void check_resume_config(const Config& saved, const Config& now, const std::string& checkpoint) {
  std::string refused;
  for (const ConfigChange& c : config_changes(saved, now)) {
    const std::string what = resume_refuses(c.key);
    if (!what.empty())
      refused += detail::concat("\n  ", c.key, ": ", c.before, " -> ", c.after, " (", what, ")");
  }
  if (refused.empty()) return;
  usage_error(
      "--resume: these keys differ from the config the run was trained with (", checkpoint,
      ") and would change its model, data or training:", refused,
      "\nOnly train.steps, log.*, eval.* and run.* may change on resume; start a new run (another --out) "
      "to change the others");
}

}  // namespace gancu
