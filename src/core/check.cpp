#include "gancu/check.h"

namespace gancu::detail {

void throw_check_failure(const char* file, int line, const char* what, const std::string& msg) {
  std::string text = concat(file, ":", line, ": ", what);
  if (!msg.empty()) text += concat(": ", msg);
  throw RuntimeError(text);
}

}  // namespace gancu::detail
