// Gaussian fits of feature sets and the Frechet distance between two Gaussians.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gancu/check.h"
#include "gancu/metrics.h"

// LAPACK's symmetric eigensolver (divide and conquer), as shipped inside OpenBLAS. The trailing
// lengths are the hidden Fortran string-length arguments of `jobz` and `uplo`.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork, int* info,
                        size_t jobz_len, size_t uplo_len);

namespace gancu {

namespace {

// Eigenvalues (ascending) of the symmetric n x n matrix `a`; with `vectors`, `a` is overwritten by
// the eigenvectors: eigenvector c is a[c * n .. c * n + n) (LAPACK's column c, which is row c of
// the row-major array). Without, `a` is destroyed.
std::vector<double> symmetric_eigen(int n, std::vector<double>& a, bool vectors) {
  std::vector<double> w(static_cast<size_t>(n));
  const char jobz = vectors ? 'V' : 'N', uplo = 'U';
  int lwork = -1, liwork = -1, info = 0;
  double work_query = 0;
  int iwork_query = 0;
  dsyevd_(&jobz, &uplo, &n, a.data(), &n, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
  if (info != 0) runtime_error("frechet_distance: LAPACK dsyevd workspace query failed (info ", info, ")");
  lwork = std::max(1, int(work_query));
  liwork = std::max(1, iwork_query);
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd_(&jobz, &uplo, &n, a.data(), &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  if (info != 0)
    runtime_error("frechet_distance: LAPACK dsyevd failed to converge (info ", info, ") on a ", n, "x", n,
                  " matrix");
  return w;
}

// (S + S^T) / 2: a covariance that is symmetric up to rounding becomes exactly symmetric, so the
// eigensolver's choice of triangle cannot matter.
std::vector<double> symmetrized(const std::vector<double>& s, int n) {
  std::vector<double> out(s.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) out[size_t(i) * n + j] = 0.5 * (s[size_t(i) * n + j] + s[size_t(j) * n + i]);
  return out;
}

void check_gaussian(const Gaussian& g, const char* which) {
  if (g.dim < 1) runtime_error("frechet_distance: Gaussian ", which, " has dimension ", g.dim);
  if (g.mean.size() != size_t(g.dim) || g.cov.size() != size_t(g.dim) * size_t(g.dim))
    runtime_error("frechet_distance: Gaussian ", which, " of dimension ", g.dim, " has ", g.mean.size(),
                  " mean values and ", g.cov.size(), " covariance values (expected ", g.dim, " and ",
                  int64_t(g.dim) * g.dim, ")");
  for (double v : g.mean)
    if (!std::isfinite(v)) runtime_error("frechet_distance: Gaussian ", which, " has a non-finite mean");
  for (double v : g.cov)
    if (!std::isfinite(v))
      runtime_error("frechet_distance: Gaussian ", which, " has a non-finite covariance");
}

}  // namespace

Gaussian fit_gaussian(const float* features, int64_t n, int dim) {
  if (n < 2) runtime_error("fit_gaussian: need at least 2 samples for an unbiased covariance, got ", n);
  if (dim < 1) runtime_error("fit_gaussian: feature dimension must be at least 1, got ", dim);
  if (!features) runtime_error("fit_gaussian: no features (null pointer)");
  const size_t d = size_t(dim);

  Gaussian g;
  g.dim = dim;
  g.mean.assign(d, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = features + i * dim;
    for (size_t c = 0; c < d; ++c) {
      if (!std::isfinite(row[c]))
        runtime_error("fit_gaussian: feature ", c, " of sample ", i, " is not finite");
      g.mean[c] += double(row[c]);
    }
  }
  for (double& m : g.mean) m /= double(n);

  // Two passes: the covariance accumulates centred rows, so no catastrophic cancellation of
  // E[x x^T] - mu mu^T. Rows go through dsyrk in chunks converted to double, so memory stays
  // O(chunk x dim).
  g.cov.assign(d * d, 0.0);
  const int64_t chunk = 256;
  std::vector<double> centred(size_t(chunk) * d);
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t rows = std::min(chunk, n - r0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = features + (r0 + r) * dim;
      double* out = centred.data() + size_t(r) * d;
      for (size_t c = 0; c < d; ++c) out[c] = double(row[c]) - g.mean[c];
    }
    // cov (upper triangle) += X^T X for X [rows, dim]
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, int(rows), 1.0, centred.data(), dim, 1.0,
                g.cov.data(), dim);
  }
  const double scale = 1.0 / double(n - 1);
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = i; j < d; ++j) {
      const double v = g.cov[i * d + j] * scale;
      g.cov[i * d + j] = v;
      g.cov[j * d + i] = v;
    }
  }
  return g;
}

double frechet_distance(const Gaussian& a, const Gaussian& b) {
  check_gaussian(a, "a");
  check_gaussian(b, "b");
  if (a.dim != b.dim)
    runtime_error("frechet_distance: the Gaussians have different dimensions (", a.dim, " and ", b.dim, ")");
  const int n = a.dim;
  const size_t d = size_t(n);

  double mean_term = 0, trace_a = 0, trace_b = 0;
  for (size_t i = 0; i < d; ++i) {
    const double diff = a.mean[i] - b.mean[i];
    mean_term += diff * diff;
    trace_a += a.cov[i * d + i];
    trace_b += b.cov[i * d + i];
  }

  // S_a^(1/2) = V diag(sqrt(max(lambda, 0))) V^T. Negative eigenvalues of a covariance can only
  // come from rounding (or from a rank-deficient fit): they are clamped to 0.
  std::vector<double> va = symmetrized(a.cov, n);
  const std::vector<double> lambda = symmetric_eigen(n, va, true);
  // Scale eigenvector c by lambda_c^(1/4): then sqrt(S_a) = W^T W with W's rows the scaled vectors.
  std::vector<double> w = va;
  for (size_t c = 0; c < d; ++c) {
    const double s = std::sqrt(std::sqrt(std::max(lambda[c], 0.0)));
    for (size_t i = 0; i < d; ++i) w[c * d + i] *= s;
  }
  std::vector<double> root_a(d * d, 0.0);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, n, 1.0, w.data(), n, 0.0, root_a.data(), n);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = i + 1; j < d; ++j) root_a[j * d + i] = root_a[i * d + j];

  // M = S_a^(1/2) S_b S_a^(1/2): symmetric positive semi-definite and similar to S_a S_b, so
  // tr (S_a S_b)^(1/2) = sum_i sqrt(eig_i(M)).
  const std::vector<double> sb = symmetrized(b.cov, n);
  std::vector<double> tmp(d * d), m(d * d);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, root_a.data(), n, sb.data(), n, 0.0,
              tmp.data(), n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, tmp.data(), n, root_a.data(), n, 0.0,
              m.data(), n);
  m = symmetrized(m, n);
  const std::vector<double> mu = symmetric_eigen(n, m, false);
  double trace_root = 0;
  for (double e : mu) trace_root += std::sqrt(std::max(e, 0.0));

  const double dist = mean_term + trace_a + trace_b - 2.0 * trace_root;
  return dist > 0 ? dist : 0.0;  // identical Gaussians can round to -1e-16
}

}  // namespace gancu
