// Mode coverage and sample quality of generators trained on 2-d Gaussian mixtures.
#include <cmath>

#include "gancu/check.h"
#include "gancu/metrics.h"
#include "gancu/mixture.h"

namespace gancu {

// Each point is assigned to its nearest mode (ties: the lowest mode index) and counts for that
// mode when it lies within 3 standard deviations of its centre (inclusive), so per_mode sums to
// the number of high-quality points and no point counts twice when modes overlap. A mode is
// covered when its count is positive and at least min_share * n. Non-finite points are far from
// every mode: they count as low quality rather than failing the evaluation.
MixtureStats mixture_statistics(const Mixture2D& mix, const float* points, int64_t n, double min_share) {
  if (mix.modes < 1) runtime_error("mixture_statistics: the mixture has ", mix.modes, " modes");
  if (!(mix.std > 0)) runtime_error("mixture_statistics: the mixture's std must be positive, got ", mix.std);
  if (n < 1) runtime_error("mixture_statistics: need at least one point, got ", n);
  if (!points) runtime_error("mixture_statistics: no points (null pointer)");
  if (!(min_share >= 0 && min_share <= 1))
    runtime_error("mixture_statistics: min_share must be in [0, 1], got ", min_share);

  std::vector<double> cx(size_t(mix.modes)), cy(size_t(mix.modes));
  for (int m = 0; m < mix.modes; ++m) {
    float x, y;
    mixture_center(mix, m, &x, &y);
    cx[size_t(m)] = x;
    cy[size_t(m)] = y;
  }
  const double limit = 3.0 * double(mix.std);
  const double limit2 = limit * limit;

  MixtureStats s;
  s.per_mode.assign(size_t(mix.modes), 0);
  int64_t high_quality = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = points[2 * i], y = points[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    int best = 0;
    double best_d2 = INFINITY;
    for (int m = 0; m < mix.modes; ++m) {
      const double dx = x - cx[size_t(m)], dy = y - cy[size_t(m)];
      const double d2 = dx * dx + dy * dy;
      if (d2 < best_d2) {
        best_d2 = d2;
        best = m;
      }
    }
    if (best_d2 <= limit2) {
      ++s.per_mode[size_t(best)];
      ++high_quality;
    }
  }
  const double needed = min_share * double(n);
  for (int64_t count : s.per_mode) s.modes_covered += (count > 0 && double(count) >= needed) ? 1 : 0;
  s.high_quality = double(high_quality) / double(n);
  return s;
}

}  // namespace gancu
