// Every CUDA op against its CPU twin (src/cpu/) on fresh random inputs: forward and backward,
// the shapes of the dcgan / dcgan32 / mlp presets plus small odd ones, each activation,
// accumulate on and off, null gradients.
//
// Comparison: relative error ||gpu - cpu|| / ||cpu|| (2-norms, in double), with the bound stated
// per op below; any NaN in a GPU output fails. Outputs that an op overwrites are poisoned with
// NaN on the GPU before the call, so an element the kernel forgets to write is caught; outputs
// that accumulate start from the same random values on both sides.
//
// Bounds (fp32):
//   kElementwise 1e-5  activations, dropout, fill, add_into, bias/act epilogues, optimizers, loss
//   kReduction   1e-5  gan_loss sums, bias-gradient sums
//   kGemm        1e-4  gemm, linear, conv, transposed conv, batch norm (different summation orders)
//   kTf32        5e-3  the same with TF32 tensor-core math (10-bit mantissa inputs)
//   fill_noise: uniform and gather bit-for-bit; normal within 1e-5 (libm vs CUDA logf/sinf).
//   Pooling: max forward bit-for-bit (a copy); max backward, average forward/backward kElementwise
//   (the same additions in the same order). Bilinear resize forward and backward: kElementwise
//   (the same taps and weights, bilinear_taps.h; fused multiply-adds may differ). softmax,
//   softmax_cross_entropy: kElementwise for probabilities and dlogits (fp32 vs double row sums on the CPU),
//   kReduction for the loss, the correct count exactly. pairwise_sq_distances: kGemm (kTf32 with TF32).
//   sample_mixture: 1e-5 (libm vs CUDA logf/sinf/cosf, as fill_noise). gan_loss, l1_reconstruction_loss:
//   kElementwise for the gradients, kReduction for the sums; began_update kElementwise. interpolate_samples:
//   the draws bit for bit, the points within 1 ulp (both compute one __fmaf_rn / std::fma of the same
//   numbers: they should be equal). perturb_samples: the draws bit for bit, the points kElementwise (sigma is
//   a sum in another order). gradient_penalty: v kElementwise, sums kReduction. activation_second_order,
//   rmsprop_step: kElementwise. clamp_values, maxpool2d_jvp, concat, add: bit for bit (selects,
//   copies, and the same float additions in the same order). Layer norm (all four ops): kGemm
//   (row and channel sums in other orders, the jvp backward's cancellations).
//   mbdisc_forward: kElementwise (each o summed over j in the same order on both sides; only
//   expf against the CPU's polynomial exp differs, a few ulp per term); mbdisc_backward:
//   kReduction (the same, and its terms cancel). mbstd forward and backward: kReduction (double
//   sums in another order, rounded to float). batch_mean, feature_matching_loss: kReduction
//   (double column sums in another order). mse_loss: the gradient kElementwise (the same double
//   arithmetic rounded once), the sum kReduction; row_means kReduction.
//
// Every test skips itself (GTEST_SKIP, via the fixture) where cuda_available() says no.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_test_util.h"
#if GANCU_CUDA_EMULATION
#include <cudnn.h>  // the emulator's stand-in: its algorithm list
#endif

#include "gancu/arena.h"
#include "gancu/conv_plans.h"
#include "gancu/exec.h"
#include "gancu/graph.h"
#include "gancu/memory.h"
#include "gancu/mixture.h"
#include "gancu/network.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu {
namespace {

constexpr double kElementwise = 1e-5;
constexpr double kReduction = 1e-5;
constexpr double kGemm = 1e-4;
constexpr double kTf32 = 5e-3;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

using test::random_vec;
using test::rel_error;

// The largest distance in units in the last place between two float vectors (0 where both are
// NaN; a huge number where only one is).
int64_t max_ulp(const std::vector<float>& a, const std::vector<float>& b) {
  auto key = [](float f) {
    int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i >= 0 ? int64_t(i) : -int64_t(i & 0x7fffffff);  // monotone in f; +0 and -0 both 0
  };
  int64_t worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (!(std::isnan(a[i]) && std::isnan(b[i]))) return std::numeric_limits<int64_t>::max();
      continue;
    }
    worst = std::max(worst, std::abs(key(a[i]) - key(b[i])));
  }
  return worst;
}

#define EXPECT_REL(gpu, cpu, tol, what)                                                       \
  do {                                                                                        \
    ASSERT_EQ((gpu).size(), (cpu).size()) << what;                                            \
    const double e_ = rel_error((gpu), (cpu));                                                \
    EXPECT_GE(e_, 0.0) << what << ": the GPU output holds a NaN or inf (unwritten element?)"; \
    EXPECT_LE(e_, (tol)) << what;                                                             \
  } while (0)

// GANCU_TEST_QUICK=1 (set by tools/gpu_check.sh for the compute-sanitizer runs, which are 10-100x
// slower) keeps the first two shapes of each list.
bool quick() {
  return std::getenv("GANCU_TEST_QUICK") != nullptr;
}
template <class V>
V first_shapes(V v) {
  if (quick() && v.size() > 2) v.resize(2);
  return v;
}

const Act kActs[] = {Act::None, Act::ReLU, Act::LeakyReLU, Act::Tanh, Act::Sigmoid};

// The settings (activations, value ranges) a test runs on a shape of `elements` values. On a
// GPU, all of them on every shape. On the SIMT emulator every GPU thread is a fiber on the CPU
// (under ASan in CI), so the model-sized shapes (over 2^18 values) take turns: the k-th large
// shape of a test runs setting k mod n only, with every variant. Each setting still meets large
// tilings, and each shape its launch configurations; `large_seen` counts the test's large shapes.
template <class T>
std::vector<T> settings_for(int64_t elements, int& large_seen, std::vector<T> all) {
#if GANCU_CUDA_EMULATION
  if (elements > (int64_t(1) << 18)) return {all[size_t(large_seen++) % all.size()]};
#else
  (void)elements;
  (void)large_seen;
#endif
  return all;
}
std::vector<Act> acts_for(int64_t elements, int& large_seen) {
  return settings_for(elements, large_seen, std::vector<Act>(std::begin(kActs), std::end(kActs)));
}

class CudaOps : public test::CudaAgainstCpu {
 protected:
  // A GPU copy of v, or NaN when the op overwrites it (its CPU twin then starts from v).
  Buffer<float> out_buf(const std::vector<float>& v, bool accumulates) {
    return accumulates ? up(v) : poisoned(v.size());
  }
  // Workspaces sized by both backends' conv_workspace_bytes.
  void plan_conv(const ConvDims& d, bool transposed) {
    const size_t g = ops::conv_workspace_bytes<float>(gpu_, d, transposed);
    const size_t c = ops::conv_workspace_bytes<float>(cpu_, d, transposed);
    if (g > gpu_ws_.size() * sizeof(float)) {
      gpu_ws_ = Buffer<float>(gpu_, g / sizeof(float) + 1);
      gpu_.set_workspace(gpu_ws_.data(), gpu_ws_.size() * sizeof(float));
    }
    if (c > cpu_ws_.size() * sizeof(float)) {
      cpu_ws_.resize(c / sizeof(float) + 1);
      cpu_.set_workspace(cpu_ws_.data(), cpu_ws_.size() * sizeof(float));
    }
  }

  Buffer<float> gpu_ws_;
  std::vector<float> cpu_ws_;
};

// ---- gemm ------------------------------------------------------------------------------------

TEST_F(CudaOps, GemmAllTransposes) {
  struct Case {
    int m, n, k;
  } cases[] = {{1, 1, 1}, {7, 5, 3}, {64, 100, 256}, {33, 129, 65}};
  uint32_t seed = 1;
  for (const auto& c : cases)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          const int lda = ta ? c.m : c.k, ldb = tb ? c.k : c.n, ldc = c.n;
          const auto a = random_vec(size_t(c.m) * c.k, seed++), b = random_vec(size_t(c.k) * c.n, seed++);
          auto cc = random_vec(size_t(c.m) * c.n, seed++);
          auto ga = up(a), gb = up(b);
          auto gc = out_buf(cc, beta != 0.0f);
          ops::gemm<float>(cpu_, ta, tb, c.m, c.n, c.k, 1.5f, a.data(), lda, b.data(), ldb, beta, cc.data(),
                           ldc);
          ops::gemm<float>(gpu_, ta, tb, c.m, c.n, c.k, 1.5f, ga.data(), lda, gb.data(), ldb, beta, gc.data(),
                           ldc);
          EXPECT_REL(
              gc.download(), cc, kGemm,
              "gemm " << c.m << "x" << c.n << "x" << c.k << " ta=" << ta << " tb=" << tb << " beta=" << beta);
        }
}

// ---- linear ----------------------------------------------------------------------------------

const std::vector<LinearDims> kLinearShapes = {
    {3, 5, 7},                                                           // odd
    {64, 100, 256},   {64, 256, 512}, {64, 512, 1024}, {64, 1024, 784},  // mlp generator
    {64, 784, 512},   {64, 512, 256}, {64, 256, 1},                      // mlp discriminator
    {64, 100, 12544}, {64, 6272, 1},                                     // dcgan
    {64, 100, 4096},  {64, 4096, 1},                                     // dcgan32
};

TEST_F(CudaOps, LinearForward) {
  uint32_t seed = 100;
  int large = 0;
  for (const auto& d : first_shapes(kLinearShapes))
    for (Act act : acts_for(int64_t(d.batch) * std::max(d.in, d.out), large))
      for (bool bias : {true, false}) {
        const auto x = random_vec(size_t(d.batch) * d.in, seed++),
                   w = random_vec(size_t(d.out) * d.in, seed++, -0.1f, 0.1f);
        const auto b = random_vec(size_t(d.out), seed++);
        std::vector<float> y(size_t(d.batch) * d.out);
        auto gx = up(x), gw = up(w), gb = up(b);
        auto gy = poisoned(y.size());
        ops::linear_forward<float>(cpu_, d, x.data(), w.data(), bias ? b.data() : nullptr, y.data(),
                                   {act, 0.2f});
        ops::linear_forward<float>(gpu_, d, gx.data(), gw.data(), bias ? gb.data() : nullptr, gy.data(),
                                   {act, 0.2f});
        EXPECT_REL(
            gy.download(), y, kGemm,
            "linear " << d.batch << "x" << d.in << "->" << d.out << " " << act_name(act) << " bias=" << bias);
      }
}

// A bias that is not 16-byte aligned takes the cuBLAS + epilogue path instead of cuBLASLt.
TEST_F(CudaOps, LinearForwardMisalignedBias) {
  const LinearDims d{64, 100, 256};
  const auto x = random_vec(size_t(d.batch) * d.in, 1), w = random_vec(size_t(d.out) * d.in, 2, -0.1f, 0.1f);
  const auto b = random_vec(size_t(d.out) + 1, 3);
  for (Act act : {Act::ReLU, Act::Tanh}) {
    std::vector<float> y(size_t(d.batch) * d.out);
    auto gx = up(x), gw = up(w), gb = up(b);
    auto gy = poisoned(y.size());
    ops::linear_forward<float>(cpu_, d, x.data(), w.data(), b.data() + 1, y.data(), {act, 0.2f});
    ops::linear_forward<float>(gpu_, d, gx.data(), gw.data(), gb.data() + 1, gy.data(), {act, 0.2f});
    EXPECT_REL(gy.download(), y, kGemm, "linear misaligned bias " << act_name(act));
  }
}

TEST_F(CudaOps, LinearForwardTf32) {
  gpu_.set_tf32(true);
  const LinearDims d{64, 1024, 784};
  const auto x = random_vec(size_t(d.batch) * d.in, 11),
             w = random_vec(size_t(d.out) * d.in, 12, -0.1f, 0.1f);
  const auto b = random_vec(size_t(d.out), 13);
  std::vector<float> y(size_t(d.batch) * d.out);
  auto gx = up(x), gw = up(w), gb = up(b);
  auto gy = poisoned(y.size());
  ops::linear_forward<float>(cpu_, d, x.data(), w.data(), b.data(), y.data(), {Act::Tanh, 0.2f});
  ops::linear_forward<float>(gpu_, d, gx.data(), gw.data(), gb.data(), gy.data(), {Act::Tanh, 0.2f});
  EXPECT_REL(gy.download(), y, kTf32, "linear tf32");
}

TEST_F(CudaOps, LinearBackward) {
  uint32_t seed = 300;
  int large = 0;
  for (const auto& d : first_shapes(kLinearShapes))
    for (Act act : acts_for(int64_t(d.batch) * std::max(d.in, d.out), large))
      for (int variant = 0; variant < 3; ++variant) {
        // 0: all grads, dx overwritten; 1: dx accumulated; 2: null dx, dw, db (dy only)
        const bool acc = variant == 1, none = variant == 2;
        const auto x = random_vec(size_t(d.batch) * d.in, seed++),
                   w = random_vec(size_t(d.out) * d.in, seed++, -0.1f, 0.1f);
        const auto b = random_vec(size_t(d.out), seed++);
        std::vector<float> y(size_t(d.batch) * d.out);
        ops::linear_forward<float>(cpu_, d, x.data(), w.data(), b.data(), y.data(), {act, 0.2f});
        auto dy = random_vec(y.size(), seed++);
        auto dx = random_vec(x.size(), seed++), dw = random_vec(w.size(), seed++),
             db = random_vec(b.size(), seed++);
        auto gx = up(x), gw = up(w), gy = up(y), gdy = up(dy);
        auto gdx = out_buf(dx, acc), gdw = up(dw), gdb = up(db);
        ops::linear_backward<float>(cpu_, d, x.data(), w.data(), y.data(), dy.data(),
                                    none ? nullptr : dx.data(), acc, none ? nullptr : dw.data(),
                                    none ? nullptr : db.data(), {act, 0.2f});
        ops::linear_backward<float>(gpu_, d, gx.data(), gw.data(), gy.data(), gdy.data(),
                                    none ? nullptr : gdx.data(), acc, none ? nullptr : gdw.data(),
                                    none ? nullptr : gdb.data(), {act, 0.2f});
        const std::string what = "linear backward " + std::to_string(d.batch) + "x" + std::to_string(d.in) +
                                 "->" + std::to_string(d.out) + " " + act_name(act) + " variant " +
                                 std::to_string(variant);
        EXPECT_REL(gdy.download(), dy, kElementwise, what << " dy");
        if (!none) {
          EXPECT_REL(gdx.download(), dx, kGemm, what << " dx");
          EXPECT_REL(gdw.download(), dw, kGemm, what << " dw");
          EXPECT_REL(gdb.download(), db, kGemm, what << " db");
        }
      }
}

// ---- convolutions ------------------------------------------------------------------------------

std::vector<ConvDims> conv_shapes() {
  return {
      ConvDims::conv(3, 9, 7, 5, 6, 3, 3, 2, 1),      // odd
      ConvDims::conv(2, 5, 5, 3, 4, 1, 1, 1, 0),      // pointwise
      ConvDims::conv(64, 28, 28, 1, 64, 4, 4, 2, 1),  // dcgan D
      ConvDims::conv(64, 14, 14, 64, 128, 4, 4, 2, 1),
      ConvDims::conv(64, 28, 28, 64, 1, 3, 3, 1, 1),  // dcgan G output
      ConvDims::conv(64, 32, 32, 3, 64, 4, 4, 2, 1),  // dcgan32 D
      ConvDims::conv(64, 16, 16, 64, 128, 4, 4, 2, 1),
      ConvDims::conv(64, 8, 8, 128, 256, 4, 4, 2, 1),
      ConvDims::conv(2, 7, 9, 6, 8, 1, 7, 1, 0, 3),  // Inception's 1x7 and 7x1, padded per axis
      ConvDims::conv(2, 9, 7, 6, 8, 7, 1, 1, 3, 0),
      ConvDims::conv(2, 8, 7, 4, 5, 3, 1, 2, 1, 0),  // 3x1, strided
  };
}
std::vector<ConvDims> conv_transpose_shapes() {
  return {
      ConvDims::transposed(3, 4, 5, 6, 5, 3, 3, 2, 1),       // odd
      ConvDims::transposed(64, 7, 7, 256, 128, 4, 4, 2, 1),  // dcgan G
      ConvDims::transposed(64, 14, 14, 128, 64, 4, 4, 2, 1),
      ConvDims::transposed(64, 4, 4, 256, 128, 4, 4, 2, 1),  // dcgan32 G
      ConvDims::transposed(64, 8, 8, 128, 64, 4, 4, 2, 1),
      ConvDims::transposed(64, 16, 16, 64, 3, 4, 4, 2, 1),
      ConvDims::transposed(2, 4, 5, 6, 3, 1, 3, 2, 0, 1),  // 1x3, padded per axis
  };
}

std::string conv_name(const ConvDims& d) {
  return std::to_string(d.n) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
         std::to_string(d.c) + " k" + std::to_string(d.k) + " " + std::to_string(d.r) + "x" +
         std::to_string(d.s) + " s" + std::to_string(d.stride) + " p" + std::to_string(d.pad_h) + "x" +
         std::to_string(d.pad_w);
}

// One convolution (transposed or not) forward and backward, every variant, against the CPU.
void conv_round(Exec& cpu, Exec& gpu, const ConvDims& d, bool transposed, Act act, int variant, uint32_t seed,
                double tol);

TEST_F(CudaOps, Conv2dForwardBackward) {
  uint32_t seed = 500;
  int large = 0;
  for (const auto& d : first_shapes(conv_shapes())) {
    plan_conv(d, false);
    for (Act act : acts_for(std::max(d.x_elems(), d.y_elems()), large))
      for (int variant = 0; variant < 3; ++variant)
        conv_round(cpu_, gpu_, d, false, act, variant, seed++, kGemm);
  }
}

TEST_F(CudaOps, ConvTranspose2dForwardBackward) {
  uint32_t seed = 700;
  int large = 0;
  for (const auto& d : first_shapes(conv_transpose_shapes())) {
    plan_conv(d, true);
    for (Act act : acts_for(std::max(d.x_elems(), d.y_elems()), large))
      for (int variant = 0; variant < 3; ++variant)
        conv_round(cpu_, gpu_, d, true, act, variant, seed++, kGemm);
  }
}

// The CUDA backend's cached plans of the dims `d` (any batch-independent key condition).
std::vector<ConvPlanReport> plans_of(const Exec& ex, const ConvDims& d) {
  std::vector<ConvPlanReport> out;
  for (const ConvPlanReport& r : conv_plan_report(ex)) {
    const ConvDims& e = r.dims;
    if (std::tie(e.n, e.h, e.w, e.c, e.k, e.r, e.s, e.stride, e.pad_h, e.pad_w) ==
        std::tie(d.n, d.h, d.w, d.c, d.k, d.r, d.s, d.stride, d.pad_h, d.pad_w))
      out.push_back(r);
  }
  return out;
}

// A convolution and the transposed convolution of the same dims share one cached plan (the
// descriptors are the same, the passes are read the other way): both, in one context, in both
// orders of first use. Shared means one plan in the cache, found by every call: conv_round's
// variants 0 and 1 call three passes (forward, data and filter gradients), variant 2 one
// (forward; its backward asks for no dx or dw).
TEST_F(CudaOps, ConvAndTransposedConvShareAPlan) {
  const ConvDims conv = ConvDims::conv(64, 14, 14, 64, 128, 4, 4, 2, 1);       // dcgan D
  const ConvDims convt = ConvDims::transposed(64, 7, 7, 128, 64, 4, 4, 2, 1);  // dcgan G, same dims
  ASSERT_EQ(conv.h, convt.h);
  ASSERT_EQ(conv.p, convt.p);
  ASSERT_EQ(conv.k, convt.k);
  uint32_t seed = 900;
  plan_conv(conv, false);
  std::vector<ConvPlanReport> plans = plans_of(gpu_, conv);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_TRUE(plans[0].measured);
  EXPECT_EQ(plans[0].lookups, 1u);
  plan_conv(convt, true);
  plans = plans_of(gpu_, conv);
  ASSERT_EQ(plans.size(), 1u) << "the transposed convolution was planned apart";
  EXPECT_EQ(plans[0].lookups, 2u) << "the transposed convolution did not find the convolution's plan";
  for (const ConvPassReport* pass : {&plans[0].fwd, &plans[0].bwd_data, &plans[0].bwd_filter}) {
    EXPECT_TRUE(pass->available);
    EXPECT_TRUE(pass->measured);
  }
  for (int variant = 0; variant < 3; ++variant) {
    conv_round(cpu_, gpu_, conv, false, Act::ReLU, variant, seed++, kGemm);
    conv_round(cpu_, gpu_, convt, true, Act::ReLU, variant, seed++, kGemm);
  }
  plans = plans_of(gpu_, conv);
  ASSERT_EQ(plans.size(), 1u) << "an op call made a plan of its own";
  EXPECT_EQ(plans[0].lookups, 2u + 2 * (3 + 3 + 1)) << "not every pass of both ops used the shared plan";

  Exec other = Exec::cuda(0);  // a fresh context: the transposed one first, unplanned (heuristics)
  std::swap(gpu_, other);
  gpu_.set_workspace(gpu_ws_.data(), gpu_ws_.size() * sizeof(float));
  EXPECT_TRUE(plans_of(gpu_, conv).empty()) << "contexts share their caches";
  conv_round(cpu_, gpu_, convt, true, Act::Tanh, 0, seed++, kGemm);
  conv_round(cpu_, gpu_, conv, false, Act::Tanh, 0, seed++, kGemm);
  plans = plans_of(gpu_, conv);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_FALSE(plans[0].measured);
  EXPECT_EQ(plans[0].workspace_limit, gpu_.workspace_bytes());
  EXPECT_EQ(plans[0].lookups, 6u);
}

// Nondeterministic algorithms only when the Exec allows them (run.deterministic = false); the
// setting is part of the plan's key. The emulator's stand-in ranks a nondeterministic algorithm
// first for both backward passes, as cuDNN often does, so there the choice itself is checked.
TEST_F(CudaOps, ConvChoosesNondeterministicAlgorithmsOnlyWhenAllowed) {
  const ConvDims d = ConvDims::conv(4, 9, 9, 3, 5, 3, 3, 2, 1);
  ASSERT_TRUE(gpu_.deterministic()) << "deterministic must be the default";
  plan_conv(d, false);
  conv_round(cpu_, gpu_, d, false, Act::ReLU, 0, 980, kGemm);
  gpu_.set_deterministic(false);
  plan_conv(d, false);
  conv_round(cpu_, gpu_, d, false, Act::ReLU, 0, 981, kGemm);
  const std::vector<ConvPlanReport> plans = plans_of(gpu_, d);
  ASSERT_EQ(plans.size(), 2u) << "plans with and without nondeterministic algorithms share a key";
  const ConvPlanReport& strict = plans[0].deterministic_only ? plans[0] : plans[1];
  const ConvPlanReport& loose = plans[0].deterministic_only ? plans[1] : plans[0];
  ASSERT_TRUE(strict.deterministic_only);
  ASSERT_FALSE(loose.deterministic_only);
  for (const ConvPlanReport* p : {&strict, &loose}) {
    EXPECT_EQ(p->lookups, 4u);  // planned, then the three passes of one round
    for (const ConvPassReport* pass : {&p->fwd, &p->bwd_data, &p->bwd_filter}) EXPECT_TRUE(pass->available);
  }
  for (const ConvPassReport* pass : {&strict.fwd, &strict.bwd_data, &strict.bwd_filter})
    EXPECT_TRUE(pass->deterministic) << "algorithm " << pass->algo;
#if GANCU_CUDA_EMULATION
  EXPECT_EQ(strict.bwd_data.algo, int(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1));
  EXPECT_EQ(strict.bwd_filter.algo, int(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1));
  EXPECT_EQ(loose.bwd_data.algo, int(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0));
  EXPECT_FALSE(loose.bwd_data.deterministic);
  EXPECT_EQ(loose.bwd_filter.algo, int(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0));
  EXPECT_FALSE(loose.bwd_filter.deterministic);
#endif
}

// Convolutions that differ only in one axis's padding (so in their output's height or width) get
// plans of their own: the key holds both paddings. One context, each against the CPU.
TEST_F(CudaOps, ConvPlansTellThePaddingOfEachAxisApart) {
  const ConvDims dims[] = {ConvDims::conv(2, 6, 7, 3, 5, 3, 3, 1, 1, 1),
                           ConvDims::conv(2, 6, 7, 3, 5, 3, 3, 1, 1, 0),
                           ConvDims::conv(2, 6, 7, 3, 5, 3, 3, 1, 0, 1)};
  for (const ConvDims& d : dims) plan_conv(d, false);
  uint32_t seed = 995;
  for (const ConvDims& d : dims) {
    EXPECT_EQ(plans_of(gpu_, d).size(), 1u) << conv_name(d);
    conv_round(cpu_, gpu_, d, false, Act::None, 0, seed++, kGemm);
  }
}

// A plan's key holds the workspace its choice was limited to and whether it was measured: an
// unplanned shape run with no workspace gets heuristic picks that need none, planning adds a
// measured plan that the ops then use, and an Exec whose workspace is too small for a measured
// pick gets a heuristic plan of its own for that pass instead of failing.
TEST_F(CudaOps, ConvPlansAreKeyedByWorkspaceLimitAndHowTheyWereChosen) {
  const ConvDims d = ConvDims::conv(3, 8, 8, 2, 4, 3, 3, 1, 1);
  const size_t cpu_bytes = ops::conv_workspace_bytes<float>(cpu_, d, false);
  cpu_ws_.resize(cpu_bytes / sizeof(float) + 1);
  cpu_.set_workspace(cpu_ws_.data(), cpu_ws_.size() * sizeof(float));
  gpu_.set_workspace(nullptr, 0);
  conv_round(cpu_, gpu_, d, false, Act::None, 0, 990, kGemm);
  std::vector<ConvPlanReport> plans = plans_of(gpu_, d);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_FALSE(plans[0].measured);
  EXPECT_EQ(plans[0].workspace_limit, 0u);
  for (const ConvPassReport* pass : {&plans[0].fwd, &plans[0].bwd_data, &plans[0].bwd_filter}) {
    EXPECT_TRUE(pass->available);
    EXPECT_FALSE(pass->measured);
    EXPECT_EQ(pass->workspace, 0u);
  }

  plan_conv(d, false);
  plans = plans_of(gpu_, d);
  ASSERT_EQ(plans.size(), 2u) << "the measured plan must not be the heuristic one";
  // The plan of `plans` with this key (a default one, and a failure, if none).
  const auto with = [&](bool was_measured, size_t limit) {
    for (const ConvPlanReport& p : plans)
      if (p.measured == was_measured && (was_measured || p.workspace_limit == limit)) return p;
    ADD_FAILURE() << "no plan with measured " << was_measured << ", limit " << limit;
    return ConvPlanReport{};
  };
  const auto measured = [&] { return with(true, 0); };
  const auto heuristic = [&] { return with(false, 0); };
  EXPECT_TRUE(measured().fwd.measured);
  EXPECT_GT(measured().workspace_limit, 0u);
  EXPECT_EQ(heuristic().lookups, 3u);
  conv_round(cpu_, gpu_, d, false, Act::None, 0, 991, kGemm);
  plans = plans_of(gpu_, d);
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(measured().lookups, 1u + 3u) << "the ops did not use the measured plan";
  EXPECT_EQ(heuristic().lookups, 3u);
#if GANCU_CUDA_EMULATION
  // The stand-in's fastest forward algorithm needs kSimtPrecompWorkspace bytes; with less, the
  // forward pass gets a heuristic plan within what the Exec has, the backward passes (no
  // workspace) keep the measured plan.
  EXPECT_EQ(measured().fwd.algo, int(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM));
  EXPECT_EQ(measured().fwd.workspace, kSimtPrecompWorkspace);
  gpu_.set_workspace(gpu_ws_.data(), kSimtPrecompWorkspace / 2);
  conv_round(cpu_, gpu_, d, false, Act::None, 0, 992, kGemm);
  plans = plans_of(gpu_, d);
  ASSERT_EQ(plans.size(), 3u);
  const ConvPlanReport small = with(false, kSimtPrecompWorkspace / 2);
  EXPECT_EQ(small.fwd.algo, int(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM));
  EXPECT_FALSE(small.bwd_data.chosen);
  EXPECT_FALSE(small.bwd_filter.chosen);
  EXPECT_EQ(small.lookups, 1u);
  EXPECT_EQ(measured().lookups, 1u + 3u + 2u);
  EXPECT_EQ(heuristic().lookups, 3u);
#endif
}

// Only the passes a layer calls are planned: a convolution whose input gradient is never asked
// for (the first layer of G or of the classifier) plans no data-gradient pass, a transposed one
// planned for its forward only plans cuDNN's backward-data. In the emulated build a pass is made
// to have no algorithm: planning it fails with its name, not planning it lets the layer (and a
// network whose input gradient nobody asks for) run.
TEST_F(CudaOps, ConvPlansOnlyThePassesALayerCalls) {
  const ConvDims d = ConvDims::conv(2, 6, 6, 3, 4, 3, 3, 1, 0);
  (void)ops::conv_workspace_bytes<float>(gpu_, d, false, ConvPasses{true, false, true});
  std::vector<ConvPlanReport> plans = plans_of(gpu_, d);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_TRUE(plans[0].fwd.chosen);
  EXPECT_FALSE(plans[0].bwd_data.chosen);
  EXPECT_TRUE(plans[0].bwd_filter.chosen);
  const ConvDims t = ConvDims::transposed(2, 5, 5, 4, 3, 4, 4, 1, 0);
  (void)ops::conv_workspace_bytes<float>(gpu_, t, true, ConvPasses{true, false, false});
  plans = plans_of(gpu_, t);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_FALSE(plans[0].fwd.chosen);
  EXPECT_TRUE(plans[0].bwd_data.chosen);
  EXPECT_FALSE(plans[0].bwd_filter.chosen);
#if GANCU_CUDA_EMULATION
  const test::WithheldAlgorithms no_bwd_data(2);
  const ConvDims e = ConvDims::conv(2, 7, 7, 2, 3, 3, 3, 2, 1);
  try {
    (void)ops::conv_workspace_bytes<float>(gpu_, e, false);
    ADD_FAILURE() << "planning a pass without an algorithm succeeded";
  } catch (const RuntimeError& err) {
    EXPECT_NE(std::string(err.what()).find("backward-data"), std::string::npos) << err.what();
  }
  // A network whose first layer is that convolution, trained but never asked for its input's
  // gradient: plans, runs forward and backward.
  Network<float> net("C", 3, {"conv out=3 k=3 s=2 p=1", "lrelu", "flatten", "linear out=2"}, "c",
                     Shape::image(2, 7, 7, 2), InitScheme::PyTorch);
  ArenaPlan plan;
  net.plan(plan, gpu_, BackwardUse{true, false});
  Arena arena(Backend::CUDA, std::move(plan));
  Exec ex = gpu_;
  ex.set_workspace(arena.workspace(), arena.workspace_bytes());
  net.bind(arena);
  net.initialize(ex, 1);
  const Buffer<float> input(ex, random_vec(2 * 7 * 7 * 2, 995));
  net.forward(ex, input.data(), 2, BatchNormMode::Train, nullptr, 0);
  copy_to_device(ex, net.output_grad(), random_vec(4, 996).data(), 4 * sizeof(float));
  net.backward(ex, nullptr, false, true);
  std::vector<float> grads(size_t(net.param_count()));
  copy_to_host(ex, grads.data(), net.grads(), grads.size() * sizeof(float));
  double norm = 0.0;
  for (float g : grads) norm += double(g) * g;
  EXPECT_GT(norm, 0.0);
  EXPECT_TRUE(std::isfinite(norm));
  // The same network planned for its input's gradient too: refused, naming the pass.
  Network<float> wants_dx("C", 3, {"conv out=3 k=3 s=2 p=1", "lrelu", "flatten", "linear out=2"}, "c",
                          Shape::image(2, 7, 7, 2), InitScheme::PyTorch);
  ArenaPlan plan2;
  EXPECT_THROW(wants_dx.plan(plan2, gpu_), RuntimeError);
  // Asked for at run time anyway: the heuristics find none either, and the call says so.
  Buffer<float> dx(ex, size_t(e.x_elems()));
  try {
    net.backward(ex, dx.data(), false, true);
    ADD_FAILURE() << "a data-gradient pass without an algorithm ran";
  } catch (const RuntimeError& err) {
    EXPECT_NE(std::string(err.what()).find("backward-data"), std::string::npos) << err.what();
  }
#endif
}

TEST_F(CudaOps, ConvTf32) {
  gpu_.set_tf32(true);
  const ConvDims d = ConvDims::conv(64, 14, 14, 64, 128, 4, 4, 2, 1);
  const ConvDims t = ConvDims::transposed(64, 7, 7, 256, 128, 4, 4, 2, 1);
  plan_conv(d, false);
  plan_conv(t, true);
  conv_round(cpu_, gpu_, d, false, Act::LeakyReLU, 0, 900, kTf32);
  conv_round(cpu_, gpu_, t, true, Act::ReLU, 0, 901, kTf32);
}

// Sampling runs a layer with a smaller batch than it was planned for: the CUDA backend then
// picks algorithms by heuristics within the planned workspace.
TEST_F(CudaOps, ConvSmallerBatchThanPlanned) {
  const ConvDims planned = ConvDims::transposed(64, 7, 7, 256, 128, 4, 4, 2, 1);
  plan_conv(planned, true);
  const ConvDims d = ConvDims::transposed(16, 7, 7, 256, 128, 4, 4, 2, 1);
  const size_t cpu_ws = ops::conv_workspace_bytes<float>(cpu_, d, true);
  ASSERT_LE(cpu_ws, cpu_.workspace_bytes());
  conv_round(cpu_, gpu_, d, true, Act::ReLU, 0, 950, kGemm);
  const ConvDims c = ConvDims::conv(5, 28, 28, 1, 64, 4, 4, 2, 1);
  plan_conv(ConvDims::conv(64, 28, 28, 1, 64, 4, 4, 2, 1), false);
  conv_round(cpu_, gpu_, c, false, Act::LeakyReLU, 1, 951, kGemm);
}

void conv_round(Exec& cpu, Exec& gpu, const ConvDims& d, bool transposed, Act act, int variant, uint32_t seed,
                double tol) {
  // Forward input/output extents: conv reads x [n,h,w,c] and writes y [n,p,q,k]; transposed
  // reads [n,p,q,k] and writes [n,h,w,c].
  const size_t in_n = size_t(transposed ? d.y_elems() : d.x_elems());
  const size_t out_n = size_t(transposed ? d.x_elems() : d.y_elems());
  const size_t bias_n = size_t(transposed ? d.c : d.k);
  const auto x = random_vec(in_n, seed * 7 + 1),
             w = random_vec(size_t(d.filter_elems()), seed * 7 + 2, -0.2f, 0.2f);
  const auto b = random_vec(bias_n, seed * 7 + 3);
  const bool bias = variant != 2;
  const Activation a{act, 0.2f};
  const std::string what = std::string(transposed ? "convT " : "conv ") + conv_name(d) + " " + act_name(act) +
                           " variant " + std::to_string(variant);

  std::vector<float> y(out_n);
  Buffer<float> gx(gpu, x), gw(gpu, w), gb(gpu, b), gy(gpu, std::vector<float>(out_n, kNaN));
  if (transposed) {
    ops::conv_transpose2d_forward<float>(cpu, d, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), a);
    ops::conv_transpose2d_forward<float>(gpu, d, gx.data(), gw.data(), bias ? gb.data() : nullptr, gy.data(),
                                         a);
  } else {
    ops::conv2d_forward<float>(cpu, d, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), a);
    ops::conv2d_forward<float>(gpu, d, gx.data(), gw.data(), bias ? gb.data() : nullptr, gy.data(), a);
  }
  EXPECT_REL(gy.download(), y, tol, what << " forward");

  // Backward from the CPU's y (both sides see the same y). variant 0: all gradients, dx
  // overwritten; 1: dx accumulated; 2: no bias in forward, and null dx, dw, db (dy only).
  const bool acc = variant == 1, none = variant == 2;
  auto dy = random_vec(out_n, seed * 7 + 4);
  auto dx = random_vec(in_n, seed * 7 + 5), dw = random_vec(w.size(), seed * 7 + 6),
       db = random_vec(bias_n, seed * 7 + 7);
  Buffer<float> gyy(gpu, y), gdy(gpu, dy), gdw(gpu, dw), gdb(gpu, db);
  Buffer<float> gdx(gpu, acc ? dx : std::vector<float>(in_n, kNaN));
  float* cdx = none ? nullptr : dx.data();
  float* cdw = none ? nullptr : dw.data();
  float* cdb = none ? nullptr : db.data();
  if (transposed) {
    ops::conv_transpose2d_backward<float>(cpu, d, x.data(), w.data(), y.data(), dy.data(), cdx, acc, cdw, cdb,
                                          a);
    ops::conv_transpose2d_backward<float>(gpu, d, gx.data(), gw.data(), gyy.data(), gdy.data(),
                                          none ? nullptr : gdx.data(), acc, none ? nullptr : gdw.data(),
                                          none ? nullptr : gdb.data(), a);
  } else {
    ops::conv2d_backward<float>(cpu, d, x.data(), w.data(), y.data(), dy.data(), cdx, acc, cdw, cdb, a);
    ops::conv2d_backward<float>(gpu, d, gx.data(), gw.data(), gyy.data(), gdy.data(),
                                none ? nullptr : gdx.data(), acc, none ? nullptr : gdw.data(),
                                none ? nullptr : gdb.data(), a);
  }
  EXPECT_REL(gdy.download(), dy, kElementwise, what << " dy");
  if (!none) {
    EXPECT_REL(gdx.download(), dx, tol, what << " dx");
    EXPECT_REL(gdw.download(), dw, tol, what << " dw");
    EXPECT_REL(gdb.download(), db, tol, what << " db");
  }
}

// ---- batch norm ------------------------------------------------------------------------------

const std::vector<BatchNormDims> kBnShapes = {
    {1, 3, 0.1f, 1e-5f},       // a single row: running variance keeps the biased value
    {37, 5, 0.1f, 1e-5f},      // odd
    {64, 12544, 0.1f, 1e-5f},  // dcgan G after linear (features)
    {64 * 14 * 14, 128, 0.1f, 1e-5f},
    {64 * 28 * 28, 64, 0.1f, 1e-5f},  // dcgan G convT
    {64 * 7 * 7, 128, 0.1f, 1e-5f},   // dcgan D
    {64, 256, 0.1f, 1e-5f},
    {64, 512, 0.1f, 1e-5f},
    {64, 1024, 0.1f, 1e-5f},  // mlp G
    {64 * 8 * 8, 128, 0.1f, 1e-5f},
    {64 * 4 * 4, 256, 0.1f, 1e-5f},  // dcgan32 D
    {4099, 100, 0.1f, 1e-5f},        // a partial channel tile over several row splits
};

TEST_F(CudaOps, BatchNormForward) {
  uint32_t seed = 1000;
  int large = 0;
  for (const auto& d : first_shapes(kBnShapes)) {
    const std::vector<Act> acts = acts_for(d.count * d.channels, large);
    for (BatchNormMode mode : {BatchNormMode::Train, BatchNormMode::BatchOnly, BatchNormMode::Eval})
      for (Act act : acts) {
        const size_t n = size_t(d.count) * d.channels, C = size_t(d.channels);
        // A mean far from zero checks the variance's accuracy.
        const auto x = random_vec(n, seed++, 2.0f, 5.0f);
        const auto gamma = random_vec(C, seed++, 0.5f, 1.5f), beta = random_vec(C, seed++);
        auto rm = random_vec(C, seed++), rv = random_vec(C, seed++, 0.5f, 2.0f);
        auto sm = random_vec(C, seed++), si = random_vec(C, seed++);
        std::vector<float> y(n);
        auto gx = up(x), gg = up(gamma), gbeta = up(beta), grm = up(rm), grv = up(rv);
        const bool stats = mode != BatchNormMode::Eval;
        auto gsm = stats ? poisoned(C) : up(sm), gsi = stats ? poisoned(C) : up(si);
        auto gy = poisoned(n);
        ops::batchnorm_forward<float>(cpu_, d, mode, x.data(), gamma.data(), beta.data(), rm.data(),
                                      rv.data(), sm.data(), si.data(), y.data(), {act, 0.2f});
        ops::batchnorm_forward<float>(gpu_, d, mode, gx.data(), gg.data(), gbeta.data(), grm.data(),
                                      grv.data(), gsm.data(), gsi.data(), gy.data(), {act, 0.2f});
        const std::string what = "batchnorm " + std::to_string(d.count) + "x" + std::to_string(d.channels) +
                                 " mode " + std::to_string(int(mode)) + " " + act_name(act);
        // One row has zero variance: invstd ~ 316, and y = x * scale + shift is beta computed as
        // the difference of two numbers near 2000, so whether each side fuses that multiply-add
        // moves y by ~1e-4 of beta. A wrong formula is off by O(1).
        const double y_tol = d.count == 1 && mode != BatchNormMode::Eval ? 2e-3 : kGemm;
        EXPECT_REL(gy.download(), y, y_tol, what << " y");
        EXPECT_REL(grm.download(), rm, kGemm, what << " running_mean");
        EXPECT_REL(grv.download(), rv, kGemm, what << " running_var");
        EXPECT_REL(gsm.download(), sm, kGemm, what << " save_mean");
        EXPECT_REL(gsi.download(), si, kGemm, what << " save_invstd");
      }
  }
}

TEST_F(CudaOps, BatchNormBackward) {
  uint32_t seed = 2000;
  int large = 0;
  for (const auto& d : first_shapes(kBnShapes))
    for (Act act : acts_for(d.count * d.channels, large))
      for (int variant = 0; variant < 4; ++variant) {
        // 0: all gradients; 1: dx accumulated; 2: none (dy only); 3: dx only, as in the generator
        // step where D's parameters get no gradient
        const bool acc = variant == 1, none = variant == 2, dx_only = variant == 3;
        const size_t n = size_t(d.count) * d.channels, C = size_t(d.channels);
        const auto x = random_vec(n, seed++, -2.0f, 3.0f);
        const auto gamma = random_vec(C, seed++, 0.5f, 1.5f), beta = random_vec(C, seed++);
        std::vector<float> rm(C, 0.0f), rv(C, 1.0f), sm(C), si(C), y(n);
        ops::batchnorm_forward<float>(cpu_, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(),
                                      rm.data(), rv.data(), sm.data(), si.data(), y.data(), {act, 0.2f});
        auto dy = random_vec(n, seed++), dx = random_vec(n, seed++);
        auto dg = random_vec(C, seed++), dbt = random_vec(C, seed++);
        auto gx = up(x), gg = up(gamma), gsm = up(sm), gsi = up(si), gy = up(y), gdy = up(dy);
        auto gdx = out_buf(dx, acc), gdg = up(dg), gdb = up(dbt);
        const bool no_params = none || dx_only;
        ops::batchnorm_backward<float>(cpu_, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(),
                                       dy.data(), none ? nullptr : dx.data(), acc,
                                       no_params ? nullptr : dg.data(), no_params ? nullptr : dbt.data(),
                                       {act, 0.2f});
        ops::batchnorm_backward<float>(gpu_, d, gx.data(), gg.data(), gsm.data(), gsi.data(), gy.data(),
                                       gdy.data(), none ? nullptr : gdx.data(), acc,
                                       no_params ? nullptr : gdg.data(), no_params ? nullptr : gdb.data(),
                                       {act, 0.2f});
        const std::string what = "batchnorm backward " + std::to_string(d.count) + "x" +
                                 std::to_string(d.channels) + " " + act_name(act) + " variant " +
                                 std::to_string(variant);
        EXPECT_REL(gdy.download(), dy, kElementwise, what << " dy");
        if (!none) {
          EXPECT_REL(gdx.download(), dx, kGemm, what << " dx");
          EXPECT_REL(gdg.download(), dg, kGemm, what << " dgamma");
          EXPECT_REL(gdb.download(), dbt, kGemm, what << " dbeta");
        }
      }
}

// Synchronized batch norm (model.sync_bn): the CPU and CUDA paths that sum the statistics over
// the ranks agree. The stand-in for the ranks is a job of two identical ranks: the sums double and
// the count is twice this batch's, so the statistics are this batch's, through each backend's own
// synchronized code (the CPU's two forward all-reduces, CUDA's merged (n, sum x, sum x^2)); a
// count or a sum taken from one rank only moves the mean by a factor of two.
void double_the_sums(const Exec& ex, double* data, int64_t n) {
  std::vector<double> host(static_cast<size_t>(n));
  copy_to_host(ex, host.data(), data, host.size() * sizeof(double));
  for (double& v : host) v *= 2.0;
  copy_to_device(ex, data, host.data(), host.size() * sizeof(double));
}

TEST_F(CudaOps, SynchronizedBatchNormAgreesWithTheCpu) {
  BatchNormSync two_identical_ranks;
  two_identical_ranks.all_reduce_sum = double_the_sums;
  two_identical_ranks.ranks = 2;
  uint32_t seed = 3000;
  for (BatchNormDims d : first_shapes(kBnShapes)) {
    if (d.count < 2) continue;
    d.sync = &two_identical_ranks;
    const size_t n = size_t(d.count) * d.channels, C = size_t(d.channels);
    const Activation act{Act::LeakyReLU, 0.2f};
    const auto x = random_vec(n, seed++, 2.0f, 5.0f);
    const auto gamma = random_vec(C, seed++, 0.5f, 1.5f), beta = random_vec(C, seed++);
    std::vector<float> rm(C, 0.0f), rv(C, 1.0f), sm(C), si(C), y(n);
    auto gx = up(x), gg = up(gamma), gbeta = up(beta), grm = up(rm), grv = up(rv);
    auto gsm = poisoned(C), gsi = poisoned(C), gy = poisoned(n);
    ops::batchnorm_forward<float>(cpu_, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(),
                                  rm.data(), rv.data(), sm.data(), si.data(), y.data(), act);
    ops::batchnorm_forward<float>(gpu_, d, BatchNormMode::Train, gx.data(), gg.data(), gbeta.data(),
                                  grm.data(), grv.data(), gsm.data(), gsi.data(), gy.data(), act);
    const std::string what =
        "synchronized batchnorm " + std::to_string(d.count) + "x" + std::to_string(d.channels);
    EXPECT_REL(gy.download(), y, kGemm, what << " y");
    EXPECT_REL(grm.download(), rm, kGemm, what << " running_mean");
    EXPECT_REL(grv.download(), rv, kGemm, what << " running_var");
    EXPECT_REL(gsm.download(), sm, kGemm, what << " save_mean");
    EXPECT_REL(gsi.download(), si, kGemm, what << " save_invstd");

    auto dy = random_vec(n, seed++);
    std::vector<float> dx(n), dg(C, 0.0f), dbt(C, 0.0f);
    auto gdy = up(dy), gdx = poisoned(n), gdg = up(dg), gdb = up(dbt);
    ops::batchnorm_backward<float>(cpu_, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                   dx.data(), false, dg.data(), dbt.data(), act);
    ops::batchnorm_backward<float>(gpu_, d, gx.data(), gg.data(), gsm.data(), gsi.data(), gy.data(),
                                   gdy.data(), gdx.data(), false, gdg.data(), gdb.data(), act);
    EXPECT_REL(gdx.download(), dx, kGemm, what << " dx");
    EXPECT_REL(gdg.download(), dg, kGemm, what << " dgamma");
    EXPECT_REL(gdb.download(), dbt, kGemm, what << " dbeta");
  }
}

// A ReLU unit that is dead (y = 0) passes a zero gradient even when its dy is inf or NaN, on the
// CPU (a select) and so on the GPU: a product `dy * 0` would turn one overflowed gradient into NaN
// in dx, dw, db and the batch-norm sums. Each path that fuses the activation's backward is run.
TEST_F(CudaOps, DeadReluUnitsPassZeroForNonFiniteGradients) {
  const float kInf = std::numeric_limits<float>::infinity();
  const Activation relu{Act::ReLU, 0.0f};
  // Non-finite dy wherever y == 0; every output below must be finite and match the CPU.
  auto poison_dead = [&](const std::vector<float>& y, std::vector<float> dy) {
    for (size_t i = 0; i < y.size(); ++i)
      if (y[i] == 0.0f) dy[i] = i % 2 ? kInf : kNaN;
    return dy;
  };

  {  // activation_backward (elementwise.cu)
    const int64_t n = 4099;
    const auto x = random_vec(size_t(n), 11, -1.0f, 1.0f);
    std::vector<float> y(x.size()), dx(x.size());
    ops::activation_forward<float>(cpu_, n, x.data(), y.data(), relu);
    const auto dy = poison_dead(y, random_vec(x.size(), 12));
    auto gy = up(y), gdy = up(dy), gdx = poisoned(x.size());
    ops::activation_backward<float>(cpu_, n, y.data(), dy.data(), dx.data(), false, relu);
    ops::activation_backward<float>(gpu_, n, gy.data(), gdy.data(), gdx.data(), false, relu);
    EXPECT_REL(gdx.download(), dx, kElementwise, "activation backward, dead units with inf/NaN dy");
  }
  {  // linear_backward: the bias gradient with the activation fused (reduce.cu)
    const LinearDims d{64, 33, 70};
    const auto x = random_vec(size_t(d.batch) * d.in, 21),
               w = random_vec(size_t(d.out) * d.in, 22, -0.3f, 0.3f);
    const auto b = random_vec(size_t(d.out), 23);
    std::vector<float> y(size_t(d.batch) * d.out);
    ops::linear_forward<float>(cpu_, d, x.data(), w.data(), b.data(), y.data(), relu);
    auto dy = poison_dead(y, random_vec(y.size(), 24));
    std::vector<float> dx(x.size()), dw(w.size()), db(b.size());
    auto gx = up(x), gw = up(w), gy = up(y), gdy = up(dy);
    // dw and db accumulate: they start from the CPU's zeros (NaN would stay NaN on any correct GPU).
    auto gdx = poisoned(dx.size()), gdw = up(dw), gdb = up(db);
    ops::linear_backward<float>(cpu_, d, x.data(), w.data(), y.data(), dy.data(), dx.data(), false, dw.data(),
                                db.data(), relu);
    ops::linear_backward<float>(gpu_, d, gx.data(), gw.data(), gy.data(), gdy.data(), gdx.data(), false,
                                gdw.data(), gdb.data(), relu);
    EXPECT_REL(gdx.download(), dx, kGemm, "linear backward, dead units with inf/NaN dy: dx");
    EXPECT_REL(gdw.download(), dw, kGemm, "linear backward, dead units with inf/NaN dy: dw");
    EXPECT_REL(gdb.download(), db, kGemm, "linear backward, dead units with inf/NaN dy: db");
  }
  {  // batchnorm_backward (batchnorm.cu)
    const BatchNormDims d{300, 24};
    const size_t n = size_t(d.count) * d.channels, C = size_t(d.channels);
    const auto x = random_vec(n, 31, -2.0f, 2.0f);
    const auto gamma = random_vec(C, 32, 0.5f, 1.5f), beta = random_vec(C, 33);
    std::vector<float> rm(C, 0.0f), rv(C, 1.0f), sm(C), si(C), y(n);
    ops::batchnorm_forward<float>(cpu_, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(),
                                  rm.data(), rv.data(), sm.data(), si.data(), y.data(), relu);
    auto dy = poison_dead(y, random_vec(n, 34));
    std::vector<float> dx(n), dg(C), dbt(C);
    auto gx = up(x), gg = up(gamma), gsm = up(sm), gsi = up(si), gy = up(y), gdy = up(dy);
    auto gdx = poisoned(n), gdg = up(dg), gdb = up(dbt);  // dgamma and dbeta accumulate: from zeros
    ops::batchnorm_backward<float>(cpu_, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                   dx.data(), false, dg.data(), dbt.data(), relu);
    ops::batchnorm_backward<float>(gpu_, d, gx.data(), gg.data(), gsm.data(), gsi.data(), gy.data(),
                                   gdy.data(), gdx.data(), false, gdg.data(), gdb.data(), relu);
    EXPECT_REL(gdx.download(), dx, kGemm, "batchnorm backward, dead units with inf/NaN dy: dx");
    EXPECT_REL(gdg.download(), dg, kGemm, "batchnorm backward, dead units with inf/NaN dy: dgamma");
    EXPECT_REL(gdb.download(), dbt, kGemm, "batchnorm backward, dead units with inf/NaN dy: dbeta");
  }
}

// ---- elementwise -----------------------------------------------------------------------------

TEST_F(CudaOps, ActivationForwardBackward) {
  uint32_t seed = 3000;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(1024), int64_t(1000003)})
    for (int offset : {0, 1})  // offset 1: not 16-byte aligned, the scalar path
      for (Act act : kActs) {
        const auto x = random_vec(size_t(n + offset), seed++, -4.0f, 4.0f);
        std::vector<float> y(size_t(n + offset));
        auto gx = up(x);
        auto gy = poisoned(y.size());
        ops::activation_forward<float>(cpu_, n, x.data() + offset, y.data() + offset, {act, 0.2f});
        ops::activation_forward<float>(gpu_, n, gx.data() + offset, gy.data() + offset, {act, 0.2f});
        auto gyh = gy.download();
        std::vector<float> gys(gyh.begin() + offset, gyh.end()), ys(y.begin() + offset, y.end());
        EXPECT_REL(gys, ys, kElementwise, "activation forward n=" << n << " " << act_name(act));

        // in place
        auto xi = x;
        auto gxi = up(x);
        ops::activation_forward<float>(cpu_, n, xi.data(), xi.data(), {act, 0.2f});
        ops::activation_forward<float>(gpu_, n, gxi.data(), gxi.data(), {act, 0.2f});
        EXPECT_REL(gxi.download(), xi, kElementwise,
                   "activation forward in place n=" << n << " " << act_name(act));

        for (bool acc : {false, true}) {
          const auto dy = random_vec(size_t(n), seed++);
          auto dx = random_vec(size_t(n), seed++);
          auto gyy = up(std::vector<float>(y.begin() + offset, y.end())), gdy = up(dy);
          auto gdx = out_buf(dx, acc);
          ops::activation_backward<float>(cpu_, n, y.data() + offset, dy.data(), dx.data(), acc, {act, 0.2f});
          ops::activation_backward<float>(gpu_, n, gyy.data(), gdy.data(), gdx.data(), acc, {act, 0.2f});
          EXPECT_REL(gdx.download(), dx, kElementwise,
                     "activation backward n=" << n << " " << act_name(act) << " acc=" << acc);
        }
      }
}

TEST_F(CudaOps, Dropout) {
  Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{41});
  const int64_t step = 41;
  uint32_t seed = 3500;
  for (int64_t n : {int64_t(5), int64_t(100003)})
    for (float p : {0.0f, 0.3f, 0.5f}) {
      const auto x = random_vec(size_t(n), seed++);
      std::vector<float> y(static_cast<size_t>(n));
      auto gx = up(x);
      auto gy = poisoned(y.size());
      ops::dropout_forward<float>(cpu_, n, x.data(), y.data(), p, 9, kStreamDropout, &step);
      ops::dropout_forward<float>(gpu_, n, gx.data(), gy.data(), p, 9, kStreamDropout, gstep.data());
      const auto gyh = gy.download();
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_EQ(gyh[i] == 0.0f, y[i] == 0.0f) << "dropout mask differs at " << i;
      EXPECT_REL(gyh, y, kElementwise, "dropout forward p=" << p);
      for (bool acc : {false, true}) {
        const auto dy = random_vec(size_t(n), seed++);
        auto dx = random_vec(size_t(n), seed++);
        auto gdy = up(dy);
        auto gdx = out_buf(dx, acc);
        ops::dropout_backward<float>(cpu_, n, dy.data(), dx.data(), acc, p, 9, kStreamDropout, &step);
        ops::dropout_backward<float>(gpu_, n, gdy.data(), gdx.data(), acc, p, 9, kStreamDropout,
                                     gstep.data());
        EXPECT_REL(gdx.download(), dx, kElementwise, "dropout backward p=" << p << " acc=" << acc);
      }
    }
}

TEST_F(CudaOps, FillAddIntoIncrement) {
  for (int64_t n : {int64_t(1), int64_t(13), int64_t(4099)}) {
    auto g = poisoned(size_t(n));
    ops::fill<float>(gpu_, n, g.data(), 0.25f);
    EXPECT_EQ(g.download(), std::vector<float>(size_t(n), 0.25f));
    const auto src = random_vec(size_t(n), 1), dst0 = random_vec(size_t(n), 2);
    auto dst = dst0;
    auto gs = up(src), gd = up(dst0);
    ops::add_into<float>(cpu_, n, src.data(), dst.data());
    ops::add_into<float>(gpu_, n, gs.data(), gd.data());
    EXPECT_REL(gd.download(), dst, kElementwise, "add_into n=" << n);
  }
  Buffer<int64_t> counter(gpu_, std::vector<int64_t>{41});
  for (int i = 0; i < 3; ++i) ops::increment_counter<float>(gpu_, counter.data());
  EXPECT_EQ(counter.download()[0], 44);
}

TEST_F(CudaOps, Add) {
  uint32_t seed = 3800;
  for (int64_t n : {int64_t(1), int64_t(13), int64_t(100003)})
    for (int offset : {0, 1}) {
      const auto a = random_vec(size_t(n + offset), seed++), b = random_vec(size_t(n + offset), seed++);
      std::vector<float> y(size_t(n + offset), 0.0f);
      auto ga = up(a), gb = up(b), gy = up(y);
      ops::add<float>(cpu_, n, a.data() + offset, b.data() + offset, y.data() + offset);
      ops::add<float>(gpu_, n, ga.data() + offset, gb.data() + offset, gy.data() + offset);
      EXPECT_EQ(max_ulp(gy.download(), y), 0) << "add n=" << n << " offset=" << offset;
      ops::add<float>(gpu_, n, ga.data() + offset, gb.data() + offset, ga.data() + offset);  // y aliases a
      std::vector<float> in_place = a;  // the elements before `offset` keep a's values
      std::copy(y.begin() + offset, y.end(), in_place.begin() + offset);
      EXPECT_EQ(max_ulp(ga.download(), in_place), 0) << "add in place n=" << n << " offset=" << offset;
    }
}

// ---- loss ------------------------------------------------------------------------------------

// Every kind with the targets it is used with; scale 0.5 and -1 (the minimax G loss).
TEST_F(CudaOps, GanLoss) {
  struct Case {
    LossKind kind;
    float target;
  } cases[] = {{LossKind::BCE, 1.0f},          {LossKind::BCE, 0.0f},          {LossKind::BCE, 0.9f},
               {LossKind::LeastSquares, 1.0f}, {LossKind::LeastSquares, 0.0f}, {LossKind::Hinge, 1.0f},
               {LossKind::Hinge, -1.0f},       {LossKind::Linear, 1.0f},       {LossKind::Linear, -1.0f}};
  uint32_t seed = 4000;
  for (int64_t n : {int64_t(1), int64_t(64), int64_t(1000), int64_t(65536)})
    for (const Case& c : cases)
      for (float scale : {0.5f, -1.0f})
        for (bool with_grad : {true, false}) {
          const LossTerm term{c.kind, c.target, scale};
          const auto logits = random_vec(size_t(n), seed++, -30.0f, 30.0f);  // saturated tails too
          std::vector<float> dl(static_cast<size_t>(n));
          std::vector<float> sums = random_vec(2, seed++);
          auto gl = up(logits), gs = up(sums);
          auto gdl = poisoned(size_t(n));
          Buffer<LossTerm> gterm(gpu_, std::vector<LossTerm>{term});  // the op reads it from device memory
          ops::gan_loss<float>(cpu_, &term, n, logits.data(), with_grad ? dl.data() : nullptr, &sums[0],
                               &sums[1]);
          ops::gan_loss<float>(gpu_, gterm.data(), n, gl.data(), with_grad ? gdl.data() : nullptr, gs.data(),
                               gs.data() + 1);
          const std::string what = "gan_loss kind " + std::to_string(int(c.kind)) +
                                   " t=" + std::to_string(c.target) + " scale=" + std::to_string(scale) +
                                   " n=" + std::to_string(n);
          if (with_grad) EXPECT_REL(gdl.download(), dl, kElementwise, what << " dlogits");
          const auto gsh = gs.download();
          EXPECT_REL(std::vector<float>{gsh[0]}, std::vector<float>{sums[0]}, kReduction, what << " loss");
          EXPECT_REL(std::vector<float>{gsh[1]}, std::vector<float>{sums[1]}, kReduction, what << " score");
        }
}

TEST_F(CudaOps, L1ReconstructionLossAndBeganUpdate) {
  struct Case {
    int64_t batch, per;
  } cases[] = {{1, 1}, {7, 13}, {64, 784}, {64, 64 * 64 * 3}};
  uint32_t seed = 4500;
  for (const Case& c : first_shapes(std::vector<Case>(std::begin(cases), std::end(cases))))
    for (bool with_k : {false, true})
      for (bool acc : {false, true}) {
        const size_t n = size_t(c.batch * c.per);
        const auto x = random_vec(n, seed++);
        auto recon = random_vec(n, seed++);
        recon[0] = x[0];  // sign(0) = 0
        const std::vector<float> k = {0.37f};
        auto drecon = random_vec(n, seed++), dx = random_vec(n, seed++), sums = random_vec(2, seed++);
        auto gx = up(x), gr = up(recon), gk = up(k), gs = up(sums);
        auto gdr = poisoned(n), gdx = out_buf(dx, acc);
        ops::l1_reconstruction_loss<float>(cpu_, c.batch, c.per, x.data(), recon.data(), -1.5f,
                                           with_k ? k.data() : nullptr, drecon.data(), dx.data(), acc,
                                           &sums[0], &sums[1]);
        ops::l1_reconstruction_loss<float>(gpu_, c.batch, c.per, gx.data(), gr.data(), -1.5f,
                                           with_k ? gk.data() : nullptr, gdr.data(), gdx.data(), acc,
                                           gs.data(), gs.data() + 1);
        const std::string what = "l1 " + std::to_string(c.batch) + "x" + std::to_string(c.per) +
                                 " k=" + std::to_string(with_k) + " acc=" + std::to_string(acc);
        EXPECT_REL(gdr.download(), drecon, kElementwise, what << " drecon");
        EXPECT_REL(gdx.download(), dx, kElementwise, what << " dx");
        const auto gsh = gs.download();
        EXPECT_REL(std::vector<float>{gsh[0]}, std::vector<float>{sums[0]}, kReduction, what << " loss_out");
        EXPECT_REL(std::vector<float>{gsh[1]}, std::vector<float>{sums[1]}, kReduction, what << " loss_sum");
        // The loss alone.
        auto gl = poisoned(1);
        ops::l1_reconstruction_loss<float>(gpu_, c.batch, c.per, gx.data(), gr.data(), 1.0f, nullptr, nullptr,
                                           nullptr, false, gl.data(), nullptr);
        EXPECT_REL(gl.download(), std::vector<float>{sums[0]}, kReduction, what << " loss alone");
      }
  // BEGAN's k: inside, clamped at 0 and at 1; with and without the convergence sum.
  for (float fake : {0.05f, 12.0f, -30.0f})
    for (bool with_sum : {true, false}) {
      std::vector<float> st = {0.5f, 0.2f, fake, 1.0f};  // k, L_real, L_fake, convergence
      auto g = up(st);
      ops::began_update<float>(cpu_, &st[0], &st[1], &st[2], 0.5f, 0.05f, with_sum ? &st[3] : nullptr);
      ops::began_update<float>(gpu_, g.data(), g.data() + 1, g.data() + 2, 0.5f, 0.05f,
                               with_sum ? g.data() + 3 : nullptr);
      EXPECT_REL(g.download(), st, kElementwise, "began_update fake loss " << fake);
    }
}

// ---- optimizers ------------------------------------------------------------------------------

TEST_F(CudaOps, Adam) {
  uint32_t seed = 5000;
  for (int64_t n : {int64_t(3), int64_t(1000003)})
    for (int offset : {0, 1})
      for (float wd : {0.0f, 0.01f}) {
        AdamHyper h;
        h.weight_decay = wd;
        auto p = random_vec(size_t(n + offset), seed++),
             m = random_vec(size_t(n + offset), seed++, -0.1f, 0.1f);
        auto v = random_vec(size_t(n + offset), seed++, 0.0f, 0.01f);
        auto gp = up(p), gm = up(m), gv = up(v);
        int64_t t = 5;
        Buffer<int64_t> gt(gpu_, std::vector<int64_t>{5});
        Buffer<AdamHyper> gh(gpu_, std::vector<AdamHyper>{h});
        for (int it = 0; it < 3; ++it) {
          const auto g = random_vec(size_t(n + offset), seed++);
          auto gg = up(g);
          ops::adam_step<float>(cpu_, n, p.data() + offset, g.data() + offset, m.data() + offset,
                                v.data() + offset, &h, &t);
          ops::adam_step<float>(gpu_, n, gp.data() + offset, gg.data() + offset, gm.data() + offset,
                                gv.data() + offset, gh.data(), gt.data());
        }
        EXPECT_EQ(gt.download()[0], t);
        EXPECT_REL(gp.download(), p, kElementwise,
                   "adam param n=" << n << " offset=" << offset << " wd=" << wd);
        EXPECT_REL(gm.download(), m, kElementwise, "adam m");
        EXPECT_REL(gv.download(), v, kElementwise, "adam v");
      }
}

TEST_F(CudaOps, Sgd) {
  uint32_t seed = 6000;
  for (int64_t n : {int64_t(3), int64_t(100003)})
    for (float momentum : {0.0f, 0.9f})
      for (float wd : {0.0f, 0.01f}) {
        SgdHyper h;
        h.momentum = momentum;
        h.weight_decay = wd;
        auto p = random_vec(size_t(n), seed++), buf = random_vec(size_t(n), seed++);
        auto gp = up(p), gb = up(buf);
        Buffer<SgdHyper> gh(gpu_, std::vector<SgdHyper>{h});
        for (int it = 0; it < 3; ++it) {
          const auto g = random_vec(size_t(n), seed++);
          auto gg = up(g);
          ops::sgd_step<float>(cpu_, n, p.data(), g.data(), momentum != 0.0f ? buf.data() : nullptr, &h);
          ops::sgd_step<float>(gpu_, n, gp.data(), gg.data(), momentum != 0.0f ? gb.data() : nullptr,
                               gh.data());
        }
        EXPECT_REL(gp.download(), p, kElementwise, "sgd param momentum=" << momentum << " wd=" << wd);
        if (momentum != 0.0f) EXPECT_REL(gb.download(), buf, kElementwise, "sgd momentum buffer");
      }
}

TEST_F(CudaOps, Rmsprop) {
  uint32_t seed = 6500;
  for (int64_t n : {int64_t(3), int64_t(1000003)})
    for (int offset : {0, 1})  // offset 1: buffers that are not 16-byte aligned
      for (float wd : {0.0f, 0.01f}) {
        RmspropHyper h;
        h.lr = 1e-3f;
        h.weight_decay = wd;
        auto p = random_vec(size_t(n + offset), seed++),
             sq = random_vec(size_t(n + offset), seed++, 0.0f, 0.01f);
        auto gp = up(p), gsq = up(sq);
        int64_t t = 5;
        Buffer<int64_t> gt(gpu_, std::vector<int64_t>{5});
        Buffer<RmspropHyper> gh(gpu_, std::vector<RmspropHyper>{h});
        for (int it = 0; it < 3; ++it) {
          const auto g = random_vec(size_t(n + offset), seed++);
          auto gg = up(g);
          ops::rmsprop_step<float>(cpu_, n, p.data() + offset, g.data() + offset, sq.data() + offset, &h, &t);
          ops::rmsprop_step<float>(gpu_, n, gp.data() + offset, gg.data() + offset, gsq.data() + offset,
                                   gh.data(), gt.data());
        }
        EXPECT_EQ(gt.download()[0], t);
        EXPECT_REL(gp.download(), p, kElementwise,
                   "rmsprop param n=" << n << " offset=" << offset << " wd=" << wd);
        EXPECT_REL(gsq.download(), sq, kElementwise, "rmsprop sq_avg");
      }
  Buffer<int64_t> gt(gpu_, std::vector<int64_t>{0});
  Buffer<RmspropHyper> gh(gpu_, std::vector<RmspropHyper>{RmspropHyper{}});
  ops::rmsprop_step<float>(gpu_, 0, nullptr, nullptr, nullptr, gh.data(), gt.data());
  EXPECT_EQ(gt.download()[0], 1) << "an empty buffer still counts the step";
}

TEST_F(CudaOps, ClampValues) {
  uint32_t seed = 6700;
  for (int64_t n : {int64_t(7), int64_t(100003)}) {
    auto x = random_vec(size_t(n), seed++, -0.1f, 0.1f);
    x[1] = kNaN;
    auto gx = up(x);
    ops::clamp_values<float>(cpu_, n, x.data(), -0.01f, 0.01f);
    ops::clamp_values<float>(gpu_, n, gx.data(), -0.01f, 0.01f);
    EXPECT_EQ(max_ulp(gx.download(), x), 0) << "clamp n=" << n << " (NaN stays NaN on both)";
  }
}

// ---- noise and data ----------------------------------------------------------------------------

TEST_F(CudaOps, FillNoise) {
  for (int64_t step : {int64_t(0), int64_t(7), (int64_t(1) << 33) + 5})
    for (int64_t n : {int64_t(1), int64_t(6400), int64_t(12345)}) {
      Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{step});
      std::vector<float> u(static_cast<size_t>(n)), z(static_cast<size_t>(n));
      auto gu = poisoned(size_t(n)), gz = poisoned(size_t(n));
      ops::fill_noise<float>(cpu_, n, u.data(), NoiseKind::Uniform, 123, kStreamNoiseD, &step);
      ops::fill_noise<float>(gpu_, n, gu.data(), NoiseKind::Uniform, 123, kStreamNoiseD, gstep.data());
      const auto guh = gu.download();
      ASSERT_EQ(std::memcmp(guh.data(), u.data(), u.size() * sizeof(float)), 0)
          << "uniform noise differs bitwise, step " << step << " n " << n;
      ops::fill_noise<float>(cpu_, n, z.data(), NoiseKind::Normal, 123, kStreamNoiseD, &step);
      ops::fill_noise<float>(gpu_, n, gz.data(), NoiseKind::Normal, 123, kStreamNoiseD, gstep.data());
      EXPECT_REL(gz.download(), z, 1e-5, "normal noise step " << step << " n " << n);
    }
}

TEST_F(CudaOps, GatherBatchAndLabels) {
  std::mt19937 gen(77);
  for (int64_t elems : {int64_t(784), int64_t(75)})  // 784: the uchar4 path; 75: scalar
    for (int batch : {64, 7}) {
      BatchGather g;
      g.num_images = 1000;
      g.image_elems = elems;
      g.batch = batch;
      g.seed = 99;
      std::vector<uint8_t> images(size_t(g.num_images * elems)), labels(size_t(g.num_images));
      for (auto& b : images) b = uint8_t(gen());
      for (auto& b : labels) b = uint8_t(gen() % 10);
      Buffer<uint8_t> gi(gpu_, images), gl(gpu_, labels);
      const int64_t per_epoch = g.num_images / batch;
      for (int64_t step : {int64_t(0), int64_t(3), per_epoch - 1, per_epoch, 5 * per_epoch + 2}) {
        Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{step});
        std::vector<float> out(size_t(batch * elems));
        std::vector<int32_t> lab(static_cast<size_t>(batch));
        auto gout = poisoned(out.size());
        Buffer<int32_t> glab(gpu_, std::vector<int32_t>(size_t(batch), -1));
        ops::gather_batch<float>(cpu_, g, images.data(), &step, out.data());
        ops::gather_batch<float>(gpu_, g, gi.data(), gstep.data(), gout.data());
        ops::gather_labels<float>(cpu_, g, labels.data(), &step, lab.data());
        ops::gather_labels<float>(gpu_, g, gl.data(), gstep.data(), glab.data());
        const auto go = gout.download();
        ASSERT_EQ(std::memcmp(go.data(), out.data(), out.size() * sizeof(float)), 0)
            << "gather_batch differs bitwise: elems " << elems << " batch " << batch << " step " << step;
        EXPECT_EQ(glab.download(), lab) << "gather_labels step " << step;
      }
    }
}

// ---- pooling ---------------------------------------------------------------------------------

std::vector<PoolDims> pool_shapes() {
  return {
      PoolDims::make(2, 5, 7, 3, 2, 2, 0),       // odd, last row/column dropped
      PoolDims::make(3, 7, 5, 2, 3, 2, 1),       // overlapping, padded, odd
      PoolDims::make(2, 4, 5, 5, 2, 1, 0),       // overlapping k2 s1
      PoolDims::make(1, 6, 6, 4, 3, 1, 1),       // overlapping, padded
      PoolDims::make(64, 28, 28, 64, 2, 2, 0),   // a dcgan-sized feature map
      PoolDims::make(64, 14, 14, 128, 3, 2, 1),  // overlapping at size
      PoolDims::make(2, 9, 8, 3, 3, 3, 0),       // k = s = 3
  };
}

std::string pool_name(const PoolDims& d) {
  return std::to_string(d.n) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
         std::to_string(d.c) + " k" + std::to_string(d.k) + " s" + std::to_string(d.stride) + " p" +
         std::to_string(d.pad) + (d.include_pad ? "" : " (padding not counted)");
}

// Average pooling that leaves the padding out of its divisor (Inception's 3x3 s1 p1 branches):
// windows clipped by 1 or 2 pixels at every edge, overlapping.
std::vector<PoolDims> pool_shapes_without_pad_count() {
  return {
      PoolDims::make(2, 7, 6, 5, 3, 1, 1, false),  // Inception's branch pooling
      PoolDims::make(3, 7, 5, 2, 3, 2, 1, false),  // strided, odd
      PoolDims::make(1, 6, 9, 4, 4, 1, 2, false),  // padding 2 on each side
  };
}

TEST_F(CudaOps, MaxPoolForwardBackward) {
  uint32_t seed = 7000;
  for (const auto& d : first_shapes(pool_shapes()))
    for (bool ties : {false, true})  // ties: small integers, many windows hold their max twice
      for (int variant = 0; variant < 2; ++variant) {
        const bool acc = variant == 1;
        const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
        auto x = random_vec(nx, seed++, -2.0f, 2.0f);
        if (ties)
          for (float& v : x) v = std::round(v);
        std::vector<float> y(ny);
        auto gx = up(x);
        auto gy = poisoned(ny);
        ops::maxpool2d_forward<float>(cpu_, d, x.data(), y.data());
        ops::maxpool2d_forward<float>(gpu_, d, gx.data(), gy.data());
        const std::string what =
            "maxpool " + pool_name(d) + (ties ? " ties" : "") + " acc=" + std::to_string(acc);
        EXPECT_REL(gy.download(), y, 0.0, what << " forward");
        const auto dy = random_vec(ny, seed++);
        auto dx = random_vec(nx, seed++);
        auto gyy = up(y), gdy = up(dy);
        auto gdx = out_buf(dx, acc);
        ops::maxpool2d_backward<float>(cpu_, d, x.data(), y.data(), dy.data(), dx.data(), acc);
        ops::maxpool2d_backward<float>(gpu_, d, gx.data(), gyy.data(), gdy.data(), gdx.data(), acc);
        EXPECT_REL(gdx.download(), dx, kElementwise, what << " dx");
        ops::maxpool2d_backward<float>(gpu_, d, gx.data(), gyy.data(), gdy.data(), nullptr, acc);  // no-op
      }
}

TEST_F(CudaOps, AvgPoolForwardBackward) {
  uint32_t seed = 7500;
  std::vector<PoolDims> shapes = first_shapes(pool_shapes());
  for (const PoolDims& d : first_shapes(pool_shapes_without_pad_count())) shapes.push_back(d);
  for (const auto& d : shapes)
    for (int variant = 0; variant < 2; ++variant) {
      const bool acc = variant == 1;
      const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
      const auto x = random_vec(nx, seed++);
      std::vector<float> y(ny);
      auto gx = up(x);
      auto gy = poisoned(ny);
      ops::avgpool2d_forward<float>(cpu_, d, x.data(), y.data());
      ops::avgpool2d_forward<float>(gpu_, d, gx.data(), gy.data());
      const std::string what = "avgpool " + pool_name(d) + " acc=" + std::to_string(acc);
      EXPECT_REL(gy.download(), y, kElementwise, what << " forward");
      const auto dy = random_vec(ny, seed++);
      auto dx = random_vec(nx, seed++);
      auto gdy = up(dy);
      auto gdx = out_buf(dx, acc);
      ops::avgpool2d_backward<float>(cpu_, d, dy.data(), dx.data(), acc);
      ops::avgpool2d_backward<float>(gpu_, d, gdy.data(), gdx.data(), acc);
      EXPECT_REL(gdx.download(), dx, kElementwise, what << " dx");
    }
}

// ---- bilinear resize --------------------------------------------------------------------------

std::vector<ResizeDims> resize_shapes() {
  return {
      {2, 5, 4, 3, 13, 11},    // up, odd factors
      {2, 17, 13, 4, 5, 6},    // down
      {1, 6, 7, 5, 11, 3},     // up one axis, down the other
      {2, 4, 5, 3, 4, 5},      // identity
      {3, 1, 1, 2, 4, 3},      // a single pixel spread
      {2, 32, 32, 3, 75, 75},  // Inception's input stage at a small size (32 -> 299 scaled down)
      {4, 8, 8, 32, 3, 3},     // feature maps, large factor down
  };
}

std::string resize_name(const ResizeDims& d) {
  return std::to_string(d.n) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
         std::to_string(d.c) + " -> " + std::to_string(d.out_h) + "x" + std::to_string(d.out_w);
}

TEST_F(CudaOps, ResizeBilinearForwardBackward) {
  uint32_t seed = 7600;
  for (const auto& d : first_shapes(resize_shapes()))
    for (int variant = 0; variant < 2; ++variant) {
      const bool acc = variant == 1;
      const size_t nx = size_t(d.x_elems()), ny = size_t(d.y_elems());
      const auto x = random_vec(nx, seed++);
      std::vector<float> y(ny);
      auto gx = up(x);
      auto gy = poisoned(ny);
      ops::resize_bilinear_forward<float>(cpu_, d, x.data(), y.data());
      ops::resize_bilinear_forward<float>(gpu_, d, gx.data(), gy.data());
      const std::string what = "resize " + resize_name(d) + " acc=" + std::to_string(acc);
      EXPECT_REL(gy.download(), y, kElementwise, what << " forward");
      const auto dy = random_vec(ny, seed++);
      auto dx = random_vec(nx, seed++);
      auto gdy = up(dy);
      auto gdx = out_buf(dx, acc);
      ops::resize_bilinear_backward<float>(cpu_, d, dy.data(), dx.data(), acc);
      ops::resize_bilinear_backward<float>(gpu_, d, gdy.data(), gdx.data(), acc);
      EXPECT_REL(gdx.download(), dx, kElementwise, what << " dx");
      // The gather has no atomics: a second run gives the same bits.
      auto gdx2 = out_buf(dx, false);
      ops::resize_bilinear_backward<float>(gpu_, d, gdy.data(), gdx2.data(), false);
      auto gdx3 = out_buf(dx, false);
      ops::resize_bilinear_backward<float>(gpu_, d, gdy.data(), gdx3.data(), false);
      EXPECT_EQ(gdx2.download(), gdx3.download()) << what;
      ops::resize_bilinear_backward<float>(gpu_, d, gdy.data(), nullptr, acc);  // no-op
    }
}

TEST_F(CudaOps, MaxPoolJvp) {
  uint32_t seed = 7700;
  for (const auto& d : first_shapes(pool_shapes()))
    for (bool ties : {false, true}) {
      const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
      auto x = random_vec(nx, seed++, -2.0f, 2.0f);
      if (ties)
        for (float& v : x) v = std::round(v);
      const auto tx = random_vec(nx, seed++);
      std::vector<float> y(ny), ty(ny);
      ops::maxpool2d_forward<float>(cpu_, d, x.data(), y.data());
      ops::maxpool2d_jvp<float>(cpu_, d, x.data(), y.data(), tx.data(), ty.data());
      auto gx = up(x), gy = up(y), gtx = up(tx);
      auto gty = poisoned(ny);
      ops::maxpool2d_jvp<float>(gpu_, d, gx.data(), gy.data(), gtx.data(), gty.data());
      EXPECT_REL(gty.download(), ty, 0.0, "maxpool jvp " << pool_name(d) << (ties ? " ties" : ""));
    }
}

// ---- softmax and cross-entropy ----------------------------------------------------------------

struct RowsCase {
  int64_t n;
  int classes;
};
// {3, 33} second: the quick pass (first two shapes) then has a row wider than a warp, so that a
// warp reduction over half the lanes fails there too (tools/plant_bugs.py's half-warp sum).
const std::vector<RowsCase> kRows = {{1, 1},    {3, 33},      {7, 10},    {64, 10},
                                     {4097, 3}, {1000, 1000}, {20000, 10}};

std::vector<int32_t> random_labels(size_t n, int classes, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = int32_t(gen() % uint32_t(classes));
  return v;
}

TEST_F(CudaOps, Softmax) {
  uint32_t seed = 8000;
  int large = 0;
  for (const auto& c : first_shapes(kRows))
    for (float range : settings_for(int64_t(c.n) * c.classes, large, std::vector<float>{10.0f, 1000.0f})) {
      const size_t N = size_t(c.n) * c.classes;
      const auto l = random_vec(N, seed++, -range, range);
      std::vector<float> p(N);
      auto gl = up(l);
      auto gp = poisoned(N);
      ops::softmax<float>(cpu_, c.n, c.classes, l.data(), p.data());
      ops::softmax<float>(gpu_, c.n, c.classes, gl.data(), gp.data());
      EXPECT_REL(gp.download(), p, kElementwise, "softmax " << c.n << "x" << c.classes << " range " << range);
    }
}

TEST_F(CudaOps, SoftmaxCrossEntropy) {
  uint32_t seed = 8500;
  int large = 0;
  for (const auto& c : first_shapes(kRows))
    for (float range : settings_for(int64_t(c.n) * c.classes, large, std::vector<float>{10.0f, 1000.0f}))
      for (bool with_grad : {true, false}) {
        const size_t N = size_t(c.n) * c.classes;
        const auto l = random_vec(N, seed++, -range, range);
        const auto labels = random_labels(size_t(c.n), c.classes, seed++);
        std::vector<float> dl(N), sums = random_vec(2, seed++);
        sums[1] = 3.0f;  // a count: an integer
        auto gl = up(l), gs = up(sums);
        Buffer<int32_t> glab(gpu_, labels);
        auto gdl = poisoned(N);
        ops::softmax_cross_entropy<float>(cpu_, c.n, c.classes, l.data(), labels.data(), 0.5f,
                                          with_grad ? dl.data() : nullptr, &sums[0], &sums[1]);
        ops::softmax_cross_entropy<float>(gpu_, c.n, c.classes, gl.data(), glab.data(), 0.5f,
                                          with_grad ? gdl.data() : nullptr, gs.data(), gs.data() + 1);
        const std::string what = "softmax_ce " + std::to_string(c.n) + "x" + std::to_string(c.classes) +
                                 " range " + std::to_string(int(range));
        if (with_grad) EXPECT_REL(gdl.download(), dl, kElementwise, what << " dlogits");
        const auto gsh = gs.download();
        EXPECT_REL(std::vector<float>{gsh[0]}, std::vector<float>{sums[0]}, kReduction, what << " loss");
        EXPECT_EQ(gsh[1], sums[1]) << what << " correct count";
        // Only the sums, or only one of them.
        auto gs2 = up(std::vector<float>{0.0f, 0.0f});
        ops::softmax_cross_entropy<float>(gpu_, c.n, c.classes, gl.data(), glab.data(), 0.5f, nullptr,
                                          nullptr, gs2.data() + 1);
        EXPECT_EQ(gs2.download()[1], sums[1] - 3.0f) << what << " correct count alone";
      }
}

// A label outside [0, classes) on the GPU: the row has no target (zero gradient, no loss, not
// counted); the CPU throws instead (tests/cpu_softmax_test.cpp).
TEST_F(CudaOps, SoftmaxCrossEntropyOutOfRangeLabelIsNoTarget) {
  const int64_t n = 8;
  const int classes = 5;
  const auto l = random_vec(size_t(n) * classes, 1, -3.0f, 3.0f);
  auto labels = random_labels(size_t(n), classes, 2);
  for (int32_t bad : {-1, classes, 1 << 30}) {
    labels[3] = bad;
    // CPU reference over the other 7 rows, rescaled from mean-over-7 to mean-over-8.
    std::vector<float> l7, dl7(size_t(7) * classes);
    std::vector<int32_t> lab7;
    for (int64_t i = 0; i < n; ++i)
      if (i != 3) {
        l7.insert(l7.end(), l.begin() + i * classes, l.begin() + (i + 1) * classes);
        lab7.push_back(labels[size_t(i)]);
      }
    float loss7 = 0, correct7 = 0;
    ops::softmax_cross_entropy<float>(cpu_, 7, classes, l7.data(), lab7.data(), 7.0f / 8.0f, dl7.data(),
                                      &loss7, &correct7);
    auto gl = up(l), gs = up(std::vector<float>{0.0f, 0.0f});
    Buffer<int32_t> glab(gpu_, labels);
    auto gdl = poisoned(l.size());
    ops::softmax_cross_entropy<float>(gpu_, n, classes, gl.data(), glab.data(), 1.0f, gdl.data(), gs.data(),
                                      gs.data() + 1);
    auto gd = gdl.download();
    for (int j = 0; j < classes; ++j) EXPECT_EQ(gd[size_t(3 * classes + j)], 0.0f) << "label " << bad;
    gd.erase(gd.begin() + 3 * classes, gd.begin() + 4 * classes);
    EXPECT_REL(gd, dl7, kElementwise, "dlogits of the other rows, label " << bad);
    const auto gsh = gs.download();
    EXPECT_REL(std::vector<float>{gsh[0]}, std::vector<float>{loss7 * 7.0f / 8.0f}, kReduction, "loss");
    EXPECT_EQ(gsh[1], correct7);
  }
}

// ---- pairwise distances -----------------------------------------------------------------------

TEST_F(CudaOps, PairwiseSqDistances) {
  struct Case {
    int m, n, d;
  } cases[] = {{1, 1, 1},      {7, 5, 3},         {33, 17, 65}, {13, 129, 31},
               {64, 100, 128}, {1024, 1000, 128}, {5, 4, 0}};
  uint32_t seed = 9000;
  for (const auto& c : cases)
    for (int offset : {0, 1}) {  // offset 1: out not 16-byte aligned, the scalar epilogue
      const auto a = random_vec(size_t(c.m) * c.d, seed++), b = random_vec(size_t(c.n) * c.d, seed++);
      std::vector<float> out(size_t(c.m) * c.n);
      auto ga = up(a), gb = up(b);
      auto gout = poisoned(out.size() + offset);
      ops::pairwise_sq_distances<float>(cpu_, c.m, c.n, c.d, a.data(), b.data(), out.data());
      ops::pairwise_sq_distances<float>(gpu_, c.m, c.n, c.d, ga.data(), gb.data(), gout.data() + offset);
      const auto g = gout.download();
      EXPECT_REL(std::vector<float>(g.begin() + offset, g.end()), out, kGemm,
                 "pairwise " << c.m << "x" << c.n << "x" << c.d << " offset " << offset);
    }
  // Identical rows: never negative.
  const auto a = random_vec(64 * 37, 9999, -3.0f, 3.0f);
  auto ga = up(a);
  auto gout = poisoned(64 * 64);
  ops::pairwise_sq_distances<float>(gpu_, 64, 64, 37, ga.data(), ga.data(), gout.data());
  for (float v : gout.download()) EXPECT_GE(v, 0.0f);
}

TEST_F(CudaOps, PairwiseSqDistancesTf32) {
  gpu_.set_tf32(true);
  const int m = 256, n = 300, d = 128;
  const auto a = random_vec(size_t(m) * d, 1), b = random_vec(size_t(n) * d, 2);
  std::vector<float> out(size_t(m) * n);
  auto ga = up(a), gb = up(b);
  auto gout = poisoned(out.size());
  ops::pairwise_sq_distances<float>(cpu_, m, n, d, a.data(), b.data(), out.data());
  ops::pairwise_sq_distances<float>(gpu_, m, n, d, ga.data(), gb.data(), gout.data());
  EXPECT_REL(gout.download(), out, kTf32, "pairwise tf32");
}

// ---- 2-d mixture sampler ----------------------------------------------------------------------

TEST_F(CudaOps, SampleMixture) {
  for (bool grid : {false, true})
    for (int64_t step : {int64_t(0), int64_t(7), (int64_t(1) << 33) + 5})
      for (int64_t n : {int64_t(1), int64_t(1000), int64_t(100003)}) {
        Mixture2D mix;
        mix.grid = grid;
        mix.modes = grid ? 25 : 8;
        mix.std = 0.05f;
        mix.seed = 11;
        Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{step});
        std::vector<float> out(size_t(2 * n));
        auto gout = poisoned(out.size());
        ops::sample_mixture<float>(cpu_, mix, n, &step, out.data());
        ops::sample_mixture<float>(gpu_, mix, n, gstep.data(), gout.data());
        EXPECT_REL(gout.download(), out, 1e-5,
                   "sample_mixture grid=" << grid << " step " << step << " n " << n);
      }
}

// The new ops inside a captured graph: they allocate nothing and do not synchronize (capture
// would fail), and each replay (new step: new mixture sample) equals the uncaptured run.
TEST_F(CudaOps, EvaluationOpsReplayInAGraph) {
  Mixture2D mix;
  mix.seed = 3;
  const int64_t n = 500;
  const int modes = mix.modes;
  std::vector<float> centres(size_t(2 * modes));
  for (int k = 0; k < modes; ++k)
    mixture_center(mix, k, &centres[size_t(2 * k)], &centres[size_t(2 * k + 1)]);
  struct Run {
    Buffer<int64_t> step;
    Buffer<float> pts, dist, dl, sums;
  };
  auto make = [&] {
    return Run{Buffer<int64_t>(gpu_, std::vector<int64_t>{0}), poisoned(size_t(2 * n)),
               poisoned(size_t(n) * modes), poisoned(size_t(n) * modes), up(std::vector<float>{0.0f, 0.0f})};
  };
  Run direct = make(), graphed = make();
  auto gc = up(centres);
  Buffer<int32_t> labels(gpu_, random_labels(size_t(n), modes, 4));
  auto body = [&](Run& r) {
    return [&] {
      ops::sample_mixture<float>(gpu_, mix, n, r.step.data(), r.pts.data());
      ops::pairwise_sq_distances<float>(gpu_, int(n), modes, 2, r.pts.data(), gc.data(), r.dist.data());
      ops::softmax_cross_entropy<float>(gpu_, n, modes, r.dist.data(), labels.data(), 1.0f, r.dl.data(),
                                        r.sums.data(), r.sums.data() + 1);
      ops::increment_counter<float>(gpu_, r.step.data());
    };
  };
  StepGraph plain(gpu_, false), graph(gpu_, true);
  const auto direct_body = body(direct), graph_body = body(graphed);
  for (int i = 0; i < 4; ++i) {
    plain.run(direct_body);
    graph.run(graph_body);
    EXPECT_EQ(graph.captured(), i != 0) << "run " << i;
    for (auto [a, b] :
         {std::pair{&direct.dist, &graphed.dist}, {&direct.dl, &graphed.dl}, {&direct.sums, &graphed.sums}}) {
      const auto da = a->download(), db = b->download();
      ASSERT_EQ(std::memcmp(da.data(), db.data(), da.size() * sizeof(float)), 0) << "iteration " << i;
    }
  }
}

// ---- gradient penalties and tangents -------------------------------------------------------------

struct SampleShape {
  int64_t batch, per;
};
const std::vector<SampleShape> kSampleShapes = {{1, 1}, {7, 13}, {64, 784}, {64, 3072}, {300, 5}};

const int64_t kSteps[] = {0, 7, (int64_t(1) << 33) + 5};

TEST_F(CudaOps, InterpolateSamples) {
  uint32_t seed = 10000;
  for (const auto& c : first_shapes(kSampleShapes))
    for (int64_t step : kSteps) {
      const size_t n = size_t(c.batch * c.per);
      const auto a = random_vec(n, seed++), b = random_vec(n, seed++);
      std::vector<float> out(n), eps(size_t(c.batch));
      Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{step});
      auto ga = up(a), gb = up(b), gout = poisoned(n), geps = poisoned(size_t(c.batch));
      ops::interpolate_samples<float>(cpu_, c.batch, c.per, a.data(), b.data(), out.data(), eps.data(), 77,
                                      kStreamPenalty, &step);
      ops::interpolate_samples<float>(gpu_, c.batch, c.per, ga.data(), gb.data(), gout.data(), geps.data(),
                                      77, kStreamPenalty, gstep.data());
      const std::string what = "interpolate " + std::to_string(c.batch) + "x" + std::to_string(c.per) +
                               " step " + std::to_string(step);
      EXPECT_EQ(max_ulp(geps.download(), eps), 0) << what << ": eps differs";
      EXPECT_LE(max_ulp(gout.download(), out), 1) << what << ": points";
      auto gout2 = poisoned(n);
      ops::interpolate_samples<float>(gpu_, c.batch, c.per, ga.data(), gb.data(), gout2.data(), nullptr, 77,
                                      kStreamPenalty, gstep.data());
      EXPECT_EQ(max_ulp(gout2.download(), gout.download()), 0) << what << ": without eps_out";
    }
}

TEST_F(CudaOps, PerturbSamples) {
  uint32_t seed = 10500;
  for (const auto& c : first_shapes(kSampleShapes))
    for (int64_t step : kSteps) {
      const size_t n = size_t(c.batch * c.per);
      const auto x = random_vec(n, seed++, -0.5f, 1.0f);
      std::vector<float> out(n), alpha(size_t(c.batch)), u(n);
      Buffer<int64_t> gstep(gpu_, std::vector<int64_t>{step});
      auto gx = up(x), gout = poisoned(n), galpha = poisoned(size_t(c.batch)), gu = poisoned(n);
      ops::perturb_samples<float>(cpu_, c.batch, c.per, x.data(), 0.5f, out.data(), alpha.data(), u.data(),
                                  77, kStreamPenalty, &step);
      ops::perturb_samples<float>(gpu_, c.batch, c.per, gx.data(), 0.5f, gout.data(), galpha.data(),
                                  gu.data(), 77, kStreamPenalty, gstep.data());
      const std::string what = "perturb " + std::to_string(c.batch) + "x" + std::to_string(c.per) + " step " +
                               std::to_string(step);
      EXPECT_EQ(max_ulp(galpha.download(), alpha), 0) << what << ": alpha differs";
      EXPECT_EQ(max_ulp(gu.download(), u), 0) << what << ": u differs";
      EXPECT_REL(gout.download(), out, kElementwise, what << " points");
      // In place (out = x) and without the draw outputs.
      auto ginplace = up(x);
      ops::perturb_samples<float>(gpu_, c.batch, c.per, ginplace.data(), 0.5f, ginplace.data(), nullptr,
                                  nullptr, 77, kStreamPenalty, gstep.data());
      EXPECT_EQ(max_ulp(ginplace.download(), gout.download()), 0) << what << ": in place";
    }
}

TEST_F(CudaOps, GradientPenalty) {
  uint32_t seed = 11000;
  for (const auto& c : first_shapes(kSampleShapes))
    for (PenaltyKind kind : {PenaltyKind::TwoSided, PenaltyKind::Squared})
      for (float scale : {0.01f, 1.0f}) {  // norms below and above 1
        const size_t n = size_t(c.batch * c.per);
        auto g = random_vec(n, seed++, -scale, scale);
        if (c.batch > 1)
          for (int64_t j = 0; j < c.per; ++j) g[size_t(j)] = 0.0f;  // a zero gradient: v = 0 there
        std::vector<float> v(n), sums = random_vec(2, seed++);
        auto gg = up(g), gv = poisoned(n), gs = up(sums);
        ops::gradient_penalty<float>(cpu_, kind, c.batch, c.per, g.data(), 10.0f, v.data(), &sums[0],
                                     &sums[1]);
        ops::gradient_penalty<float>(gpu_, kind, c.batch, c.per, gg.data(), 10.0f, gv.data(), gs.data(),
                                     gs.data() + 1);
        const std::string what = "gradient_penalty " + std::to_string(c.batch) + "x" + std::to_string(c.per) +
                                 " kind " + std::to_string(int(kind)) + " scale " + std::to_string(scale);
        EXPECT_REL(gv.download(), v, kElementwise, what << " v");
        const auto gsh = gs.download();
        EXPECT_REL(std::vector<float>{gsh[0]}, std::vector<float>{sums[0]}, kReduction, what << " penalty");
        EXPECT_REL(std::vector<float>{gsh[1]}, std::vector<float>{sums[1]}, kReduction, what << " norms");
        auto gv2 = poisoned(n);
        ops::gradient_penalty<float>(gpu_, kind, c.batch, c.per, gg.data(), 10.0f, gv2.data(), nullptr,
                                     nullptr);
        EXPECT_REL(gv2.download(), v, kElementwise, what << " v without sums");
      }
}

TEST_F(CudaOps, ActivationSecondOrder) {
  uint32_t seed = 11500;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(4099), int64_t(100003)})
    for (Act act : kActs)
      for (bool with_dy : {true, false}) {
        const size_t m = size_t(n);
        const auto z = random_vec(m, seed++, -3.0f, 3.0f), tz = random_vec(m, seed++);
        const auto dy = random_vec(m, seed++), dty = random_vec(m, seed++);
        std::vector<float> y(m), ty(m), dz(m);
        ops::activation_forward<float>(cpu_, n, z.data(), y.data(), {act, 0.2f});
        ops::activation_backward<float>(cpu_, n, y.data(), tz.data(), ty.data(), false, {act, 0.2f});
        ops::activation_second_order<float>(cpu_, n, y.data(), ty.data(), dty.data(),
                                            with_dy ? dy.data() : nullptr, dz.data(), {act, 0.2f});
        auto gy = up(y), gty = up(ty), gdty = up(dty), gdy = up(dy), gdz = poisoned(m);
        ops::activation_second_order<float>(gpu_, n, gy.data(), gty.data(), gdty.data(),
                                            with_dy ? gdy.data() : nullptr, gdz.data(), {act, 0.2f});
        EXPECT_REL(gdz.download(), dz, kElementwise,
                   "activation_second_order n=" << n << " " << act_name(act) << " dy=" << with_dy);
      }
}

// The penalty path's ops inside a captured graph: they allocate nothing and do not synchronize
// (capture would fail), and each replay (new step: new points) equals the uncaptured run.
TEST_F(CudaOps, PenaltyOpsReplayInAGraph) {
  const int64_t batch = 16, per = 50;
  const size_t n = size_t(batch * per);
  const auto real = random_vec(n, 1), fake = random_vec(n, 2), logits = random_vec(size_t(batch), 3);
  struct Run {
    Buffer<int64_t> step;
    Buffer<float> interp, perturbed, v, dl, sums;
  };
  auto make = [&] {
    return Run{Buffer<int64_t>(gpu_, std::vector<int64_t>{0}),
               poisoned(n),
               poisoned(n),
               poisoned(n),
               poisoned(size_t(batch)),
               up(std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f})};
  };
  Run direct = make(), graphed = make();
  auto greal = up(real), gfake = up(fake), glogits = up(logits);
  Buffer<LossTerm> gterm(gpu_, std::vector<LossTerm>{LossTerm{LossKind::Linear, -1.0f, 1.0f}});
  auto body = [&](Run& r) {
    return [&] {
      ops::interpolate_samples<float>(gpu_, batch, per, greal.data(), gfake.data(), r.interp.data(), nullptr,
                                      5, kStreamPenalty, r.step.data());
      ops::perturb_samples<float>(gpu_, batch, per, greal.data(), 0.5f, r.perturbed.data(), nullptr, nullptr,
                                  5, kStreamPenalty, r.step.data());
      ops::gradient_penalty<float>(gpu_, PenaltyKind::TwoSided, batch, per, r.interp.data(), 10.0f,
                                   r.v.data(), r.sums.data(), r.sums.data() + 1);
      ops::gan_loss<float>(gpu_, gterm.data(), batch, glogits.data(), r.dl.data(), r.sums.data() + 2,
                           r.sums.data() + 3);
      ops::increment_counter<float>(gpu_, r.step.data());
    };
  };
  StepGraph plain(gpu_, false), graph(gpu_, true);
  const auto direct_body = body(direct), graph_body = body(graphed);
  std::vector<float> first_points;
  for (int i = 0; i < 4; ++i) {
    plain.run(direct_body);
    graph.run(graph_body);
    EXPECT_EQ(graph.captured(), i != 0) << "run " << i;
    for (auto [a, b] : {std::pair{&direct.interp, &graphed.interp},
                        {&direct.perturbed, &graphed.perturbed},
                        {&direct.v, &graphed.v},
                        {&direct.sums, &graphed.sums}}) {
      const auto da = a->download(), db = b->download();
      ASSERT_EQ(std::memcmp(da.data(), db.data(), da.size() * sizeof(float)), 0) << "iteration " << i;
    }
    if (i == 0) first_points = graphed.interp.download();
  }
  EXPECT_NE(graphed.interp.download(), first_points) << "each step draws new points";
}

// ---- layer norm ------------------------------------------------------------------------------------

const std::vector<LayerNormDims> kLnShapes = {
    {5, 6, 6, 1e-5f},               // odd features
    {3, 24, 4, 1e-5f},              // small images
    {64, 14 * 14 * 64, 64, 1e-5f},  // critic conv features (WGAN-GP dcgan D)
    {64, 7 * 7 * 128, 128, 1e-5f},  // critic, second conv
    {64, 1024, 1024, 1e-5f},        // critic linear features
    {37, 3 * 5 * 3, 3, 1e-5f},      // odd images, 3 channels
    {300, 100, 100, 1e-5f},         // more rows than multiprocessors
    {2, 64 * 64 * 64, 64, 1e-5f},   // long rows
};

std::string ln_name(const LayerNormDims& d) {
  return std::to_string(d.rows) + "x" + std::to_string(d.cols) + "/" + std::to_string(d.channels);
}

TEST_F(CudaOps, LayerNormForwardAndJvp) {
  uint32_t seed = 12000;
  int large = 0;
  for (const auto& d : first_shapes(kLnShapes))
    for (Act act : acts_for(d.rows * d.cols, large)) {
      const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels), R = size_t(d.rows);
      const auto x = random_vec(n, seed++, 1.0f, 4.0f);  // a mean far from zero checks the variance
      const auto gamma = random_vec(C, seed++, 0.5f, 1.5f), beta = random_vec(C, seed++),
                 tx = random_vec(n, seed++);
      std::vector<float> y(n), sm(R), si(R), ty(n);
      ops::layernorm_forward<float>(cpu_, d, x.data(), gamma.data(), beta.data(), sm.data(), si.data(),
                                    y.data(), {act, 0.2f});
      auto gx = up(x), gg = up(gamma), gb = up(beta), gtx = up(tx);
      auto gy = poisoned(n), gsm = poisoned(R), gsi = poisoned(R), gty = poisoned(n);
      ops::layernorm_forward<float>(gpu_, d, gx.data(), gg.data(), gb.data(), gsm.data(), gsi.data(),
                                    gy.data(), {act, 0.2f});
      const std::string what = "layernorm " + ln_name(d) + " " + act_name(act);
      EXPECT_REL(gy.download(), y, kGemm, what << " y");
      EXPECT_REL(gsm.download(), sm, kGemm, what << " save_mean");
      EXPECT_REL(gsi.download(), si, kGemm, what << " save_invstd");
      // The jvp from the CPU's statistics and output (both sides see the same point).
      ops::layernorm_jvp<float>(cpu_, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), tx.data(),
                                ty.data(), {act, 0.2f});
      auto gsm2 = up(sm), gsi2 = up(si), gy2 = up(y);
      ops::layernorm_jvp<float>(gpu_, d, gx.data(), gg.data(), gsm2.data(), gsi2.data(), gy2.data(),
                                gtx.data(), gty.data(), {act, 0.2f});
      EXPECT_REL(gty.download(), ty, kGemm, what << " jvp");
      // Without gamma and beta.
      auto gy3 = poisoned(n);
      std::vector<float> y3(n);
      ops::layernorm_forward<float>(cpu_, d, x.data(), nullptr, nullptr, nullptr, nullptr, y3.data(),
                                    {act, 0.2f});
      ops::layernorm_forward<float>(gpu_, d, gx.data(), nullptr, nullptr, nullptr, nullptr, gy3.data(),
                                    {act, 0.2f});
      EXPECT_REL(gy3.download(), y3, kGemm, what << " y without gamma, beta");
    }
}

// Everything a layer-norm backward reads, from one CPU forward.
struct LnPoint {
  std::vector<float> x, gamma, beta, y, sm, si;
};

LnPoint ln_point(const Exec& cpu, const LayerNormDims& d, Act act, uint32_t seed) {
  const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels), R = size_t(d.rows);
  LnPoint p{random_vec(n, seed, -2.0f, 3.0f),
            random_vec(C, seed + 1, 0.5f, 1.5f),
            random_vec(C, seed + 2),
            std::vector<float>(n),
            std::vector<float>(R),
            std::vector<float>(R)};
  ops::layernorm_forward<float>(cpu, d, p.x.data(), p.gamma.data(), p.beta.data(), p.sm.data(), p.si.data(),
                                p.y.data(), {act, 0.2f});
  return p;
}

TEST_F(CudaOps, LayerNormBackward) {
  uint32_t seed = 13000;
  int large = 0;
  for (const auto& d : first_shapes(kLnShapes))
    for (Act act : acts_for(d.rows * d.cols, large))
      for (int variant = 0; variant < 4; ++variant) {
        // 0: all gradients; 1: dx accumulated; 2: none (dy only); 3: dx only
        const bool acc = variant == 1, none = variant == 2, dx_only = variant == 3;
        const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels);
        const LnPoint p = ln_point(cpu_, d, act, seed);
        seed += 3;
        auto dy = random_vec(n, seed++), dx = random_vec(n, seed++);
        auto dg = random_vec(C, seed++), db = random_vec(C, seed++);
        auto gx = up(p.x), gg = up(p.gamma), gsm = up(p.sm), gsi = up(p.si), gy = up(p.y), gdy = up(dy);
        auto gdx = out_buf(dx, acc), gdg = up(dg), gdb = up(db);
        const bool no_params = none || dx_only;
        ops::layernorm_backward<float>(cpu_, d, p.x.data(), p.gamma.data(), p.sm.data(), p.si.data(),
                                       p.y.data(), dy.data(), none ? nullptr : dx.data(), acc,
                                       no_params ? nullptr : dg.data(), no_params ? nullptr : db.data(),
                                       {act, 0.2f});
        ops::layernorm_backward<float>(gpu_, d, gx.data(), gg.data(), gsm.data(), gsi.data(), gy.data(),
                                       gdy.data(), none ? nullptr : gdx.data(), acc,
                                       no_params ? nullptr : gdg.data(), no_params ? nullptr : gdb.data(),
                                       {act, 0.2f});
        const std::string what =
            "layernorm backward " + ln_name(d) + " " + act_name(act) + " variant " + std::to_string(variant);
        if (!none) EXPECT_REL(gdx.download(), dx, kGemm, what << " dx");
        EXPECT_REL(gdg.download(), dg, kGemm, what << " dgamma");
        EXPECT_REL(gdb.download(), db, kGemm, what << " dbeta");
      }
}

TEST_F(CudaOps, LayerNormJvpBackward) {
  uint32_t seed = 14000;
  int large = 0;
  for (const auto& d : first_shapes(kLnShapes))
    for (Act act : acts_for(d.rows * d.cols, large))
      for (int variant = 0; variant < 5; ++variant) {
        // 0: everything; 1: dtx and dx accumulated; 2: dx null (the tangent path only);
        // 3: dy null; 4: parameters only (dtx, dx null)
        const bool acc = variant == 1, no_dx = variant == 2 || variant == 4, no_dy = variant == 3,
                   no_dtx = variant == 4;
        const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels);
        const LnPoint p = ln_point(cpu_, d, act, seed);
        seed += 3;
        const auto tx = random_vec(n, seed++), dy = random_vec(n, seed++);
        auto dty = random_vec(n, seed++);
        std::vector<float> ty(n);
        ops::layernorm_jvp<float>(cpu_, d, p.x.data(), p.gamma.data(), p.sm.data(), p.si.data(), p.y.data(),
                                  tx.data(), ty.data(), {act, 0.2f});
        auto dtx = random_vec(n, seed++), dx = random_vec(n, seed++);
        auto dg = random_vec(C, seed++), db = random_vec(C, seed++);
        auto gx = up(p.x), gg = up(p.gamma), gsm = up(p.sm), gsi = up(p.si), gy = up(p.y), gtx = up(tx),
             gty = up(ty), gdty = up(dty), gdy = up(dy);
        auto gdtx = out_buf(dtx, acc), gdx = out_buf(dx, acc), gdg = up(dg), gdb = up(db);
        ops::layernorm_jvp_backward<float>(
            cpu_, d, p.x.data(), p.gamma.data(), p.sm.data(), p.si.data(), p.y.data(), tx.data(), ty.data(),
            dty.data(), no_dy ? nullptr : dy.data(), no_dtx ? nullptr : dtx.data(), acc,
            no_dx ? nullptr : dx.data(), acc, dg.data(), db.data(), {act, 0.2f});
        ops::layernorm_jvp_backward<float>(gpu_, d, gx.data(), gg.data(), gsm.data(), gsi.data(), gy.data(),
                                           gtx.data(), gty.data(), gdty.data(), no_dy ? nullptr : gdy.data(),
                                           no_dtx ? nullptr : gdtx.data(), acc, no_dx ? nullptr : gdx.data(),
                                           acc, gdg.data(), gdb.data(), {act, 0.2f});
        const std::string what = "layernorm jvp backward " + ln_name(d) + " " + act_name(act) + " variant " +
                                 std::to_string(variant);
        if (!no_dtx) EXPECT_REL(gdtx.download(), dtx, kGemm, what << " dtx");
        if (!no_dx) EXPECT_REL(gdx.download(), dx, kGemm, what << " dx");
        EXPECT_REL(gdg.download(), dg, kGemm, what << " dgamma");
        EXPECT_REL(gdb.download(), db, kGemm, what << " dbeta");
      }
}

// ---- concatenation ----------------------------------------------------------------------------------

TEST_F(CudaOps, ConcatForwardBackward) {
  struct Case {
    const char* name;
    ConcatPart a, b;
  } cases[] = {
      {"image + broadcast embedding", {64, 28 * 28, 1, 11, 0, false}, {64, 28 * 28, 10, 11, 1, true}},
      {"features", {64, 1, 100, 110, 0, false}, {64, 1, 10, 110, 100, false}},
      {"odd, embedding first", {3, 7, 5, 9, 4, false}, {3, 7, 4, 9, 0, true}},
  };
  uint32_t seed = 15000;
  for (const Case& c : cases) {
    const size_t ny = size_t(c.a.samples * c.a.positions * c.a.dst_channels);
    auto src = [](const ConcatPart& p) {
      return size_t(p.samples * (p.broadcast ? 1 : p.positions) * p.src_channels);
    };
    const auto a = random_vec(src(c.a), seed++), b = random_vec(src(c.b), seed++);
    std::vector<float> y(ny);
    auto ga = up(a), gb = up(b), gy = poisoned(ny);
    for (const auto& [part, x, gx] : {std::tuple{c.a, &a, &ga}, std::tuple{c.b, &b, &gb}}) {
      ops::concat_forward<float>(cpu_, part, x->data(), y.data());
      ops::concat_forward<float>(gpu_, part, gx->data(), gy.data());
    }
    EXPECT_REL(gy.download(), y, 0.0, c.name << " forward (every output channel written)");
    const auto dy = random_vec(ny, seed++);
    auto gdy = up(dy);
    for (const auto& part : {c.a, c.b})
      for (bool acc : {false, true}) {
        auto dx = random_vec(src(part), seed++);
        auto gdx = out_buf(dx, acc);
        ops::concat_backward<float>(cpu_, part, dy.data(), dx.data(), acc);
        ops::concat_backward<float>(gpu_, part, gdy.data(), gdx.data(), acc);
        EXPECT_EQ(max_ulp(gdx.download(), dx), 0) << c.name << " backward offset " << part.offset
                                                  << " acc=" << acc << ": the same additions in order";
      }
  }
}

// ---- graph capture ---------------------------------------------------------------------------

// fill_noise keyed by a device step counter, a linear forward, increment_counter: replayed N
// times from one capture, it must give what N uncaptured runs give (run 0 is the uncaptured
// warm-up, run 1 captures, runs 2.. replay; reset() after run 2 makes run 3 capture again).
// ---- minibatch statistics ----------------------------------------------------------------------

TEST_F(CudaOps, MinibatchDiscrimination) {
  // Batch 1; a partial j tile; A not a multiple of the 32 kernels of a block; C = 1 and the
  // largest C; ldo > A (the statistics beside f in the layer's output); the benchmark's A and C.
  const MinibatchDiscDims cases[] = {{1, 3, 2, 3},    {7, 5, 3, 9},     {70, 33, 5, 40},
                                     {40, 64, 1, 64}, {33, 10, 16, 12}, {257, 100, 5, 228}};
  uint32_t seed = 9700;
  for (const auto& d : first_shapes(std::vector<MinibatchDiscDims>(std::begin(cases), std::end(cases)))) {
    SCOPED_TRACE(testing::Message() << "B " << d.batch << " A " << d.kernels << " C " << d.dims);
    const auto m = random_vec(size_t(d.batch * d.kernels * d.dims), seed++, -0.3f, 0.3f);
    const auto dout = random_vec(size_t(d.batch * d.ldo), seed++);
    // o is written only in its first A columns of each row: the rest must keep their values.
    const auto o0 = random_vec(size_t(d.batch * d.ldo), seed++);
    std::vector<float> o = o0, dm(m.size());
    ops::mbdisc_forward<float>(cpu_, d, m.data(), o.data());
    ops::mbdisc_backward<float>(cpu_, d, m.data(), dout.data(), dm.data());
    auto gm = up(m), gdo = up(dout), go = up(o0);
    auto gdm = poisoned(m.size());
    ops::mbdisc_forward<float>(gpu_, d, gm.data(), go.data());
    ops::mbdisc_backward<float>(gpu_, d, gm.data(), gdo.data(), gdm.data());
    EXPECT_REL(go.download(), o, kElementwise, "o");
    EXPECT_REL(gdm.download(), dm, kReduction, "dm");
  }
}

TEST_F(CudaOps, MinibatchStd) {
  const MinibatchStdDims cases[] = {
      {5, 1, 7, 1e-8f}, {64, 16, 33, 1e-8f}, {1, 4, 3, 1e-4f}, {128, 1, 1024, 1e-8f}};
  uint32_t seed = 9800;
  for (const auto& d : first_shapes(std::vector<MinibatchStdDims>(std::begin(cases), std::end(cases)))) {
    SCOPED_TRACE(testing::Message() << "B " << d.batch << " P " << d.positions << " C " << d.channels);
    const size_t nx = size_t(d.batch * d.features()), ny = size_t(d.batch * d.positions * (d.channels + 1));
    const auto x = random_vec(nx, seed++, -2.0f, 3.0f), dy = random_vec(ny, seed++);
    std::vector<float> y(ny), stats(size_t(2 * d.features() + 1));
    ops::mbstd_forward<float>(cpu_, d, x.data(), y.data(), stats.data());
    auto gx = up(x), gdy = up(dy);
    auto gy = poisoned(ny), gstats = poisoned(stats.size());
    ops::mbstd_forward<float>(gpu_, d, gx.data(), gy.data(), gstats.data());
    EXPECT_REL(gy.download(), y, kReduction, "y");
    EXPECT_REL(gstats.download(), stats, kReduction, "mean, 1 / sigma and s");
    for (bool acc : {false, true}) {
      const auto dx0 = random_vec(nx, seed++);
      std::vector<float> dx = dx0;
      ops::mbstd_backward<float>(cpu_, d, x.data(), stats.data(), dy.data(), dx.data(), acc);
      auto gdx = out_buf(dx0, acc);
      ops::mbstd_backward<float>(gpu_, d, gx.data(), gstats.data(), gdy.data(), gdx.data(), acc);
      EXPECT_REL(gdx.download(), dx, kReduction, "dx, accumulate " << acc);
    }
  }
}

TEST_F(CudaOps, FeatureMatching) {
  const std::pair<int64_t, int64_t> cases[] = {{1, 1}, {7, 5}, {64, 256}, {256, 8192}};
  uint32_t seed = 9900;
  for (const auto& [rows, cols] :
       first_shapes(std::vector<std::pair<int64_t, int64_t>>(std::begin(cases), std::end(cases)))) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols);
    const auto real = random_vec(size_t(rows * cols), seed++),
               fake = random_vec(size_t(rows * cols), seed++, -0.5f, 1.5f);
    std::vector<float> mean(static_cast<size_t>(cols)), dfake(fake.size()), loss{0.25f};
    ops::batch_mean<float>(cpu_, rows, cols, real.data(), mean.data());
    ops::feature_matching_loss<float>(cpu_, rows, cols, mean.data(), fake.data(), dfake.data(), loss.data());
    auto greal = up(real), gfake = up(fake), gloss = up({0.25f});
    auto gmean = poisoned(mean.size()), gdfake = poisoned(dfake.size());
    ops::batch_mean<float>(gpu_, rows, cols, greal.data(), gmean.data());
    ops::feature_matching_loss<float>(gpu_, rows, cols, gmean.data(), gfake.data(), gdfake.data(),
                                      gloss.data());
    EXPECT_REL(gmean.download(), mean, kReduction, "real mean");
    EXPECT_REL(gdfake.download(), dfake, kReduction, "dfake");
    EXPECT_REL(gloss.download(), loss, kReduction, "loss sum");
  }
}

// The supervised generator's ops: the MSE and its gradient, and each image's mean pixel value.
TEST_F(CudaOps, SupervisedMseAndRowMeans) {
  const std::pair<int64_t, int64_t> cases[] = {{1, 1}, {7, 5}, {64, 784}, {300, 3072}};
  uint32_t seed = 9970;
  for (const auto& [rows, cols] :
       first_shapes(std::vector<std::pair<int64_t, int64_t>>(std::begin(cases), std::end(cases)))) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols);
    const int64_t n = rows * cols;
    const auto x = random_vec(size_t(n), seed++), target = random_vec(size_t(n), seed++, -1.0f, 1.0f);
    std::vector<float> dx(static_cast<size_t>(n)), loss{0.25f}, means(static_cast<size_t>(rows));
    ops::mse_loss<float>(cpu_, n, x.data(), target.data(), dx.data(), loss.data());
    ops::row_means<float>(cpu_, rows, cols, target.data(), means.data());
    auto gx = up(x), gtarget = up(target), gloss = up({0.25f});
    auto gdx = poisoned(size_t(n)), gmeans = poisoned(size_t(rows));
    ops::mse_loss<float>(gpu_, n, gx.data(), gtarget.data(), gdx.data(), gloss.data());
    ops::row_means<float>(gpu_, rows, cols, gtarget.data(), gmeans.data());
    EXPECT_REL(gdx.download(), dx, kElementwise, "dx");
    EXPECT_REL(gloss.download(), loss, kReduction, "loss sum");
    EXPECT_REL(gmeans.download(), means, kReduction, "row means");
    // Without a gradient, and without a sum.
    ops::mse_loss<float>(gpu_, n, gx.data(), gtarget.data(), nullptr, gloss.data());
    ops::mse_loss<float>(gpu_, n, gx.data(), gtarget.data(), gdx.data(), nullptr);
    EXPECT_REL(gdx.download(), dx, kElementwise, "dx without the sum");
    EXPECT_NEAR(gloss.download()[0], 0.25f + 2.0f * (loss[0] - 0.25f), 1e-5f * (loss[0] + 1.0f));
  }
}

// The distance head's loss, with both labels: the CPU gets the same pairwise distances as the GPU
// (downloaded), so the comparison is of distance_head_loss alone.
TEST_F(CudaOps, DistanceHeadLoss) {
  const std::pair<int64_t, int64_t> cases[] = {{1, 3}, {7, 5}, {64, 784}, {300, 3072}};
  uint32_t seed = 9950;
  for (const auto& [rows, cols] :
       first_shapes(std::vector<std::pair<int64_t, int64_t>>(std::begin(cases), std::end(cases))))
    for (bool mean_distance : {false, true}) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols << (mean_distance ? " mean distance" : " norm"));
      const auto x = random_vec(size_t(rows * cols), seed++),
                 head = random_vec(size_t(rows), seed++, 0.0f, 30.0f);
      auto gx = up(x), ghead = up(head), gloss = up({0.25f});
      auto gdhead = poisoned(size_t(rows));
      Buffer<float> gpair(gpu_, size_t(rows * rows));
      std::vector<float> pair;
      if (mean_distance) {
        ops::pairwise_sq_distances<float>(gpu_, int(rows), int(rows), int(cols), gx.data(), gx.data(),
                                          gpair.data());
        pair = gpair.download();
      }
      std::vector<float> dhead(static_cast<size_t>(rows)), loss{0.25f};
      ops::distance_head_loss<float>(cpu_, rows, cols, x.data(), mean_distance ? pair.data() : nullptr,
                                     head.data(), 0.5f, dhead.data(), loss.data());
      ops::distance_head_loss<float>(gpu_, rows, cols, gx.data(), mean_distance ? gpair.data() : nullptr,
                                     ghead.data(), 0.5f, gdhead.data(), gloss.data());
      EXPECT_REL(gdhead.download(), dhead, kReduction, "dhead");
      EXPECT_REL(gloss.download(), loss, kReduction, "loss sum");
    }
}

// The fakes of D's pre-training: the same bits on both backends (one fma per pixel, a gather).
TEST_F(CudaOps, DPretrainFakes) {
  uint32_t seed = 9970;
  std::vector<float> cdf = random_vec(256, seed++, 0.0f, 1.0f);
  std::sort(cdf.begin(), cdf.end());
  cdf[255] = 1.0f;
  for (int64_t n : first_shapes(std::vector<int64_t>{1, 1000, 200003})) {
    const auto u = random_vec(size_t(n), seed++, -1.0f, 1.0f);
    std::vector<float> v = u;
    auto gv = up(u), gcdf = up(cdf);
    ops::histogram_pixels<float>(cpu_, n, cdf.data(), 2.0f / 255.0f, -1.0f, v.data());
    ops::histogram_pixels<float>(gpu_, n, gcdf.data(), 2.0f / 255.0f, -1.0f, gv.data());
    EXPECT_EQ(gv.download(), v) << "histogram pixels, n = " << n;
  }
  const std::tuple<int64_t, int64_t, int> shapes[] = {{1, 3, 1}, {4, 784, 1}, {3, 1024, 3}};
  for (const auto& [rows, positions, channels] :
       first_shapes(std::vector<std::tuple<int64_t, int64_t, int>>(std::begin(shapes), std::end(shapes)))) {
    std::vector<int32_t> perm(static_cast<size_t>(positions));
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = int32_t(i);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(seed++));
    const auto in = random_vec(size_t(rows * positions * channels), seed++);
    std::vector<float> out(in.size());
    Buffer<int32_t> gperm(gpu_, perm);
    auto gin = up(in), gout = poisoned(in.size());
    ops::permute_positions<float>(cpu_, rows, positions, channels, perm.data(), in.data(), out.data());
    ops::permute_positions<float>(gpu_, rows, positions, channels, gperm.data(), gin.data(), gout.data());
    EXPECT_EQ(gout.download(), out) << "permute positions " << rows << "x" << positions << "x" << channels;
  }
}

TEST_F(CudaOps, StepGraphReplayMatchesDirectRuns) {
  const LinearDims d{64, 100, 256};
  const auto w = random_vec(size_t(d.out) * d.in, 1, -0.1f, 0.1f), b = random_vec(size_t(d.out), 2);
  struct Run {
    Buffer<int64_t> step;
    Buffer<float> z, y, w, b;
  };
  auto make = [&] {
    return Run{Buffer<int64_t>(gpu_, std::vector<int64_t>{0}), poisoned(size_t(d.batch) * d.in),
               poisoned(size_t(d.batch) * d.out), up(w), up(b)};
  };
  Run direct = make(), graphed = make();
  auto body = [&](Run& r) {
    return [&] {
      ops::fill_noise<float>(gpu_, int64_t(d.batch) * d.in, r.z.data(), NoiseKind::Normal, 5, kStreamNoiseD,
                             r.step.data());
      ops::linear_forward<float>(gpu_, d, r.z.data(), r.w.data(), r.b.data(), r.y.data(),
                                 {Act::LeakyReLU, 0.2f});
      ops::increment_counter<float>(gpu_, r.step.data());
    };
  };
  StepGraph plain(gpu_, false), graph(gpu_, true);
  const auto direct_body = body(direct), graph_body = body(graphed);
  for (int i = 0; i < 5; ++i) {
    plain.run(direct_body);
    graph.run(graph_body);
    EXPECT_EQ(graph.captured(), i != 0) << "run " << i;  // run 0 is the warm-up
    EXPECT_FALSE(plain.captured());
    const auto yd = direct.y.download(), yg = graphed.y.download();
    ASSERT_EQ(std::memcmp(yd.data(), yg.data(), yd.size() * sizeof(float)), 0) << "iteration " << i;
    EXPECT_EQ(graphed.step.download()[0], i + 1);
    if (i == 2) {
      graph.reset();  // run 3 captures again and continues from the device state
      EXPECT_FALSE(graph.captured());
    }
  }
  EXPECT_EQ(direct.step.download()[0], 5);
}

}  // namespace
}  // namespace gancu

namespace gancu {
namespace {
// Runs everywhere: without a device, asking for one is a clear RuntimeError, never a crash.
TEST(CudaAvailability, ExecCudaFailsCleanlyWithoutDevice) {
  std::string why;
  if (cuda_available(&why)) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(why.empty());
  try {
    (void)Exec::cuda(0);
    FAIL() << "Exec::cuda succeeded without a device";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
}
}  // namespace
}  // namespace gancu
