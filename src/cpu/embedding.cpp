// Learned class embeddings and the projection discriminator's term on the CPU (ops.h, "Class
// labels"). A sample's class is the position of the largest value of its label row (label_class).
// The table gradient walks the samples in order per table entry, as the CUDA twin does, so both
// add the same terms in the same order.
#include "cpu/parallel.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// The position of the largest value of a label row (the first on ties).
template <class T>
int label_class(const T* row, int classes) {
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (row[c] > row[best]) best = c;
  return best;
}

}  // namespace

template <class T>
void embedding_forward(const Exec&, const EmbeddingDims& d, const T* label, const T* table, T* y) {
  check_embedding_dims(d, "embedding_forward");
  for (int64_t s = 0; s < d.samples; ++s) {
    const T* row = table + int64_t(label_class(label + s * d.classes, d.classes)) * d.dim;
    std::copy(row, row + d.dim, y + s * d.dim);
  }
}

template <class T>
void embedding_backward(const Exec&, const EmbeddingDims& d, const T* label, const T* dy, const T* scale,
                        T* dtable) {
  check_embedding_dims(d, "embedding_backward");
  // Per class, the samples in order (no buffer of classes: the training loop allocates nothing).
#pragma omp parallel for schedule(static) if (int64_t(d.classes) * d.dim * d.samples > kParallelMinWork)
  for (int c = 0; c < d.classes; ++c) {
    T* to = dtable + int64_t(c) * d.dim;
    for (int64_t s = 0; s < d.samples; ++s) {
      if (label_class(label + s * d.classes, d.classes) != c) continue;
      const T* from = dy + s * d.dim;
      if (scale)
        for (int k = 0; k < d.dim; ++k) to[k] += scale[s] * from[k];
      else
        for (int k = 0; k < d.dim; ++k) to[k] += from[k];
    }
  }
}

template <class T>
void projection_forward(const Exec&, const EmbeddingDims& d, const T* label, const T* table, const T* x,
                        T* y) {
  check_embedding_dims(d, "projection_forward");
  for (int64_t s = 0; s < d.samples; ++s) {
    const T* row = table + int64_t(label_class(label + s * d.classes, d.classes)) * d.dim;
    T sum = T(0);
    for (int k = 0; k < d.dim; ++k) sum += row[k] * x[s * d.dim + k];
    y[s] = sum;
  }
}

template <class T>
void projection_backward(const Exec&, const EmbeddingDims& d, const T* label, const T* table, const T* dy,
                         T* dx, bool accumulate_dx) {
  check_embedding_dims(d, "projection_backward");
  if (!dx) return;
  for (int64_t s = 0; s < d.samples; ++s) {
    const T* row = table + int64_t(label_class(label + s * d.classes, d.classes)) * d.dim;
    T* to = dx + s * d.dim;
    for (int k = 0; k < d.dim; ++k) to[k] = accumulate_dx ? to[k] + dy[s] * row[k] : dy[s] * row[k];
  }
}

#define GANCU_INSTANTIATE(T)                                                                                \
  template void embedding_forward<T>(const Exec&, const EmbeddingDims&, const T*, const T*, T*);            \
  template void embedding_backward<T>(const Exec&, const EmbeddingDims&, const T*, const T*, const T*, T*); \
  template void projection_forward<T>(const Exec&, const EmbeddingDims&, const T*, const T*, const T*, T*); \
  template void projection_backward<T>(const Exec&, const EmbeddingDims&, const T*, const T*, const T*, T*, \
                                       bool);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
