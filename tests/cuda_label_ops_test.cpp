// The CUDA ops of conditional models against their CPU twins (ops.h, "Class labels"): the drawn
// classes bit for bit (the same Philox definition), one-hot rows and the embedding lookup bit for
// bit (copies), the table gradient without scale bit for bit (the same float additions in sample
// order, no atomics) and run twice to the same bits, the scaled table gradient and the projection
// within 1e-5 (a product and a sum that the compilers may fuse differently). Labels that are not
// one-hot, a class with no sample, batch 1 and the preset's sizes (64 samples, 10 classes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu {
namespace {

constexpr double kTol = 1e-5;

using test::random_vec;
using test::rel_error;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class CudaLabelOps : public test::CudaAgainstCpu {
 protected:
  CudaLabelOps() : CudaAgainstCpu(1) {}
  // Label rows [samples, classes]: one-hot, except (when `soft`) random rows whose largest value
  // names the class. Class `classes - 1` gets no sample when there are more classes than two.
  std::vector<float> labels(const EmbeddingDims& d, uint32_t seed, bool soft) {
    std::vector<float> rows = soft ? random_vec(size_t(d.samples * d.classes), seed)
                                   : std::vector<float>(size_t(d.samples * d.classes), 0.0f);
    if (!soft) {
      std::mt19937 gen(seed);
      const int used = d.classes > 2 ? d.classes - 1 : d.classes;
      for (int64_t s = 0; s < d.samples; ++s)
        rows[size_t(s * d.classes + int64_t(gen() % unsigned(used)))] = 1;
    }
    return rows;
  }
};

TEST_F(CudaLabelOps, DrawnClassesAndOneHotRowsAreTheCpusBits) {
  for (int classes : {1, 3, 10}) {
    const int64_t n = 777;
    int64_t step = 41;
    std::vector<int32_t> want(static_cast<size_t>(n));
    ops::draw_classes<float>(cpu_, n, classes, 9, kStreamClasses, &step, want.data());
    Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{step});
    Buffer<int32_t> gcls(gpu_, std::vector<int32_t>(size_t(n), -5));
    ops::draw_classes<float>(gpu_, n, classes, 9, kStreamClasses, gstep.data(), gcls.data());
    EXPECT_EQ(gcls.download(), want) << classes << " classes";

    std::vector<float> oh(size_t(n * classes));
    ops::one_hot<float>(cpu_, n, classes, want.data(), oh.data());
    auto goh = poisoned(oh.size());
    ops::one_hot<float>(gpu_, n, classes, gcls.data(), goh.data());
    EXPECT_TRUE(same_bits(goh.download(), oh)) << classes << " classes";
  }
}

TEST_F(CudaLabelOps, EmbeddingAndProjectionAgreeWithTheCpu) {
  const EmbeddingDims cases[] = {{1, 1, 1}, {7, 3, 5}, {64, 10, 128}, {33, 10, 100}};
  uint32_t seed = 500;
  for (const EmbeddingDims& d : cases)
    for (bool soft : {false, true}) {
      SCOPED_TRACE(testing::Message() << d.samples << " samples, " << d.classes << " classes, dim " << d.dim
                                      << (soft ? ", soft labels" : ""));
      const auto label = labels(d, seed++, soft);
      const auto table = random_vec(size_t(d.classes * d.dim), seed++);
      const auto x = random_vec(size_t(d.samples * d.dim), seed++);
      const auto dy = random_vec(size_t(d.samples * d.dim), seed++);
      const auto scale = random_vec(size_t(d.samples), seed++);
      const auto start = random_vec(table.size(), seed++);
      auto glabel = up(label), gtable = up(table), gx = up(x), gdy = up(dy), gscale = up(scale);

      std::vector<float> y(size_t(d.samples * d.dim));
      ops::embedding_forward<float>(cpu_, d, label.data(), table.data(), y.data());
      auto gy = poisoned(y.size());
      ops::embedding_forward<float>(gpu_, d, glabel.data(), gtable.data(), gy.data());
      EXPECT_TRUE(same_bits(gy.download(), y)) << "lookup";

      auto dtable = start;
      ops::embedding_backward<float>(cpu_, d, label.data(), dy.data(), nullptr, dtable.data());
      std::vector<float> runs[2];
      for (auto& run : runs) {
        auto gdtable = up(start);
        ops::embedding_backward<float>(gpu_, d, glabel.data(), gdy.data(), nullptr, gdtable.data());
        run = gdtable.download();
      }
      EXPECT_TRUE(same_bits(runs[0], dtable)) << "table gradient: the CPU's additions in order";
      EXPECT_TRUE(same_bits(runs[0], runs[1])) << "table gradient: the same bits on every run";

      auto sdtable = start;
      ops::embedding_backward<float>(cpu_, d, label.data(), x.data(), scale.data(), sdtable.data());
      auto gsdtable = up(start);
      ops::embedding_backward<float>(gpu_, d, glabel.data(), gx.data(), gscale.data(), gsdtable.data());
      EXPECT_LE(rel_error(gsdtable.download(), sdtable), kTol) << "scaled table gradient";
      EXPECT_GE(rel_error(gsdtable.download(), sdtable), 0.0);

      std::vector<float> p(size_t(d.samples));
      ops::projection_forward<float>(cpu_, d, label.data(), table.data(), x.data(), p.data());
      auto gp = poisoned(p.size());
      ops::projection_forward<float>(gpu_, d, glabel.data(), gtable.data(), gx.data(), gp.data());
      const double ep = rel_error(gp.download(), p);
      EXPECT_GE(ep, 0.0) << "projection: unwritten output";
      EXPECT_LE(ep, kTol) << "projection";

      for (bool acc : {false, true}) {
        auto dx = random_vec(x.size(), seed++);
        auto gdx = acc ? up(dx) : poisoned(dx.size());
        ops::projection_backward<float>(cpu_, d, label.data(), table.data(), scale.data(), dx.data(), acc);
        ops::projection_backward<float>(gpu_, d, glabel.data(), gtable.data(), gscale.data(), gdx.data(),
                                        acc);
        const double e = rel_error(gdx.download(), dx);
        EXPECT_GE(e, 0.0) << "projection dx: unwritten output, acc " << acc;
        EXPECT_LE(e, kTol) << "projection dx, acc " << acc;
      }
    }
}

}  // namespace
}  // namespace gancu
