// The CUDA runtime API of the SIMT emulator: errors, the emulated device, memory (with copy
// directions and bounds checked against the allocations), in-order streams, events, and stream
// capture into graphs that replay and update in place.
//
// Capture follows CUDA's rules that matter to gancu: a stream being captured records kernels,
// copies, memsets and library calls as nodes instead of running them; while this thread captures
// (ThreadLocal or Global mode), cudaMalloc, synchronous copies and synchronizations are errors
// that also invalidate the capture, so cudaStreamEndCapture fails afterwards.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "asan.h"
#include "runtime.h"

struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  CUgraph_st* graph = nullptr;
};

struct GraphNode {
  simt::NodeKind kind;
  std::string name;
  std::function<void()> work;
};

struct CUgraph_st {
  std::vector<GraphNode> nodes;
};

struct CUgraphExec_st {
  std::vector<GraphNode> nodes;
};

struct CUevent_st {
  std::chrono::steady_clock::time_point when{};
  bool recorded = false;
};

namespace simt {

namespace {

thread_local cudaError_t g_last = cudaSuccess;
thread_local std::string g_detail;
thread_local uint64_t g_error_serial = 0;  // counts set_error calls: did a replayed node fail?
thread_local int g_thread_captures = 0;    // captures this thread started that are still open
int g_global_captures = 0;                 // open captures in Global mode (any thread)
std::mutex g_mutex;                        // allocations and the global capture count

constexpr size_t kDeviceBytes = size_t(16) << 30;  // what the emulated device reports

struct Allocation {
  size_t bytes;
  bool device;  // false: page-locked host memory (cudaMallocHost)
};
std::map<uintptr_t, Allocation> g_allocs;
size_t g_device_bytes = 0;

// The allocation holding [p, p + bytes), if any; `inside` false when p is in none.
const Allocation* find_alloc(const void* p, size_t bytes, bool* fits) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (a >= it->first + std::max<size_t>(it->second.bytes, 1)) return nullptr;
  *fits = a + bytes <= it->first + it->second.bytes;
  return &it->second;
}

// A call that must not happen while this thread captures (allocation, synchronization):
// invalidates the open captures, as CUDA does, and returns the error.
cudaError_t unsafe_during_capture(const char* what) {
  if (g_thread_captures == 0 && g_global_captures == 0) return cudaSuccess;
  set_error(
      cudaErrorStreamCaptureUnsupported,
      std::string(what) + " while a stream is being captured (not capturable; the capture is invalidated)");
  return cudaErrorStreamCaptureUnsupported;
}

// Every capture open on this thread is invalidated by an unsafe call.
std::vector<CUstream_st*>& open_captures() {
  static thread_local std::vector<CUstream_st*> v;
  return v;
}

cudaError_t refuse(const char* what) {
  const cudaError_t e = unsafe_during_capture(what);
  if (e != cudaSuccess)
    for (CUstream_st* s : open_captures()) s->invalidated = true;
  return e;
}

const char* plain_message(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorIllegalState:
      return "the operation cannot be performed in the present state";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorLaunchOutOfResources:
      return "too many resources requested for launch";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched:
      return "capture was not initiated in this stream";
    case cudaErrorGraphExecUpdateFailure:
      return "the graph update was not performed because it included changes which violated constraints";
    default:
      return "unknown error";
  }
}

}  // namespace

void device_ranges(std::vector<std::pair<uintptr_t, uintptr_t>>* out) {
  std::lock_guard<std::mutex> lock(g_mutex);
  out->clear();
  for (const auto& [begin, a] : g_allocs)  // a std::map: already sorted
    if (a.device) out->emplace_back(begin, begin + a.bytes);
}

Counters& counters() {
  static Counters c;
  return c;
}

const std::string& last_error_detail() {
  return g_detail;
}

void set_error(cudaError_t e, const std::string& detail) {
  g_last = e;
  ++g_error_serial;
  g_detail = detail;
  if (!detail.empty() && !std::getenv("GANCU_SIMT_QUIET")) std::fprintf(stderr, "simt: %s\n", detail.c_str());
}

Enqueue enqueue(void* stream, NodeKind kind, const std::string& name, const std::function<void()>& work) {
  auto* s = static_cast<CUstream_st*>(stream);
  if (s && s->capturing) {
    if (s->invalidated) return Enqueue::Refused;
    s->graph->nodes.push_back(GraphNode{kind, name, work});
    return Enqueue::Recorded;
  }
  if (!s && (g_thread_captures > 0 || g_global_captures > 0)) {
    // The legacy stream synchronizes with every blocking stream: not capturable.
    refuse((name + " on the legacy default stream").c_str());
    return Enqueue::Refused;
  }
  return Enqueue::Run;
}

bool enqueue_library_call(void* stream, const char* what, std::function<void()> work) {
  switch (enqueue(stream, NodeKind::Library, what, [work]() {
    ++counters().library_calls;
    work();
  })) {
    case Enqueue::Run:
      ++counters().library_calls;
      work();
      return true;
    case Enqueue::Recorded:
      return true;
    default:
      return false;
  }
}

}  // namespace simt

using simt::set_error;

// ---- Errors -----------------------------------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t e) {
  // The emulator's detail (which kernel, which block, why) with the error it belongs to.
  static thread_local std::string s;
  s = simt::plain_message(e);
  if (e != cudaSuccess && !simt::g_detail.empty()) s += " [simt: " + simt::g_detail + "]";
  return s.c_str();
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorStreamCaptureUnsupported:
      return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
      return "cudaErrorStreamCaptureInvalidated";
    default:
      return "cudaError";
  }
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = simt::g_last;
  simt::g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return simt::g_last;
}

// Returned errors are also the "last error", as CUDA's runtime does.
static cudaError_t fail(cudaError_t e, const std::string& why) {
  set_error(e, why);
  return e;
}

// ---- The emulated device ------------------------------------------------------------------------------
// One emulated device per process, which may answer to a higher index: GANCU_SIMT_DEVICES=N makes
// the process see a node of N devices (the ranks of a data-parallel test pick theirs by local
// rank), each process still with its own memory.
static int emulated_device_count() {
  const char* v = std::getenv("GANCU_SIMT_DEVICES");
  const int n = v ? std::atoi(v) : 1;
  return n >= 1 ? n : 1;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = emulated_device_count();
  return cudaSuccess;
}
static int current_device = 0;
cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= emulated_device_count())
    return fail(cudaErrorInvalidDevice, "cudaSetDevice: device " + std::to_string(device) +
                                            " is not emulated (GANCU_SIMT_DEVICES sets how many are)");
  current_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = current_device;
  return cudaSuccess;
}
// Few multiprocessors: grids sized by the SM count (grid_for, reduce_geometry) stay small enough
// to emulate quickly while still having several blocks and row splits.
static int emulated_sm_count() {
  const char* v = std::getenv("GANCU_SIMT_SMS");
  const int n = v ? std::atoi(v) : 2;
  return n > 0 ? n : 2;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device < 0 || device >= emulated_device_count())
    return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: device " + std::to_string(device) +
                                            " is not emulated (GANCU_SIMT_DEVICES sets how many are)");
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof(p->name), "SIMT emulator on the CPU (gancu, GANCU_CUDA_EMULATION)");
  p->totalGlobalMem = simt::kDeviceBytes;
  p->sharedMemPerBlock = 48 * 1024;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = emulated_sm_count();
  p->l2CacheSize = 50 << 20;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  const cudaError_t e = cudaGetDeviceProperties(&p, device);
  if (e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = p.maxThreadsPerBlock;
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = p.multiProcessorCount;
      return cudaSuccess;
    case cudaDevAttrL2CacheSize:
      *value = p.l2CacheSize;
      return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 0;  // no driver: the emulator stands in for it
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  return simt::refuse("cudaDeviceSynchronize");
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(simt::g_mutex);
  *total_bytes = simt::kDeviceBytes;
  *free_bytes = simt::kDeviceBytes - std::min(simt::kDeviceBytes, simt::g_device_bytes);
  return cudaSuccess;
}
cudaError_t simt_func_attributes(cudaFuncAttributes* attr) {
  *attr = cudaFuncAttributes{};
  attr->maxThreadsPerBlock = 1024;
  attr->ptxVersion = attr->binaryVersion = 90;
  return cudaSuccess;
}

// ---- Memory -------------------------------------------------------------------------------------------
static cudaError_t allocate(void** p, size_t bytes, bool device, const char* what) {
  if (const cudaError_t e = simt::refuse(what); e != cudaSuccess) return e;
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  std::lock_guard<std::mutex> lock(simt::g_mutex);
  if (device && simt::g_device_bytes + rounded > simt::kDeviceBytes)
    return fail(cudaErrorMemoryAllocation, std::string(what) + ": the emulated device's memory is exhausted");
  void* m = std::aligned_alloc(256, rounded);  // cudaMalloc's alignment
  if (!m) return fail(cudaErrorMemoryAllocation, std::string(what) + ": out of host memory");
  // Uninitialized device memory reads as NaN (0xff bytes) in float and double, so that an output
  // a kernel forgot to write shows.
  std::memset(m, 0xff, rounded);
#if SIMT_ASAN
  // The padding up to cudaMalloc's 256-byte granule is not the caller's: a kernel that reads or
  // writes past its buffer's end is an ASan report, where a GPU would silently touch the padding.
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(m) + bytes, rounded - bytes);
#endif
  simt::g_allocs[reinterpret_cast<uintptr_t>(m)] = {bytes, device};
  if (device) simt::g_device_bytes += rounded;
  *p = m;
  return cudaSuccess;
}
static cudaError_t release(void* p, bool device, const char* what) {
  if (!p) return cudaSuccess;
  if (const cudaError_t e = simt::refuse(what); e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(simt::g_mutex);
  auto it = simt::g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == simt::g_allocs.end() || it->second.device != device)
    return fail(cudaErrorInvalidValue, std::string(what) + ": the pointer was not allocated by " +
                                           (device ? "cudaMalloc" : "cudaMallocHost"));
  if (device) simt::g_device_bytes -= (std::max<size_t>(it->second.bytes, 1) + 255) / 256 * 256;
#if SIMT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, (std::max<size_t>(it->second.bytes, 1) + 255) / 256 * 256);
#endif
  simt::g_allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}
static std::atomic<uint64_t> g_device_mallocs{0};
cudaError_t cudaMalloc(void** p, size_t bytes) {
  ++g_device_mallocs;
  return allocate(p, bytes, true, "cudaMalloc");
}
uint64_t simtDeviceMallocCount() {
  return g_device_mallocs.load();
}
cudaError_t cudaFree(void* p) {
  return release(p, true, "cudaFree");
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  return allocate(p, bytes, false, "cudaMallocHost");
}
cudaError_t cudaFreeHost(void* p) {
  return release(p, false, "cudaFreeHost");
}

// Checks that [p, p + bytes) is device memory (or is not, for host) for a copy or memset.
static cudaError_t check_side(const void* p, size_t bytes, bool want_device, const char* what,
                              const char* role) {
  std::lock_guard<std::mutex> lock(simt::g_mutex);
  bool fits = false;
  const simt::Allocation* a = simt::find_alloc(p, bytes, &fits);
  const bool is_device = a && a->device;
  if (want_device && !is_device)
    return fail(cudaErrorInvalidValue, std::string(what) + ": the " + role + " is not device memory");
  if (!want_device && is_device)
    return fail(cudaErrorInvalidValue,
                std::string(what) + ": the " + role + " is device memory, the copy kind says host");
  if (a && !fits)
    return fail(cudaErrorInvalidValue, std::string(what) + ": " + std::to_string(bytes) +
                                           " bytes run past the end of the " + role + "'s allocation");
  return cudaSuccess;
}

static cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                              const char* what) {
  if (kind == cudaMemcpyDefault) return cudaSuccess;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection, std::string(what) + ": invalid copy kind");
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (const cudaError_t e = check_side(dst, bytes, dst_dev, what, "destination"); e != cudaSuccess) return e;
  return check_side(src, bytes, src_dev, what, "source");
}

// A copy or fill on a stream: run now, or recorded as a graph node while the stream captures.
static cudaError_t run_or_record(cudaStream_t stream, simt::NodeKind kind, const char* name,
                                 const std::function<void()>& work) {
  switch (simt::enqueue(stream, kind, name, work)) {
    case simt::Enqueue::Run:
      work();
      return cudaSuccess;
    case simt::Enqueue::Recorded:
      return cudaSuccess;
    default:
      return cudaErrorStreamCaptureInvalidated;
  }
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (const cudaError_t e = simt::refuse("cudaMemcpy (synchronous)"); e != cudaSuccess) return e;
  if (const cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpy"); e != cudaSuccess) return e;
  ++simt::counters().memcpy_calls;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (const cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync"); e != cudaSuccess) return e;
  auto work = [dst, src, bytes]() {
    ++simt::counters().memcpy_calls;
    if (bytes) std::memmove(dst, src, bytes);
  };
  return run_or_record(stream, simt::NodeKind::Memcpy, "memcpy", work);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (const cudaError_t e = simt::refuse("cudaMemset (synchronous)"); e != cudaSuccess) return e;
  return cudaMemsetAsync(p, value, bytes, nullptr);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  if (const cudaError_t e = check_side(p, bytes, true, "cudaMemset", "destination"); e != cudaSuccess)
    return e;
  auto work = [p, value, bytes]() { std::memset(p, value, bytes); };
  return run_or_record(stream, simt::NodeKind::Memset, "memset", work);
}

// ---- Streams --------------------------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  return cudaStreamCreate(s);
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of the legacy stream");
  if (s->capturing)
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamDestroy of a stream being captured");
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (s && s->capturing) {
    s->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize of a stream being captured");
  }
  return simt::refuse("cudaStreamSynchronize");  // work already ran: nothing to wait for
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  if (!s) return fail(cudaErrorStreamCaptureUnsupported, "the legacy stream cannot be captured");
  if (s->capturing)
    return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->graph = new CUgraph_st;
  if (mode != cudaStreamCaptureModeRelaxed) {
    ++simt::g_thread_captures;
    simt::open_captures().push_back(s);
  }
  if (mode == cudaStreamCaptureModeGlobal) {
    std::lock_guard<std::mutex> lock(simt::g_mutex);
    ++simt::g_global_captures;
  }
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!s || !s->capturing)
    return fail(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
  s->capturing = false;
  if (s->mode != cudaStreamCaptureModeRelaxed) {
    --simt::g_thread_captures;
    auto& open = simt::open_captures();
    open.erase(std::remove(open.begin(), open.end(), s), open.end());
  }
  if (s->mode == cudaStreamCaptureModeGlobal) {
    std::lock_guard<std::mutex> lock(simt::g_mutex);
    --simt::g_global_captures;
  }
  CUgraph_st* g = s->graph;
  s->graph = nullptr;
  if (s->invalidated) {
    delete g;
    return fail(cudaErrorStreamCaptureInvalidated,
                "cudaStreamEndCapture: the capture was invalidated by an earlier error");
  }
  *graph = g;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  *status = !s || !s->capturing
                ? cudaStreamCaptureStatusNone
                : (s->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}

// ---- Events (host timestamps: work has run by the time an event is recorded) ----------------------------
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (s && s->capturing)
    return fail(cudaErrorStreamCaptureUnsupported, "cudaEventRecord in a capture is not emulated");
  e->when = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return e->recorded ? cudaSuccess
                     : fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: never recorded");
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start->recorded || !end->recorded)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was never recorded");
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// ---- Graphs ---------------------------------------------------------------------------------------------
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t g, unsigned long long) {
  if (!g) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate of a null graph");
  *exec = new CUgraphExec_st{g->nodes};
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t g, void** nodes, size_t* count) {
  if (!g) return fail(cudaErrorInvalidValue, "cudaGraphGetNodes of a null graph");
  if (nodes)
    for (size_t i = 0; i < std::min(*count, g->nodes.size()); ++i) nodes[i] = &g->nodes[i];
  *count = g->nodes.size();
  return cudaSuccess;
}
// In place when the topology is the same: as many nodes, of the same kinds, running the same
// kernels (CUDA also refuses a changed kernel function); only parameters may change.
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t g, cudaGraphExecUpdateResultInfo* info) {
  if (info) *info = cudaGraphExecUpdateResultInfo{cudaGraphExecUpdateSuccess, nullptr, nullptr};
  auto refuse_update = [&](cudaGraphExecUpdateResult r, const std::string& why) {
    if (info) info->result = r;
    return fail(cudaErrorGraphExecUpdateFailure, "cudaGraphExecUpdate: " + why);
  };
  if (g->nodes.size() != exec->nodes.size())
    return refuse_update(
        cudaGraphExecUpdateErrorTopologyChanged,
        std::to_string(g->nodes.size()) + " nodes instead of " + std::to_string(exec->nodes.size()));
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    if (g->nodes[i].kind != exec->nodes[i].kind)
      return refuse_update(cudaGraphExecUpdateErrorNodeTypeChanged,
                           "node " + std::to_string(i) + " changed type");
    if (g->nodes[i].name != exec->nodes[i].name)
      return refuse_update(
          cudaGraphExecUpdateErrorFunctionChanged,
          "node " + std::to_string(i) + " runs " + g->nodes[i].name + " instead of " + exec->nodes[i].name);
  }
  exec->nodes = g->nodes;
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch of a null graph");
  if (s && s->capturing)
    return fail(cudaErrorStreamCaptureUnsupported, "cudaGraphLaunch into a capture is not emulated");
  auto& c = simt::counters();
  ++c.graph_launches;
  c.graph_nodes += int64_t(exec->nodes.size());
  const uint64_t serial = simt::g_error_serial;
  for (const GraphNode& n : exec->nodes) {
    n.work();
    if (simt::g_error_serial != serial) return cudaPeekAtLastError();  // a failed node ends the replay
  }
  return cudaSuccess;
}

// For `gancu bench` in the emulated build (src/cli/bench.cpp): what a GPU would have seen so far.
extern "C" void gancu_simt_counters(long long* kernels, long long* library_calls, long long* graph_launches,
                                    long long* graph_nodes, long long* copies) {
  const simt::Counters& c = simt::counters();
  *kernels = c.kernel_launches;
  *library_calls = c.library_calls;
  *graph_launches = c.graph_launches;
  *graph_nodes = c.graph_nodes;
  *copies = c.memcpy_calls;
}
