// Helpers for deterministic OpenMP reductions on the CPU backend.
//
// Reductions (bias gradients, batch-norm statistics, loss sums) split their rows into a number of
// parts that depends only on the problem size, never on the thread count, and add the per-part
// partial sums in part order afterwards. Results are therefore bit-identical for any
// OMP_NUM_THREADS, and no float atomics are needed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gancu::cpu {

// Near-equal split of [0, n) into `parts` ranges; range `i` is [begin, end).
inline void split_range(int64_t n, int64_t parts, int64_t i, int64_t& begin, int64_t& end) {
  const int64_t base = n / parts, extra = n % parts;
  begin = i * base + std::min(i, extra);
  end = begin + base + (i < extra ? 1 : 0);
}

// How many partial sums a reduction over `rows` rows of `cols` values uses: enough parts to keep
// a few threads busy once there is real work, each at least ~8k values so the partials stay small.
inline int64_t reduction_parts(int64_t rows, int64_t cols) {
  const int64_t by_size = (rows * std::max<int64_t>(cols, 1)) / 8192;
  return std::clamp<int64_t>(by_size, 1, std::min<int64_t>(64, std::max<int64_t>(rows, 1)));
}

// Scratch host memory for partial sums, reused across calls from the same thread so that steady
// state training does not hit malloc. `slot` separates buffers that are alive at the same time.
template <class T>
T* host_scratch(size_t n, int slot = 0) {
  thread_local std::vector<T> buffers[4];
  std::vector<T>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// A deterministic reduction over `rows` rows: f(r0, r1, acc) adds rows [r0, r1) into acc[width]
// (zeroed before), once per part, in parallel; result[width] receives the sum over the parts,
// added in part order, in double. `row_cost` (values per row) sizes the parts. Acc is the type
// of the per-part accumulators: double where precision matters, T where the parts are summed
// over few rows and the accumulation itself is the hot loop.
template <class Acc = double, class F>
void reduce_rows(int64_t rows, int64_t row_cost, int64_t width, double* result, F&& f) {
  const int64_t parts = reduction_parts(rows, row_cost);
  Acc* partial = host_scratch<Acc>(size_t(parts * width), 3);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int64_t part = 0; part < parts; ++part) {
    int64_t r0, r1;
    split_range(rows, parts, part, r0, r1);
    Acc* acc = partial + part * width;
    std::fill(acc, acc + width, Acc(0));
    f(r0, r1, acc);
  }
  for (int64_t i = 0; i < width; ++i) {
    double s = 0;
    for (int64_t part = 0; part < parts; ++part) s += double(partial[part * width + i]);
    result[i] = s;
  }
}

// out[c] += sum over rows of a[row, c], a row-major [rows, cols]. Accumulates in double.
template <class T>
void column_sums_add(const T* a, int64_t rows, int64_t cols, T* out) {
  if (rows <= 0 || cols <= 0) return;
  double* sums = host_scratch<double>(size_t(cols), 2);
  reduce_rows(rows, cols, cols, sums, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = a + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) acc[c] += double(row[c]);
    }
  });
  for (int64_t c = 0; c < cols; ++c) out[c] += T(sums[c]);
}

}  // namespace gancu::cpu
