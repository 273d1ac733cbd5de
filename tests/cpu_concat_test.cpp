// CPU concatenation along channels: two inputs (an image and a broadcast label embedding, or two
// feature vectors) assembled into one output and taken apart again; the backward against finite
// differences in double (the broadcast one sums over the positions); accumulate and null dx.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// y[s, p, :] = [a[s, p, :], b[s, :] or b[s, p, :]]: the expected output, by direct loops.
std::vector<double> concat_ref(const ConcatPart& pa, const ConcatPart& pb, const std::vector<double>& a,
                               const std::vector<double>& b) {
  const int64_t S = pa.samples, P = pa.positions, D = pa.dst_channels;
  std::vector<double> y(size_t(S * P * D));
  for (int64_t s = 0; s < S; ++s)
    for (int64_t p = 0; p < P; ++p) {
      for (int k = 0; k < pa.src_channels; ++k)
        y[size_t((s * P + p) * D + pa.offset + k)] = a[size_t((s * P + p) * pa.src_channels + k)];
      for (int k = 0; k < pb.src_channels; ++k) {
        const int64_t src = pb.broadcast ? s * pb.src_channels + k : (s * P + p) * pb.src_channels + k;
        y[size_t((s * P + p) * D + pb.offset + k)] = b[size_t(src)];
      }
    }
  return y;
}

struct ConcatCase {
  const char* name;
  ConcatPart a, b;
};

// An image [4, 3x5, 6] with a label embedding [4, 3] broadcast to every position; two feature
// vectors [7, 5] and [7, 2]; the embedding first.
const ConcatCase kCases[] = {
    {"image + broadcast embedding", {4, 15, 6, 9, 0, false}, {4, 15, 3, 9, 6, true}},
    {"features", {7, 1, 5, 7, 0, false}, {7, 1, 2, 7, 5, false}},
    {"embedding first", {2, 4, 3, 5, 2, false}, {2, 4, 2, 5, 0, true}},
};

size_t src_size(const ConcatPart& p) {
  return size_t(p.samples * (p.broadcast ? 1 : p.positions) * p.src_channels);
}

TEST(CpuConcat, ForwardPlacesEachInputInItsChannels) {
  CpuEnv env;
  for (const ConcatCase& c : kCases) {
    SCOPED_TRACE(c.name);
    const auto a = randn(src_size(c.a), 1), b = randn(src_size(c.b), 2);
    std::vector<double> y(size_t(c.a.samples * c.a.positions * c.a.dst_channels), NAN);
    ops::concat_forward<double>(env.ex, c.a, a.data(), y.data());
    ops::concat_forward<double>(env.ex, c.b, b.data(), y.data());
    EXPECT_EQ(y, concat_ref(c.a, c.b, a, b));
  }
}

TEST(CpuConcat, BackwardMatchesFiniteDifferencesAndAccumulates) {
  CpuEnv env;
  for (const ConcatCase& c : kCases) {
    SCOPED_TRACE(c.name);
    auto a = randn(src_size(c.a), 3), b = randn(src_size(c.b), 4);
    const auto R = randn(size_t(c.a.samples * c.a.positions * c.a.dst_channels), 5);
    auto loss = [&] { return dot(R, concat_ref(c.a, c.b, a, b)); };
    for (const auto& [part, x] : {std::pair{c.a, &a}, std::pair{c.b, &b}}) {
      std::vector<double> dx(x->size(), NAN);
      ops::concat_backward<double>(env.ex, part, R.data(), dx.data(), false);
      EXPECT_LT(rel_err(dx, numeric_grad(*x, loss)), kGradTol) << "offset " << part.offset;
      const auto dx0 = randn(x->size(), 6);
      auto acc = dx0;
      ops::concat_backward<double>(env.ex, part, R.data(), acc.data(), true);
      EXPECT_LT(rel_err(acc, add(dx0, dx)), 1e-15) << "accumulate_dx adds";
      ops::concat_backward<double>(env.ex, part, R.data(), nullptr, false);  // no gradient wanted
    }
  }
}

TEST(CpuConcat, RejectsChannelsOutsideTheOutput) {
  CpuEnv env;
  std::vector<double> x(12), y(12);
  EXPECT_THROW(ops::concat_forward<double>(env.ex, ConcatPart{2, 2, 2, 3, 2, false}, x.data(), y.data()),
               std::exception);
}

}  // namespace
}  // namespace gancu::test
