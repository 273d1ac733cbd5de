#include "gancu/tensor.h"

#include "gancu/check.h"

namespace gancu {

std::string Shape::str() const {
  if (is_features()) return detail::concat(n, "x", c);
  return detail::concat(n, "x", h, "x", w, "x", c);
}

}  // namespace gancu
