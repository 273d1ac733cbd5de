// Precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020)
// from k-nearest-neighbour balls in feature space.
//
// The features go to the Exec's backend once. Distances are computed there in tiles of
// block_rows x N by ops::pairwise_sq_distances and read back one tile at a time, so memory is
// O(block_rows x N + N x dim), never N^2. All comparisons are of squared distances against
// squared radii (no square roots; the order is the same).
//
// Conventions:
// - The radius of a point is the distance to its k-th nearest neighbour among the other points of
//   its own set; the point itself is excluded by index, so duplicates of it count (at distance 0).
// - Balls are closed: a point at exactly the radius is inside. (The reference code of Naeem et al.
//   uses a strict '<', which makes every metric 0 when all points coincide; Kynkaanniemi et al.
//   define the ball with '<='.)
#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/metrics.h"
#include "gancu/ops.h"
#include "metrics_internal.h"

namespace gancu {

namespace detail {

namespace {

// Below this many distances a tile is scanned by one thread (a parallel region costs more).
constexpr int64_t kParallelMinWork = 32768;

// out[rows, n_cols] = squared distances of rows [row0, row0 + rows) of `a` to all rows of `b`, on
// the backend (the one place that calls the op).
void distance_tile(const Exec& ex, const float* a_dev, int row0, int rows, const float* b_dev, int n_cols,
                   int dim, float* tile_dev) {
  ops::pairwise_sq_distances<float>(ex, rows, n_cols, dim, a_dev + int64_t(row0) * dim, b_dev, tile_dev);
}

// Walks `a` in tiles of block_rows against all of `b`: visit(row0, rows, tile) gets each tile on
// the host, [rows, n_b] row-major.
template <class Visit>
void for_each_tile(const Exec& ex, const float* a_dev, int n_a, const float* b_dev, int n_b, int dim,
                   int block_rows, Visit&& visit) {
  const int block = std::min(block_rows, n_a);
  const size_t tile_elems = size_t(block) * size_t(n_b);
  Buffer<float> tile_dev(ex, tile_elems);
  HostBuffer<float> tile_host(ex.backend(), tile_elems);
  for (int row0 = 0; row0 < n_a; row0 += block) {
    const int rows = std::min(block, n_a - row0);
    distance_tile(ex, a_dev, row0, rows, b_dev, n_b, dim, tile_dev.data());
    copy_to_host(ex, tile_host.data(), tile_dev.data(), size_t(rows) * size_t(n_b) * sizeof(float));
    visit(row0, rows, static_cast<const float*>(tile_host.data()));
  }
}

void check_features(const float* x, int64_t n, int dim, const char* which) {
  if (!x) runtime_error("precision_recall_density_coverage: no ", which, " features (null pointer)");
  const int64_t total = n * dim;
  for (int64_t i = 0; i < total; ++i)
    if (!std::isfinite(x[i]))
      runtime_error("precision_recall_density_coverage: ", which, " feature ", i % dim, " of sample ",
                    i / dim, " is not finite");
}

}  // namespace

int prdc_block_rows(int64_t cols) {
  const int64_t by_memory = std::max<int64_t>(1, kMaxTileElems / std::max<int64_t>(cols, 1));
  return int(std::min<int64_t>(kPrdcBlockRows, by_memory));
}

std::vector<float> knn_sq_radii(const Exec& ex, const float* points_dev, int n, int dim, int k,
                                int block_rows) {
  std::vector<float> radii(static_cast<size_t>(n));
  auto kth_per_row = [&](int row0, int rows, const float* tile) {
#pragma omp parallel if (int64_t(rows) * n >= kParallelMinWork)
    {
      std::vector<float> others(size_t(n) - 1);
#pragma omp for schedule(static)
      for (int r = 0; r < rows; ++r) {
        const float* row = tile + size_t(r) * size_t(n);
        const int self = row0 + r;
        std::copy(row, row + self, others.begin());
        std::copy(row + self + 1, row + n, others.begin() + self);
        std::nth_element(others.begin(), others.begin() + (k - 1), others.end());
        radii[size_t(self)] = others[size_t(k - 1)];
      }
    }
  };
  for_each_tile(ex, points_dev, n, points_dev, n, dim, block_rows, kth_per_row);
  return radii;
}

PRDC prdc_tiled(const Exec& ex, const float* real, int64_t n_real, const float* fake, int64_t n_fake, int dim,
                int k, int block_rows) {
  const char* fn = "precision_recall_density_coverage";
  if (dim < 1) runtime_error(fn, ": feature dimension must be at least 1, got ", dim);
  if (k < 1) runtime_error(fn, ": k must be at least 1, got ", k);
  if (n_real > INT_MAX || n_fake > INT_MAX)
    runtime_error(fn, ": at most ", INT_MAX, " samples per set, got ", n_real, " real and ", n_fake, " fake");
  if (n_real <= k || n_fake <= k)
    runtime_error(fn, ": k = ", k,
                  " needs more than k samples in each set (each point's k-th neighbour is "
                  "among the others), got ",
                  n_real, " real and ", n_fake, " fake");
  if (block_rows < 1) runtime_error(fn, ": block_rows must be at least 1, got ", block_rows);
  check_features(real, n_real, dim, "real");
  check_features(fake, n_fake, dim, "fake");
  const int nr = int(n_real), nf = int(n_fake);

  Buffer<float> real_dev(ex, size_t(n_real) * dim), fake_dev(ex, size_t(n_fake) * dim);
  copy_to_device(ex, real_dev.data(), real, size_t(n_real) * dim * sizeof(float));
  copy_to_device(ex, fake_dev.data(), fake, size_t(n_fake) * dim * sizeof(float));

  const std::vector<float> real_r2 = knn_sq_radii(ex, real_dev.data(), nr, dim, k, block_rows);
  const std::vector<float> fake_r2 = knn_sq_radii(ex, fake_dev.data(), nf, dim, k, block_rows);

  // One pass over real x fake distances gives all four counts.
  std::vector<uint8_t> fake_in_real_ball(size_t(nf), 0);  // precision, per fake point
  std::vector<uint8_t> real_in_fake_ball(size_t(nr), 0);  // recall, per real point
  std::vector<int64_t> fakes_in_ball(size_t(nr), 0);      // density and coverage, per real ball
  constexpr int kColChunk = 256;
  const int col_chunks = (nf + kColChunk - 1) / kColChunk;
  auto count_tile = [&](int row0, int rows, const float* tile) {
    const bool parallel = int64_t(rows) * nf >= kParallelMinWork;
#pragma omp parallel for schedule(static) if (parallel)
    for (int r = 0; r < rows; ++r) {
      const float* row = tile + size_t(r) * size_t(nf);
      const float radius = real_r2[size_t(row0 + r)];
      int64_t inside = 0;
      bool in_fake_ball = false;
      for (int j = 0; j < nf; ++j) {
        inside += row[j] <= radius ? 1 : 0;
        in_fake_ball |= row[j] <= fake_r2[size_t(j)];
      }
      fakes_in_ball[size_t(row0 + r)] = inside;
      if (in_fake_ball) real_in_fake_ball[size_t(row0 + r)] = 1;
    }
    // Precision marks columns: split by column ranges so that no two threads write one flag.
#pragma omp parallel for schedule(static) if (parallel)
    for (int chunk = 0; chunk < col_chunks; ++chunk) {
      const int j0 = chunk * kColChunk, j1 = std::min(nf, j0 + kColChunk);
      for (int r = 0; r < rows; ++r) {
        const float* row = tile + size_t(r) * size_t(nf);
        const float radius = real_r2[size_t(row0 + r)];
        for (int j = j0; j < j1; ++j)
          if (row[j] <= radius) fake_in_real_ball[size_t(j)] = 1;
      }
    }
  };
  for_each_tile(ex, real_dev.data(), nr, fake_dev.data(), nf, dim, block_rows, count_tile);

  int64_t precise = 0, recalled = 0, covered = 0, inside_total = 0;
  for (uint8_t f : fake_in_real_ball) precise += f;
  for (uint8_t f : real_in_fake_ball) recalled += f;
  for (int64_t c : fakes_in_ball) {
    inside_total += c;
    covered += c > 0 ? 1 : 0;
  }
  PRDC out;
  out.precision = double(precise) / double(nf);
  out.recall = double(recalled) / double(nr);
  out.f1 =
      out.precision + out.recall > 0 ? 2 * out.precision * out.recall / (out.precision + out.recall) : 0.0;
  out.density = double(inside_total) / (double(k) * double(nf));
  out.coverage = double(covered) / double(nr);
  return out;
}

}  // namespace detail

PRDC precision_recall_density_coverage(const Exec& ex, const float* real, int64_t n_real, const float* fake,
                                       int64_t n_fake, int dim, int k) {
  return detail::prdc_tiled(ex, real, n_real, fake, n_fake, dim, k,
                            detail::prdc_block_rows(std::max(n_real, n_fake)));
}

}  // namespace gancu
