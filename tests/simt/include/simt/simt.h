// The SIMT emulator's core: runs a CUDA grid on the CPU, each GPU thread a fiber, so that the
// project's own kernels (kernels/*.cu) run unchanged in a build without a GPU
// (GANCU_CUDA_EMULATION; see docs/testing.md, "The CUDA tests on the CPU").
//
// A launch runs its blocks one after another on the calling OS thread; the threads of a block are
// fibers that a deterministic scheduler switches at __syncthreads and at warp operations only.
// The order in which blocks, and threads within a block, are scheduled is forward, reverse or
// shuffled (GANCU_SIMT_ORDER=forward|reverse|shuffle[:seed]), so that a missing barrier, which
// only shows in some interleavings, shows in at least one of them.
//
// What is checked, as a GPU would fail (the launch then reports cudaErrorLaunchFailure through
// cudaGetLastError, with a message naming the kernel, the block and the cause):
// - __syncthreads is a counting barrier (threads that returned stop counting); a block whose live
//   threads can never all meet is a deadlock, reported instead of hanging;
// - warp operations check their mask: it must contain the calling lane, name only lanes that
//   exist and have not exited, and every named lane must reach the same operation (same source
//   line); a lane that exits while others wait for it is an error.
// Dynamic shared memory is filled with NaN at each block start; static __shared__ variables are
// per block (blocks never run concurrently) but keep the previous block's values.
//
// Header for the emulator's own code and for the stand-in cuda_runtime.h; kernels see it only
// through that header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

namespace simt {

constexpr int kWarpSize = 32;

// The source line of a barrier or warp operation: lanes of one warp must meet at the same one.
struct Site {
  const char* file;
  int line;
};

// Kinds of warp collectives.
enum class WarpOp : uint8_t { ShflIdx, ShflXor, ShflDown, ShflUp, Ballot, Any, All, SyncWarp };

struct BlockRun;  // simt.cpp

namespace detail {
// The GPU thread running now, or null outside a kernel (thread-local: several OS threads may
// launch).
struct ThreadState {
  uint3 idx;
  BlockRun* block;
};
extern thread_local ThreadState* current;
extern thread_local uint3 block_idx;
extern thread_local dim3 block_dim, grid_dim;
extern thread_local void* dynamic_shared;

[[noreturn]] void outside_kernel(const char* what);
inline ThreadState& self(const char* what) {
  if (!current) outside_kernel(what);
  return *current;
}
}  // namespace detail

// Device-side operations (kernels reach them through cuda_runtime.h's intrinsics).
void syncthreads(Site site);
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, Site site);

template <class T>
T* dynamic_shared() {
  return static_cast<T*>(detail::dynamic_shared);
}

template <class T>
T shuffle(WarpOp op, unsigned mask, T v, int arg, int width, Site site) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_collective(op, mask, bits, arg, width, site);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

// ---- Launches -------------------------------------------------------------------------------------

struct LaunchSpec {
  const char* kernel;  // the kernel's name as written at the launch site
  const char* file;
  int line;
  dim3 grid, block;
  size_t shared_bytes;
  void* stream;  // cudaStream_t
};

// Checks the configuration, then runs the grid now or, when the stream is being captured, records
// it as a graph node. Errors surface through cudaGetLastError. `body` runs one GPU thread.
void launch(const LaunchSpec& spec, std::function<void()> body);

// What a launch site `k<<<g, b, s, st>>>(args)` becomes (rewrite_launches.cmake): the arguments
// are converted to the kernel's parameter types and copied at the launch, as CUDA does.
template <class... P>
struct BoundLaunch {
  LaunchSpec spec;
  void (*fn)(P...);
  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    std::tuple<std::decay_t<P>...> copied(std::forward<A>(args)...);
    auto f = fn;
    launch(spec, [f, copied]() { std::apply(f, copied); });
  }
};

struct Launch {
  LaunchSpec spec;
  Launch(const char* kernel, const char* file, int line, dim3 grid, dim3 block, size_t shared = 0,
         void* stream = nullptr)
      : spec{kernel, file, line, grid, block, shared, stream} {}
  template <class S>
  Launch(const char* kernel, const char* file, int line, dim3 grid, dim3 block, size_t shared, S* stream)
      : spec{kernel, file, line, grid, block, shared, static_cast<void*>(stream)} {}
  template <class... P>
  BoundLaunch<P...> kernel(void (*fn)(P...)) const {
    return BoundLaunch<P...>{spec, fn};
  }
};

// ---- What a GPU would see: counters of the emulated device (gancu bench in this build) ----------
struct Counters {
  int64_t kernel_launches = 0;  // executed kernels (graph replays included)
  int64_t library_calls = 0;    // executed cuBLAS / cuBLASLt / cuDNN calls
  int64_t graph_launches = 0;
  int64_t graph_nodes = 0;  // nodes executed through graph launches
  int64_t memcpy_calls = 0;
  int64_t gpu_threads = 0;  // GPU threads run
  // Device memory the project's kernels read and wrote (access_count.cpp: clang builds, once
  // gancu_simt_count_bytes(1) turned counting on); library calls are not included.
  int64_t bytes_read = 0;
  int64_t bytes_written = 0;
};
Counters& counters();

// Byte counting around each grid (access_count.cpp).
bool bytes_counted_by_this_build();
void begin_grid_access_count();
void end_grid_access_count(const char* kernel);

// Scheduling order of blocks and of the threads of a block (GANCU_SIMT_ORDER, read at each
// launch so that tests can change it).
enum class Order { Forward, Reverse, Shuffle };
Order order_from_env(uint64_t* seed);

// The emulator's last error message (which kernel, which block, why); empty when none.
const std::string& last_error_detail();

// Work a library call (cuBLAS, cuDNN stand-ins) enqueues on a stream: run now, or recorded as a
// node when the stream is being captured. Returns false when the stream's capture forbids it.
bool enqueue_library_call(void* stream, const char* what, std::function<void()> work);

}  // namespace simt
