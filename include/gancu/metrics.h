// The numbers that say how good and how diverse samples are, computed from a classifier's outputs
// and features (gancu eval, evaluation during training, gancu compare).
//
// Features and probabilities arrive on the host; the pairwise distances of the k-NN metrics run on
// the Exec's backend through ops::pairwise_sq_distances, in tiles, so that memory grows with N,
// not N^2.
#pragma once

#include <cstdint>
#include <vector>

#include "gancu/exec.h"
#include "gancu/op_types.h"

namespace gancu {

// A number measured on several parts of a sample set: the mean over the parts and their standard
// deviation (population, ddof 0, as the usual Inception Score and KID tools report it).
struct MeanSpread {
  double mean = 0, std = 0;
};
MeanSpread mean_and_spread(const std::vector<double>& values);

// ---- Class statistics (from classifier probabilities) ------------------------------------------

struct ClassStats {
  std::vector<int64_t> histogram;  // argmax counts per class
  int modes_covered = 0;           // classes with at least one sample
  double kl_from_uniform = 0;      // KL(histogram / n || uniform), nats; 0 for a perfectly even spread
  double inception_score = 0;      // exp(E_x KL(p(y|x) || p(y))), computed with the classifier
};

// probs: [n, classes], rows summing to 1.
ClassStats class_statistics(const float* probs, int64_t n, int classes);

// exp(E_x KL(p(y|x) || p(y))) of probability rows [n, classes].
double inception_score(const float* probs, int64_t n, int classes);
// The Inception Score as papers report it: over `splits` consecutive equal parts of the rows (10
// by convention), the mean and spread of the parts' scores.
MeanSpread inception_score_splits(const float* probs, int64_t n, int classes, int splits = 10);

// KL(p || uniform) of a histogram, nats (empty bins contribute 0).
double kl_from_uniform(const std::vector<int64_t>& histogram);

// ---- Frechet distance ---------------------------------------------------------------------------

struct Gaussian {
  int dim = 0;
  std::vector<double> mean;  // [dim]
  std::vector<double> cov;   // [dim, dim], unbiased (n - 1)
};

// Mean and covariance of n feature rows [n, dim] (n >= 2), accumulated in double.
Gaussian fit_gaussian(const float* features, int64_t n, int dim);

// ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Frechet (2-Wasserstein) distance of two
// Gaussians, with the matrix square root through a symmetric eigendecomposition (LAPACK, as
// shipped in OpenBLAS): tr (S1 S2)^(1/2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))).
double frechet_distance(const Gaussian& a, const Gaussian& b);

// ---- Kernel Inception Distance -----------------------------------------------------------------

// The Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD
// between feature rows a [na, dim] and b [nb, dim] under the kernel k(x, y) = (x.y / dim + 1)^3,
// on `subsets` random subsets of min(subset_size, na, nb) rows of each (drawn without replacement
// from `seed`); the mean and spread over the subsets.
MeanSpread kernel_inception_distance(const float* a, int64_t na, const float* b, int64_t nb, int dim,
                                     int subsets = 100, int64_t subset_size = 1000, uint64_t seed = 0);

// ---- k-NN manifold metrics ----------------------------------------------------------------------

// Precision, recall and F1 (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al.
// 2020) of `fake` against `real`, on feature rows [n, dim] with the k-th nearest neighbour radii
// (k = 3 by default; a point is not its own neighbour).
struct PRDC {
  double precision = 0, recall = 0, f1 = 0, density = 0, coverage = 0;
};
PRDC precision_recall_density_coverage(const Exec& ex, const float* real, int64_t n_real, const float* fake,
                                       int64_t n_fake, int dim, int k = 3);

// ---- 2-d mixtures ------------------------------------------------------------------------------

// Modes that have at least `min_share` of the samples within 3 standard deviations, and the share
// of samples that are within 3 standard deviations of some mode ("high-quality" samples).
struct MixtureStats {
  std::vector<int64_t> per_mode;  // samples within 3 std of each mode
  int modes_covered = 0;
  double high_quality = 0;
};
MixtureStats mixture_statistics(const Mixture2D& mix, const float* points, int64_t n,
                                double min_share = 0.01);

}  // namespace gancu
