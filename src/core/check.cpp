#include "gancu/check.h"

#include "gancu/internal_error.h"

namespace gancu::detail {

void throw_check_failure(const char* file, int line, const char* what, const std::string& msg) {
  std::string text = concat(file, ":", line, ": ", what);
  if (!msg.empty()) text += concat(": ", msg);
  throw InternalError(text);
}

}  // namespace gancu::detail
