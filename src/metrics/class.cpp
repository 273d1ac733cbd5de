// Class statistics of a classifier's probabilities: argmax histogram, modes covered, KL of the
// histogram from uniform, and the Inception score (of a classifier, or of Inception-v3 in splits).
#include <cmath>
#include <vector>

#include "gancu/check.h"
#include "gancu/metrics.h"

namespace gancu {

namespace {

// Rows must be probability vectors: finite, non-negative, summing to 1 up to float rounding.
// The tolerance is loose (1e-3) so that float softmax outputs over many classes always pass,
// while logits passed by mistake (negative or far from summing to 1) are caught.
void check_probability_rows(const float* probs, int64_t n, int classes) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = probs + i * classes;
    double sum = 0;
    for (int c = 0; c < classes; ++c) {
      const float p = row[c];
      if (!std::isfinite(p) || p < 0)
        runtime_error("class_statistics: row ", i, ", class ", c, " has probability ", p,
                      " (expected a finite value >= 0)");
      sum += double(p);
    }
    if (std::fabs(sum - 1.0) > 1e-3)
      runtime_error("class_statistics: row ", i, " sums to ", sum,
                    ", not 1 (pass probabilities, not logits)");
  }
}

}  // namespace

double kl_from_uniform(const std::vector<int64_t>& histogram) {
  if (histogram.empty()) runtime_error("kl_from_uniform: the histogram has no classes");
  int64_t total = 0;
  for (size_t c = 0; c < histogram.size(); ++c) {
    if (histogram[c] < 0) runtime_error("kl_from_uniform: class ", c, " has a negative count ", histogram[c]);
    total += histogram[c];
  }
  if (total == 0) runtime_error("kl_from_uniform: the histogram is empty (no samples)");
  // sum_c p_c log(p_c / (1/C)) = sum_c p_c log(p_c C); empty bins contribute 0 (p log p -> 0).
  const double classes = double(histogram.size());
  double kl = 0;
  for (int64_t count : histogram) {
    if (count == 0) continue;
    const double p = double(count) / double(total);
    kl += p * std::log(p * classes);
  }
  return kl > 0 ? kl : 0.0;  // rounding can leave -1e-17 for a perfectly even spread
}

double inception_score(const float* probs, int64_t n, int classes) {
  if (n < 1) runtime_error("inception_score: need at least one sample, got ", n);
  std::vector<double> marginal(size_t(classes), 0.0);  // p(y) = mean_x p(y|x)
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < classes; ++c) marginal[size_t(c)] += double(probs[i * classes + c]);
  for (double& m : marginal) m /= double(n);
  // E_x KL(p(y|x) || p(y)). Terms with p(y|x) = 0 contribute 0; where p(y|x) > 0, p(y) >= p(y|x)/n
  // > 0, so the logarithm is always finite.
  double mean_kl = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = probs + i * classes;
    double kl = 0;
    for (int c = 0; c < classes; ++c) {
      const double p = double(row[c]);
      if (p > 0) kl += p * (std::log(p) - std::log(marginal[size_t(c)]));
    }
    mean_kl += kl;
  }
  mean_kl /= double(n);
  return std::exp(mean_kl > 0 ? mean_kl : 0.0);
}

MeanSpread inception_score_splits(const float* probs, int64_t n, int classes, int splits) {
  if (splits < 1 || n < splits)
    runtime_error("inception_score: ", n, " samples cannot be split into ", splits, " parts");
  check_probability_rows(probs, n, classes);
  std::vector<double> scores;
  for (int k = 0; k < splits; ++k) {
    const int64_t begin = n * k / splits, end = n * (k + 1) / splits;
    scores.push_back(inception_score(probs + begin * classes, end - begin, classes));
  }
  return mean_and_spread(scores);
}

ClassStats class_statistics(const float* probs, int64_t n, int classes) {
  if (n < 1) runtime_error("class_statistics: need at least one sample, got ", n);
  if (classes < 1) runtime_error("class_statistics: need at least one class, got ", classes);
  if (!probs) runtime_error("class_statistics: no probabilities (null pointer)");
  check_probability_rows(probs, n, classes);

  ClassStats s;
  s.histogram.assign(size_t(classes), 0);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = probs + i * classes;
    int best = 0;  // ties go to the lowest class index
    for (int c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    ++s.histogram[size_t(best)];
  }
  for (int64_t count : s.histogram) s.modes_covered += count > 0 ? 1 : 0;
  s.kl_from_uniform = kl_from_uniform(s.histogram);

  s.inception_score = inception_score(probs, n, classes);
  return s;
}

}  // namespace gancu
