// Internals of the metrics that tests reach into: the k-NN metrics with an explicit tile height.
#pragma once

#include <cstdint>
#include <vector>

#include "gancu/exec.h"
#include "gancu/metrics.h"

namespace gancu::detail {

// Rows per distance tile when the caller does not choose: 1024, fewer when the other side is so
// large that a tile would pass kMaxTileElems values.
constexpr int kPrdcBlockRows = 1024;
constexpr int64_t kMaxTileElems = int64_t(1) << 24;  // 64 MiB of float per tile
int prdc_block_rows(int64_t cols);

// precision_recall_density_coverage with `block_rows` rows of distances per tile (>= 1). The
// result does not depend on block_rows; tests check that.
PRDC prdc_tiled(const Exec& ex, const float* real, int64_t n_real, const float* fake, int64_t n_fake, int dim,
                int k, int block_rows);

// Squared k-th nearest neighbour distances of each of the n points (device memory, [n, dim])
// among the others (the point itself excluded by index; duplicates count as neighbours at 0).
std::vector<float> knn_sq_radii(const Exec& ex, const float* points_dev, int n, int dim, int k,
                                int block_rows);

}  // namespace gancu::detail
