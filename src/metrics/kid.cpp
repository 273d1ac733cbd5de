// The Kernel Inception Distance (metrics.h): per subset, three Gram matrices through BLAS, then
// the cubic polynomial kernel and the unbiased MMD^2 estimate in double.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gancu/check.h"
#include "gancu/metrics.h"

namespace gancu {

namespace {

// `m` distinct row indices of [0, n), drawn by a partial Fisher-Yates shuffle.
std::vector<int64_t> random_rows(int64_t n, int64_t m, std::mt19937_64& rng) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  for (int64_t i = 0; i < m; ++i) {
    const int64_t j = i + int64_t(rng() % uint64_t(n - i));
    std::swap(idx[size_t(i)], idx[size_t(j)]);
  }
  idx.resize(size_t(m));
  return idx;
}

std::vector<float> gather_rows(const float* x, const std::vector<int64_t>& rows, int dim) {
  std::vector<float> out(rows.size() * size_t(dim));
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy(x + rows[i] * dim, x + (rows[i] + 1) * dim, out.begin() + int64_t(i) * dim);
  return out;
}

// Sum of k(x_i, y_j) over all pairs (or over i != j when `skip_diagonal`), where the dot products
// come from x [m, dim] y^T [dim, m].
double kernel_sum(const std::vector<float>& x, const std::vector<float>& y, int64_t m, int dim,
                  bool skip_diagonal, std::vector<float>& gram) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(m), dim, 1.0f, x.data(), dim, y.data(),
              dim, 0.0f, gram.data(), int(m));
  double sum = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (skip_diagonal && i == j) continue;
      const double k = double(gram[size_t(i * m + j)]) / dim + 1.0;
      sum += k * k * k;
    }
  return sum;
}

}  // namespace

MeanSpread mean_and_spread(const std::vector<double>& values) {
  if (values.empty()) runtime_error("mean_and_spread: no values");
  MeanSpread r;
  for (double v : values) r.mean += v;
  r.mean /= double(values.size());
  double var = 0;
  for (double v : values) var += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(var / double(values.size()));
  return r;
}

MeanSpread kernel_inception_distance(const float* a, int64_t na, const float* b, int64_t nb, int dim,
                                     int subsets, int64_t subset_size, uint64_t seed) {
  if (dim < 1) runtime_error("kernel_inception_distance: dimension ", dim);
  if (subsets < 1) runtime_error("kernel_inception_distance: need at least one subset, got ", subsets);
  const int64_t m = std::min({subset_size, na, nb});
  if (m < 2)
    runtime_error("kernel_inception_distance: need at least 2 rows in each set, got ", na, " and ", nb);
  std::mt19937_64 rng(seed);
  std::vector<float> gram(size_t(m * m));
  std::vector<double> estimates;
  for (int s = 0; s < subsets; ++s) {
    const std::vector<float> x = gather_rows(a, random_rows(na, m, rng), dim);
    const std::vector<float> y = gather_rows(b, random_rows(nb, m, rng), dim);
    const double kxx = kernel_sum(x, x, m, dim, true, gram);
    const double kyy = kernel_sum(y, y, m, dim, true, gram);
    const double kxy = kernel_sum(x, y, m, dim, false, gram);
    const double md = double(m);
    estimates.push_back((kxx + kyy) / (md * (md - 1)) - 2 * kxy / (md * md));
  }
  return mean_and_spread(estimates);
}

}  // namespace gancu
