// The SIMT emulator's scheduler: blocks of a grid one after another, the threads of a block as
// fibers switched at __syncthreads and warp operations, in the order GANCU_SIMT_ORDER asks for
// (see simt/simt.h for what is checked).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fiber.h"
#include "runtime.h"

namespace simt {

namespace detail {
thread_local ThreadState* current = nullptr;
thread_local uint3 block_idx{0, 0, 0};
thread_local dim3 block_dim, grid_dim;
thread_local void* dynamic_shared = nullptr;

void outside_kernel(const char* what) {
  std::fprintf(stderr, "simt: %s used outside a kernel\n", what);
  std::abort();
}
}  // namespace detail

namespace {

enum class State : uint8_t { Ready, AtBarrier, AtWarpOp, Done };

struct ThreadRec {
  detail::ThreadState st;
  int lane = 0, warp = 0;
  State state = State::Ready;
  Fiber* fiber = nullptr;
  uint64_t warp_result = 0;
  Site site{nullptr, 0};  // where it waits
};

// The warp operation a warp's lanes are meeting at (at most one at a time per warp).
struct PendingWarpOp {
  bool active = false;
  WarpOp op = WarpOp::SyncWarp;
  unsigned mask = 0, arrived = 0;
  int width = kWarpSize;
  Site site{nullptr, 0};
  uint64_t values[kWarpSize] = {};
  int args[kWarpSize] = {};
};

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::ShflIdx:
      return "__shfl_sync";
    case WarpOp::ShflXor:
      return "__shfl_xor_sync";
    case WarpOp::ShflDown:
      return "__shfl_down_sync";
    case WarpOp::ShflUp:
      return "__shfl_up_sync";
    case WarpOp::Ballot:
      return "__ballot_sync";
    case WarpOp::Any:
      return "__any_sync";
    case WarpOp::All:
      return "__all_sync";
    default:
      return "__syncwarp";
  }
}

bool same_site(Site a, Site b) {
  return a.line == b.line && (a.file == b.file || (a.file && b.file && std::strcmp(a.file, b.file) == 0));
}

std::string where(Site s) {
  std::string f = s.file ? s.file : "?";
  const size_t slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return f + ":" + std::to_string(s.line);
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

}  // namespace

struct BlockRun {
  const LaunchSpec* spec = nullptr;
  const std::function<void()>* body = nullptr;
  std::vector<ThreadRec> threads;
  std::vector<int> order;
  std::vector<PendingWarpOp> warps;
  int live = 0, at_barrier = 0;
  FiberContext sched{};
  ThreadRec* running = nullptr;
  bool failed = false;
  std::string error;

  unsigned existing_lanes(int warp) const {
    const int n = int(threads.size()) - warp * kWarpSize;
    return n >= kWarpSize ? 0xffffffffu : ((1u << n) - 1u);
  }
  unsigned exited_lanes(int warp) const {
    unsigned m = 0;
    const int base = warp * kWarpSize;
    for (int l = 0; l < kWarpSize && base + l < int(threads.size()); ++l)
      if (threads[base + l].state == State::Done) m |= 1u << l;
    return m;
  }
  std::string name() const {
    std::ostringstream s;
    s << "kernel '" << spec->kernel << "' (launched at " << where({spec->file, spec->line}) << "), block ("
      << detail::block_idx.x << "," << detail::block_idx.y << "," << detail::block_idx.z << ")";
    return s.str();
  }
};

namespace {

thread_local BlockRun* g_block = nullptr;
// Fibers of this OS thread, one per thread index of a block (reused by every block and launch).
thread_local std::vector<std::unique_ptr<Fiber>> g_fibers;

ThreadRec& running_thread(const char* what) {
  detail::ThreadState& st = detail::self(what);
  return *reinterpret_cast<ThreadRec*>(&st);  // st is ThreadRec's first member
}

// Back to the scheduler until this thread is Ready again.
void yield(BlockRun& b, ThreadRec& t) {
  t.fiber->leave(&b.sched, false);
}

// Thrown by fail() and caught at the bottom of the failing thread's fiber: unwinding runs the
// destructors of the frames in between (the message's temporaries among them), which a switch
// away for good would leak.
struct BlockFailed {};

// Fails the launch from inside a thread: the block stops here, the thread is never resumed.
[[noreturn]] void fail(BlockRun& b, ThreadRec& t, const std::string& why) {
  b.failed = true;
  b.error = b.name() + ", thread (" + std::to_string(t.st.idx.x) + "," + std::to_string(t.st.idx.y) + "," +
            std::to_string(t.st.idx.z) + "): " + why;
  throw BlockFailed{};
}

void release_barrier(BlockRun& b) {
  for (ThreadRec& r : b.threads)
    if (r.state == State::AtBarrier) r.state = State::Ready;
  b.at_barrier = 0;
}

// Every lane of the op has arrived: each gets its result and becomes Ready.
void complete_warp_op(BlockRun& b, int warp, ThreadRec& caller) {
  PendingWarpOp& w = b.warps[warp];
  const int base = warp * kWarpSize;
  unsigned ballot = 0;
  for (int l = 0; l < kWarpSize; ++l)
    if ((w.mask >> l & 1u) && w.values[l] != 0) ballot |= 1u << l;
  for (int l = 0; l < kWarpSize; ++l) {
    if (!(w.mask >> l & 1u)) continue;
    ThreadRec& r = b.threads[base + l];
    const int seg = l & ~(w.width - 1);
    int src = l;
    switch (w.op) {
      case WarpOp::ShflIdx:
        src = seg + (w.args[l] & (w.width - 1));
        break;
      case WarpOp::ShflXor:
        src = l ^ w.args[l];
        if ((src & ~(w.width - 1)) != seg) src = l;
        break;
      case WarpOp::ShflDown:
        src = l + w.args[l];
        if (src >= seg + w.width) src = l;
        break;
      case WarpOp::ShflUp:
        src = l - w.args[l];
        if (src < seg) src = l;
        break;
      default:
        break;
    }
    switch (w.op) {
      case WarpOp::Ballot:
        r.warp_result = ballot;
        break;
      case WarpOp::Any:
        r.warp_result = ballot != 0;
        break;
      case WarpOp::All:
        r.warp_result = ballot == w.mask;
        break;
      case WarpOp::SyncWarp:
        r.warp_result = 0;
        break;
      default:
        if (src < 0 || src >= kWarpSize || !(w.mask >> src & 1u)) {
          w.active = false;
          fail(b, caller,
               std::string(op_name(w.op)) + " at " + where(w.site) + ": lane " + std::to_string(l) +
                   " reads lane " + std::to_string(src) + ", which is not in the mask " + hex(w.mask));
        }
        r.warp_result = w.values[src];
    }
    r.state = State::Ready;
  }
  w.active = false;
}

// A thread has returned from the kernel.
void thread_exit(BlockRun& b, ThreadRec& t) {
  t.state = State::Done;
  --b.live;
  PendingWarpOp& w = b.warps[t.warp];
  if (w.active && (w.mask >> t.lane & 1u))
    fail(b, t,
         "returned while lanes " + hex(w.arrived) + " of its warp wait for it in " + op_name(w.op) + " at " +
             where(w.site) + " (the mask " + hex(w.mask) + " names a lane that exited)");
  if (b.at_barrier > 0 && b.at_barrier == b.live) release_barrier(b);
}

void fiber_entry() {
  BlockRun& b = *g_block;
  ThreadRec& t = *b.running;
  t.fiber->started();
  try {
    (*b.body)();
    thread_exit(b, t);
    t.fiber->finished_cleanly();
  } catch (const BlockFailed&) {
    // b.error says why; the scheduler stops the block (its other fibers are reset, never resumed).
  }
  t.fiber->leave(&b.sched, true);
  std::abort();  // a finished fiber is never resumed
}

std::string deadlock_report(const BlockRun& b) {
  std::ostringstream s;
  s << b.name() << ": deadlock: " << b.live << " thread(s) can never continue";
  int shown = 0;
  for (const ThreadRec& r : b.threads) {
    if (r.state == State::Done || shown >= 4) continue;
    s << (shown ? "; " : ": ") << "thread (" << r.st.idx.x << "," << r.st.idx.y << "," << r.st.idx.z
      << ") waits at " << (r.state == State::AtBarrier ? "__syncthreads" : op_name(b.warps[r.warp].op)) << " "
      << where(r.site);
    ++shown;
  }
  for (size_t w = 0; w < b.warps.size(); ++w)
    if (b.warps[w].active) {
      s << "; warp " << w << " waits in " << op_name(b.warps[w].op) << " for lanes "
        << hex(b.warps[w].mask & ~b.warps[w].arrived) << " (mask " << hex(b.warps[w].mask) << ")";
      break;
    }
  return s.str();
}

// Seeds the shuffled order of each launch; restarts when GANCU_SIMT_ORDER changes, so that a run
// under one seed repeats its orders launch by launch.
uint64_t g_launch_serial = 0;
std::string g_order_setting;

std::vector<int> make_order(int n, Order order, uint64_t seed, uint64_t salt) {
  std::vector<int> v(size_t(std::max(n, 0)));
  std::iota(v.begin(), v.end(), 0);
  if (order == Order::Reverse) std::reverse(v.begin(), v.end());
  if (order == Order::Shuffle) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + salt);
    std::shuffle(v.begin(), v.end(), rng);
  }
  return v;
}

// Runs one block to completion; false when it failed (b.error says why).
bool run_block(BlockRun& b, Order order, uint64_t seed, uint64_t salt) {
  const int n = int(b.threads.size());
  while (int(g_fibers.size()) < n) g_fibers.push_back(std::make_unique<Fiber>());
  const dim3 bd = b.spec->block;
  for (int i = 0; i < n; ++i) {
    ThreadRec& r = b.threads[i];
    r.st.idx = uint3{unsigned(i) % bd.x, (unsigned(i) / bd.x) % bd.y, unsigned(i) / (bd.x * bd.y)};
    r.st.block = &b;
    r.lane = i % kWarpSize;
    r.warp = i / kWarpSize;
    r.state = State::Ready;
    r.fiber = g_fibers[i].get();
    r.fiber->reset(&fiber_entry);
  }
  for (PendingWarpOp& w : b.warps) w.active = false;
  b.live = n;
  b.at_barrier = 0;
  b.order = make_order(n, order, seed, salt);
  BlockRun* outer = g_block;
  g_block = &b;
  while (b.live > 0 && !b.failed) {
    bool progressed = false;
    for (int i : b.order) {
      ThreadRec& r = b.threads[i];
      if (r.state != State::Ready) continue;
      progressed = true;
      b.running = &r;
      detail::current = &r.st;
      r.fiber->enter(&b.sched);
      detail::current = nullptr;
      if (b.failed) break;
    }
    if (!progressed && !b.failed && b.live > 0) {
      b.failed = true;
      b.error = deadlock_report(b);
    }
  }
  g_block = outer;
  return !b.failed;
}

}  // namespace

void syncthreads(Site site) {
  ThreadRec& t = running_thread("__syncthreads");
  BlockRun& b = *g_block;
  t.state = State::AtBarrier;
  t.site = site;
  if (++b.at_barrier == b.live) release_barrier(b);
  yield(b, t);  // even the last to arrive: the next phase starts in the scheduling order
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, Site site) {
  ThreadRec& t = running_thread(op_name(op));
  BlockRun& b = *g_block;
  const unsigned bit = 1u << t.lane;
  if (!(mask & bit))
    fail(b, t,
         std::string(op_name(op)) + " at " + where(site) + ": the mask " + hex(mask) +
             " leaves out the calling lane " + std::to_string(t.lane));
  if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0)
    fail(b, t,
         std::string(op_name(op)) + " at " + where(site) + ": width " + std::to_string(width) +
             " is not a power of two up to 32");
  const unsigned missing = mask & ~b.existing_lanes(t.warp);
  if (missing)
    fail(b, t,
         std::string(op_name(op)) + " at " + where(site) + ": the mask " + hex(mask) + " names lanes " +
             hex(missing) + " that this block does not have");
  const unsigned exited = mask & b.exited_lanes(t.warp);
  if (exited)
    fail(b, t,
         std::string(op_name(op)) + " at " + where(site) + ": the mask " + hex(mask) + " names lanes " +
             hex(exited) + " that have exited");
  PendingWarpOp& w = b.warps[t.warp];
  if (w.active) {
    if (w.op != op || w.mask != mask || w.width != width || !same_site(w.site, site))
      fail(b, t,
           std::string("divergent warp operation: lane ") + std::to_string(t.lane) + " reached " +
               op_name(op) + " at " + where(site) + " (mask " + hex(mask) + ") while lanes " +
               hex(w.arrived) + " wait in " + op_name(w.op) + " at " + where(w.site) + " (mask " +
               hex(w.mask) + ")");
  } else {
    w.active = true;
    w.op = op;
    w.mask = mask;
    w.width = width;
    w.site = site;
    w.arrived = 0;
  }
  w.values[t.lane] = value;
  w.args[t.lane] = arg;
  w.arrived |= bit;
  t.state = State::AtWarpOp;
  t.site = site;
  if (w.arrived == w.mask) complete_warp_op(b, t.warp, t);
  yield(b, t);
  return t.warp_result;
}

Order order_from_env(uint64_t* seed) {
  const char* v = std::getenv("GANCU_SIMT_ORDER");
  *seed = 1;
  if (!v || !*v || std::strcmp(v, "forward") == 0) return Order::Forward;
  if (std::strcmp(v, "reverse") == 0) return Order::Reverse;
  if (std::strncmp(v, "shuffle", 7) == 0) {
    if (v[7] == ':') *seed = std::strtoull(v + 8, nullptr, 10);
    return Order::Shuffle;
  }
  std::fprintf(stderr, "simt: GANCU_SIMT_ORDER='%s' is not forward, reverse or shuffle[:seed]\n", v);
  std::exit(2);
}

bool execute_grid(const LaunchSpec& spec, const std::function<void()>& body) {
  uint64_t seed = 1;
  const Order order = order_from_env(&seed);
  const char* setting = std::getenv("GANCU_SIMT_ORDER");
  if (g_order_setting != (setting ? setting : "")) {
    g_order_setting = setting ? setting : "";
    g_launch_serial = 0;
  }
  const uint64_t serial = ++g_launch_serial;
  const dim3 g = spec.grid;
  const int64_t nblocks = int64_t(g.x) * g.y * g.z;
  const int nthreads = int(spec.block.x * spec.block.y * spec.block.z);
  Counters& c = counters();
  ++c.kernel_launches;
  c.gpu_threads += nblocks * nthreads;

  // The block order: a permutation of the block indices for shuffled runs of small grids; large
  // grids (never used by gancu's kernels, whose grids are capped) go forward or in reverse.
  std::vector<int> blocks;
  if (order == Order::Shuffle && nblocks <= (int64_t(1) << 20))
    blocks = make_order(int(nblocks), order, seed, serial);

  std::vector<char> shared;  // dynamic shared memory, 16-byte aligned
  std::vector<float4> shared_storage((spec.shared_bytes + 15) / 16);
  BlockRun b;
  b.spec = &spec;
  b.body = &body;
  b.threads.resize(size_t(nthreads));
  b.warps.resize(size_t((nthreads + kWarpSize - 1) / kWarpSize));
  const dim3 saved_bd = detail::block_dim, saved_gd = detail::grid_dim;
  const uint3 saved_bi = detail::block_idx;
  void* saved_sh = detail::dynamic_shared;
  detail::block_dim = spec.block;
  detail::grid_dim = spec.grid;
  bool ok = true;
  begin_grid_access_count();
  for (int64_t k = 0; k < nblocks && ok; ++k) {
    int64_t id = k;
    if (!blocks.empty())
      id = blocks[size_t(k)];
    else if (order == Order::Reverse || order == Order::Shuffle)
      id = nblocks - 1 - k;
    detail::block_idx =
        uint3{unsigned(id % g.x), unsigned((id / g.x) % g.y), unsigned(id / (int64_t(g.x) * g.y))};
    if (!shared_storage.empty()) {
      // NaN in every float and double: a read of shared memory that no thread wrote shows.
      uint32_t* w = reinterpret_cast<uint32_t*>(shared_storage.data());
      std::fill(w, w + shared_storage.size() * 4, 0x7fc00000u);
    }
    detail::dynamic_shared = shared_storage.empty() ? nullptr : shared_storage.data();
    ok = run_block(b, order, seed, serial * 1000003u + uint64_t(id));
  }
  end_grid_access_count(spec.kernel);
  detail::block_dim = saved_bd;
  detail::grid_dim = saved_gd;
  detail::block_idx = saved_bi;
  detail::dynamic_shared = saved_sh;
  if (!ok) set_error(cudaErrorLaunchFailure, b.error);
  return ok;
}

// Launch-configuration checks, as the driver makes them (limits of compute capability 8.0 / 9.0
// without opting in to more shared memory).
void launch(const LaunchSpec& spec, std::function<void()> body) {
  const dim3 g = spec.grid, bl = spec.block;
  auto bad = [&](cudaError_t e, const std::string& why) {
    set_error(e, std::string("launch of kernel '") + spec.kernel + "' at " + where({spec.file, spec.line}) +
                     ": " + why);
  };
  const uint64_t threads = uint64_t(bl.x) * bl.y * bl.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || bl.x == 0 || bl.y == 0 || bl.z == 0)
    return bad(cudaErrorInvalidConfiguration, "a grid or block dimension is 0");
  if (bl.x > 1024 || bl.y > 1024 || bl.z > 64 || threads > 1024)
    return bad(cudaErrorInvalidConfiguration, "block (" + std::to_string(bl.x) + "," + std::to_string(bl.y) +
                                                  "," + std::to_string(bl.z) +
                                                  ") exceeds 1024 threads or a per-axis limit");
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    return bad(cudaErrorInvalidConfiguration, "grid (" + std::to_string(g.x) + "," + std::to_string(g.y) +
                                                  "," + std::to_string(g.z) + ") exceeds the grid limits");
  if (spec.shared_bytes > 48 * 1024)
    return bad(cudaErrorInvalidValue, std::to_string(spec.shared_bytes) +
                                          " bytes of dynamic shared memory exceed the 48 KiB default limit");
  const LaunchSpec copy = spec;
  auto work = [copy, body]() { execute_grid(copy, body); };
  switch (enqueue(spec.stream, NodeKind::Kernel, spec.kernel, work)) {
    case Enqueue::Run:
      execute_grid(spec, body);
      return;
    default:
      return;
  }
}

}  // namespace simt
