// The SIMT emulator's own tests (built in the emulated build only, GANCU_CUDA_EMULATION): what it
// promises in simt/simt.h, each with a kernel written to break it. Compiled through the same
// launch rewrite as kernels/*.cu.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

extern "C" int gancu_simt_count_bytes(int on);  // tests/simt/access_count.cpp

namespace {

// Runs the test body under each scheduling order, restoring the environment afterwards.
class OrderScope {
 public:
  explicit OrderScope(const char* order) {
    const char* old = std::getenv("GANCU_SIMT_ORDER");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("GANCU_SIMT_ORDER", order, 1);
  }
  ~OrderScope() {
    if (had_)
      setenv("GANCU_SIMT_ORDER", old_.c_str(), 1);
    else
      unsetenv("GANCU_SIMT_ORDER");
  }

 private:
  bool had_ = false;
  std::string old_;
};
const char* const kOrders[] = {"forward", "reverse", "shuffle:7"};

template <class T>
struct DeviceArray {
  T* p = nullptr;
  size_t n;
  explicit DeviceArray(size_t count, T fill = T()) : n(count) {
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
    std::vector<T> h(n, fill);
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p); }
  std::vector<T> host() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

// The launch's error and the emulator's message for it.
std::string launch_error(cudaError_t want) {
  const cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, want) << cudaGetErrorString(e);
  return simt::last_error_detail();
}

// ---- Kernels ----------------------------------------------------------------------------------------

__global__ void rotate_through_shared(int* out) {
  __shared__ int sh[256];
  const int t = threadIdx.x;
  sh[t] = t * 10;
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = sh[(t + 1) % blockDim.x];
}

// A tree sum over shared memory, with or without the barrier inside the loop.
__global__ void tree_sum(const float* in, float* out, bool barrier_in_loop) {
  extern __shared__ float sh[];
  const int t = threadIdx.x;
  sh[t] = in[t];
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    if (barrier_in_loop) __syncthreads();
  }
  if (t == 0) *out = sh[0];
}

__global__ void read_unwritten_shared(float* out) {
  extern __shared__ float sh[];
  out[threadIdx.x] = sh[threadIdx.x];
}

__global__ void barrier_against_shuffle(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x == 0)
    __syncthreads();
  else
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void warp_ops(int* out) {
  const int lane = threadIdx.x;
  out[0 * 32 + lane] = __shfl_xor_sync(0xffffffffu, lane, 5);
  out[1 * 32 + lane] = __shfl_down_sync(0xffffffffu, lane, 3);
  out[2 * 32 + lane] = __shfl_up_sync(0xffffffffu, lane, 2);
  out[3 * 32 + lane] = __shfl_sync(0xffffffffu, lane * 2, 31 - lane);
  out[4 * 32 + lane] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  out[5 * 32 + lane] = __any_sync(0xffffffffu, lane == 17);
  out[6 * 32 + lane] = __all_sync(0xffffffffu, lane < 31);
  out[7 * 32 + lane] = __shfl_xor_sync(0xffffffffu, lane, 4, 8);  // width 8 segments
  __syncwarp();
  float s = float(lane);
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  out[8 * 32 + lane] = int(s);
}

__global__ void mask_without_caller(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0x0000fffeu, int(threadIdx.x), 1);
}

__global__ void mask_names_exited_lane(int* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}

__global__ void divergent_shuffle(int* out) {
  int v = threadIdx.x;
  if (threadIdx.x < 16)
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  else
    v = __shfl_xor_sync(0xffffffffu, v, 2);
  out[threadIdx.x] = v;
}

__global__ void half_warp_block_full_mask(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}

__global__ void count_with_atomics(int* counter, unsigned* maxv, int* order) {
  const int old = atomicAdd(counter, 1);
  atomicMax(maxv, unsigned(blockIdx.x * blockDim.x + threadIdx.x));
  if (threadIdx.x == 0) order[blockIdx.x] = old / int(blockDim.x);
}

__global__ void exits_early_around_barrier(int* out) {
  __shared__ int sh[64];
  if (threadIdx.x >= 48) return;  // returned threads stop counting at the barrier
  sh[threadIdx.x] = int(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = sh[47 - threadIdx.x];
}

__global__ void add_one(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}

__global__ void nothing() {}

// Reads n floats and writes n doubles of device memory, through shared memory and a local array
// that are not device memory.
__global__ void widen_through_shared(const float* in, double* out, int n) {
  __shared__ float sh[128];
  volatile float local[2];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  local[0] = i < n ? in[i] : 0.0f;
  sh[threadIdx.x] = local[0];
  __syncthreads();
  local[1] = sh[threadIdx.x] * 2.0f;
  if (i < n) out[i] = double(local[1]);
}

// float4 loads and stores, as the optimizers' kernels use them.
__global__ void double_float4(float4* x, int n4) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  float4 v = x[i];
  v.x *= 2;
  v.y *= 2;
  v.z *= 2;
  v.w *= 2;
  x[i] = v;
}

// ---- Tests --------------------------------------------------------------------------------------------

TEST(Simt, BarrierSeparatesWritesFromReadsInEveryOrder) {
  for (const char* order : kOrders) {
    OrderScope scope(order);
    DeviceArray<int> out(2 * 256, -1);
    rotate_through_shared<<<2, 256>>>(out.p);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    const std::vector<int> h = out.host();
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < 256; ++t) ASSERT_EQ(h[b * 256 + t], ((t + 1) % 256) * 10) << order;
  }
}

TEST(Simt, AMissingBarrierShowsInSomeOrder) {
  std::vector<float> ones(128, 1.0f);
  DeviceArray<float> in(128), out(1);
  ASSERT_EQ(cudaMemcpy(in.p, ones.data(), 128 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  int wrong = 0;
  for (const char* order : kOrders) {
    OrderScope scope(order);
    tree_sum<<<1, 128, 128 * sizeof(float)>>>(in.p, out.p, true);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    EXPECT_EQ(out.host()[0], 128.0f) << order;
    tree_sum<<<1, 128, 128 * sizeof(float)>>>(in.p, out.p, false);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    wrong += out.host()[0] != 128.0f;
  }
  EXPECT_GE(wrong, 1) << "no scheduling order exposed the missing barrier";
  OrderScope forward("forward");
  tree_sum<<<1, 128, 128 * sizeof(float)>>>(in.p, out.p, false);
  EXPECT_NE(out.host()[0], 128.0f) << "forward order: thread 0 runs its whole loop first";
}

TEST(Simt, DynamicSharedMemoryStartsAsNaN) {
  DeviceArray<float> out(64, 0.0f);
  read_unwritten_shared<<<1, 64, 64 * sizeof(float)>>>(out.p);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (float v : out.host()) EXPECT_TRUE(std::isnan(v));
}

TEST(Simt, DeadlockIsReportedWithTheKernelsName) {
  setenv("GANCU_SIMT_QUIET", "1", 1);
  DeviceArray<float> out(32);
  barrier_against_shuffle<<<1, 32>>>(out.p);
  const std::string msg = launch_error(cudaErrorLaunchFailure);
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("barrier_against_shuffle"), std::string::npos) << msg;
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorLaunchFailure)).find("barrier_against_shuffle"),
            std::string::npos);
  // The emulator stays usable after a failed launch.
  nothing<<<1, 32>>>();
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  unsetenv("GANCU_SIMT_QUIET");
}

TEST(Simt, WarpOperationsGiveCudasResults) {
  for (const char* order : kOrders) {
    OrderScope scope(order);
    DeviceArray<int> out(9 * 32, -1);
    warp_ops<<<1, 32>>>(out.p);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    const std::vector<int> h = out.host();
    unsigned ballot = 0;
    for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(h[0 * 32 + l], l ^ 5);
      EXPECT_EQ(h[1 * 32 + l], l + 3 < 32 ? l + 3 : l);
      EXPECT_EQ(h[2 * 32 + l], l >= 2 ? l - 2 : l);
      EXPECT_EQ(h[3 * 32 + l], (31 - l) * 2);
      EXPECT_EQ(unsigned(h[4 * 32 + l]), ballot);
      EXPECT_EQ(h[5 * 32 + l], 1);
      EXPECT_EQ(h[6 * 32 + l], 0);
      EXPECT_EQ(h[7 * 32 + l], l ^ 4);
      EXPECT_EQ(h[8 * 32 + l], 31 * 32 / 2);
    }
  }
}

TEST(Simt, BadMasksAreLaunchFailures) {
  setenv("GANCU_SIMT_QUIET", "1", 1);
  DeviceArray<int> out(32);
  mask_without_caller<<<1, 32>>>(out.p);
  EXPECT_NE(launch_error(cudaErrorLaunchFailure).find("leaves out the calling lane"), std::string::npos);
  mask_names_exited_lane<<<1, 32>>>(out.p);
  const std::string exited = launch_error(cudaErrorLaunchFailure);
  EXPECT_TRUE(exited.find("exited") != std::string::npos) << exited;
  divergent_shuffle<<<1, 32>>>(out.p);
  EXPECT_NE(launch_error(cudaErrorLaunchFailure).find("divergent"), std::string::npos);
  half_warp_block_full_mask<<<1, 16>>>(out.p);
  EXPECT_NE(launch_error(cudaErrorLaunchFailure).find("does not have"), std::string::npos);
  unsetenv("GANCU_SIMT_QUIET");
}

TEST(Simt, ReturnedThreadsStopCountingAtBarriers) {
  DeviceArray<int> out(64, -1);
  exits_early_around_barrier<<<1, 64>>>(out.p);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> h = out.host();
  for (int t = 0; t < 48; ++t) EXPECT_EQ(h[t], 47 - t);
}

TEST(Simt, AtomicsAndTheBlockOrderOfEachSchedule) {
  const int blocks = 16, threads = 64;
  std::vector<std::vector<int>> seen;
  for (const char* order : {"forward", "reverse", "shuffle:7", "forward", "shuffle:7", "shuffle:8"}) {
    OrderScope scope(order);
    DeviceArray<int> counter(1, 0), order_out(blocks, -1);
    DeviceArray<unsigned> maxv(1, 0u);
    count_with_atomics<<<blocks, threads>>>(counter.p, maxv.p, order_out.p);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    EXPECT_EQ(counter.host()[0], blocks * threads);
    EXPECT_EQ(maxv.host()[0], unsigned(blocks * threads - 1));
    seen.push_back(order_out.host());
  }
  std::vector<int> forward(blocks), reverse(blocks);
  std::iota(forward.begin(), forward.end(), 0);
  for (int b = 0; b < blocks; ++b) reverse[b] = blocks - 1 - b;
  EXPECT_EQ(seen[0], forward);
  EXPECT_EQ(seen[1], reverse);
  EXPECT_NE(seen[2], forward);
  EXPECT_EQ(seen[3], forward);
  EXPECT_EQ(seen[2], seen[4]) << "a seeded shuffle repeats";
  EXPECT_NE(seen[2], seen[5]) << "another seed, another order";
}

TEST(Simt, LaunchConfigurationIsCheckedAsTheDriverDoes) {
  setenv("GANCU_SIMT_QUIET", "1", 1);
  nothing<<<1, 1025>>>();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  nothing<<<1, dim3(32, 32, 2)>>>();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  nothing<<<dim3(1, 65536), 32>>>();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  nothing<<<0, 32>>>();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  nothing<<<1, 32, 64 * 1024>>>();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  nothing<<<1, 1024, 48 * 1024>>>();
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "cudaGetLastError clears the error";
  unsetenv("GANCU_SIMT_QUIET");
}

TEST(Simt, CapturedGraphsReplayAndUpdate) {
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  DeviceArray<float> x(100, 0.0f), y(100, 0.0f);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  add_one<<<1, 128, 0, s>>>(x.p, 100);
  add_one<<<1, 128, 0, s>>>(x.p, 100);
  cudaGraph_t g = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess);
  EXPECT_EQ(x.host()[5], 0.0f) << "a captured launch does not run";
  size_t nodes = 0;
  ASSERT_EQ(cudaGraphGetNodes(g, nullptr, &nodes), cudaSuccess);
  EXPECT_EQ(nodes, 2u);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, g, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  EXPECT_EQ(x.host()[5], 4.0f);
  // Same topology, other parameters: updated in place.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  add_one<<<1, 128, 0, s>>>(y.p, 100);
  add_one<<<1, 128, 0, s>>>(y.p, 50);
  cudaGraph_t g2 = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &g2), cudaSuccess);
  cudaGraphExecUpdateResultInfo info{};
  ASSERT_EQ(cudaGraphExecUpdate(exec, g2, &info), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  EXPECT_EQ(y.host()[5], 2.0f);
  EXPECT_EQ(y.host()[75], 1.0f);
  EXPECT_EQ(x.host()[5], 4.0f);
  // Another topology is refused.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  add_one<<<1, 128, 0, s>>>(y.p, 100);
  cudaGraph_t g3 = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &g3), cudaSuccess);
  setenv("GANCU_SIMT_QUIET", "1", 1);
  EXPECT_EQ(cudaGraphExecUpdate(exec, g3, &info), cudaErrorGraphExecUpdateFailure);
  EXPECT_EQ(info.result, cudaGraphExecUpdateErrorTopologyChanged);
  (void)cudaGetLastError();
  cudaGraphDestroy(g);
  cudaGraphDestroy(g2);
  cudaGraphDestroy(g3);
  cudaGraphExecDestroy(exec);

  // Allocation and synchronization during capture are errors that invalidate the capture.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t bad = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(s, &bad), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(bad, nullptr);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &bad), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  unsetenv("GANCU_SIMT_QUIET");
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST(Simt, CopiesCheckTheirDirectionAndBounds) {
  setenv("GANCU_SIMT_QUIET", "1", 1);
  DeviceArray<float> d(8, 0.0f);
  std::vector<float> h(8, 1.0f);
  EXPECT_EQ(cudaMemcpy(h.data(), d.p, 32, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d.p, h.data(), 32, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d.p, h.data(), 64, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d.p, h.data(), 32, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaFree(h.data()), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  unsetenv("GANCU_SIMT_QUIET");
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
// In the ASan build (CI's), a kernel that writes one element past its buffer is an ASan report,
// even inside the 256-byte granule that cudaMalloc rounds to.
TEST(SimtDeathTest, AnOutOfBoundsKernelWriteIsAnAsanReport) {
  DeviceArray<float> x(10, 0.0f);
  add_one<<<1, 32>>>(x.p, 10);  // guarded: in bounds
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_DEATH(add_one<<<1, 32>>>(x.p, 11), "AddressSanitizer");
}
#endif
#endif

TEST(Simt, CountsTheBytesKernelsMoveInDeviceMemory) {
  constexpr int n = 1000;
  DeviceArray<float> in(n, 1.5f);
  DeviceArray<double> out(n);
  const simt::Counters before = simt::counters();
  widen_through_shared<<<(n + 127) / 128, 128>>>(in.p, out.p, n);  // counting is off
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(simt::counters().bytes_read, before.bytes_read);
  const bool counted = gancu_simt_count_bytes(1) != 0;
  widen_through_shared<<<(n + 127) / 128, 128>>>(in.p, out.p, n);
  cudaMemcpy(out.p, in.p, 4, cudaMemcpyDeviceToDevice);               // a copy is not a kernel's traffic
  double_float4<<<2, 128>>>(reinterpret_cast<float4*>(in.p), n / 4);  // 16-byte accesses
  gancu_simt_count_bytes(0);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(out.host()[n - 1], 3.0);
  EXPECT_EQ(in.host()[n - 1], 3.0f);
  const int64_t read = simt::counters().bytes_read - before.bytes_read;
  const int64_t written = simt::counters().bytes_written - before.bytes_written;
#if defined(__clang__)
  // Exactly the device traffic: shared memory, the local array and the arguments are not in it.
  // (This file's kernels are instrumented in every clang build; `counted` says whether the
  // project's kernels are too, GANCU_SIMT_COUNT_BYTES.)
  (void)counted;
  EXPECT_EQ(read, int64_t(n) * 4 + int64_t(n) * 4);
  EXPECT_EQ(written, int64_t(n) * 8 + int64_t(n) * 4);
#else
  // gcc has no load/store instrumentation: the build says it does not count, and counts nothing.
  EXPECT_FALSE(counted);
  EXPECT_EQ(read, 0);
  EXPECT_EQ(written, 0);
#endif
}

}  // namespace
