// Bytes of device memory that the project's own kernels read and write, counted as a GPU's
// memory traffic would be (before caches): every load and store of the emulated kernel code.
//
// How: clang instruments the rewritten kernel files with -fsanitize-coverage=trace-loads,
// trace-stores (CMakeLists.txt: with GANCU_SIMT_COUNT_BYTES=ON; the emulator's test kernels in
// every clang build), which calls the hooks below with the address
// of each load and store. A hook counts the access when a GPU thread is running and the address
// lies in a cudaMalloc allocation: shared memory, a fiber's stack (locals, spilled registers) and
// the launch's copy of the kernel arguments are not device memory, and host code in the same
// files runs outside any GPU thread. The allocations are snapshotted at each launch (they cannot
// change while a grid runs: cudaMalloc is a host call) into a sorted table for a binary search.
// Counting is off until gancu_simt_count_bytes(1): the hooks then cost one test per access.
#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "simt/simt.h"

namespace simt {

// [begin, end) of each device allocation, sorted (cuda_api.cpp).
void device_ranges(std::vector<std::pair<uintptr_t, uintptr_t>>* out);

namespace {
struct KernelTraffic {
  int64_t launches = 0, read = 0, written = 0;
};
std::map<std::string, KernelTraffic> g_by_kernel;  // since counting was last turned on
thread_local int64_t t_grid_read = 0, t_grid_written = 0;
bool g_enabled = false;
thread_local bool t_counting = false;  // a grid runs on this OS thread and counting is on
thread_local std::vector<std::pair<uintptr_t, uintptr_t>> t_ranges;

inline void count(const void* p, int64_t bytes, bool store) {
  if (!t_counting || detail::current == nullptr) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = std::upper_bound(t_ranges.begin(), t_ranges.end(), std::make_pair(a, UINTPTR_MAX));
  if (it == t_ranges.begin() || a >= (--it)->second) return;
  (store ? t_grid_written : t_grid_read) += bytes;
}
}  // namespace

bool bytes_counted_by_this_build() {
#if GANCU_SIMT_COUNTS_BYTES
  return true;
#else
  return false;
#endif
}

void begin_grid_access_count() {
  if (!g_enabled) return;
  device_ranges(&t_ranges);
  t_grid_read = t_grid_written = 0;
  t_counting = true;
}

void end_grid_access_count(const char* kernel) {
  if (!t_counting) return;
  t_counting = false;
  Counters& c = counters();
  c.bytes_read += t_grid_read;
  c.bytes_written += t_grid_written;
  KernelTraffic& k = g_by_kernel[kernel];
  ++k.launches;
  k.read += t_grid_read;
  k.written += t_grid_written;
}

}  // namespace simt

extern "C" {
// Turns counting on or off; returns 1 when this build counts at all (clang's instrumentation).
int gancu_simt_count_bytes(int on) {
  if (on && !simt::g_enabled) simt::g_by_kernel.clear();
  simt::g_enabled = on != 0;
  return simt::bytes_counted_by_this_build() ? 1 : 0;
}

// Running totals of the bytes counted so far.
void gancu_simt_bytes(long long* read, long long* written) {
  *read = simt::counters().bytes_read;
  *written = simt::counters().bytes_written;
}

// The `top` kernels by bytes moved since counting was turned on, one per line: name, launches,
// bytes read, bytes written (valid until the next call).
const char* gancu_simt_kernel_traffic(int top) {
  std::vector<std::pair<std::string, simt::KernelTraffic>> v(simt::g_by_kernel.begin(),
                                                             simt::g_by_kernel.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second.read + a.second.written > b.second.read + b.second.written;
  });
  static std::string text;
  std::ostringstream s;
  for (size_t i = 0; i < v.size() && int(i) < top; ++i)
    s << v[i].first << " " << v[i].second.launches << " " << v[i].second.read << " " << v[i].second.written
      << "\n";
  text = s.str();
  return text.c_str();
}

// The hooks of -fsanitize-coverage=trace-loads,trace-stores (one per access width).
#define SIMT_ACCESS_HOOKS(n, type)         \
  void __sanitizer_cov_load##n(type* p) {  \
    simt::count(p, n, false);              \
  }                                        \
  void __sanitizer_cov_store##n(type* p) { \
    simt::count(p, n, true);               \
  }
SIMT_ACCESS_HOOKS(1, uint8_t)
SIMT_ACCESS_HOOKS(2, uint16_t)
SIMT_ACCESS_HOOKS(4, uint32_t)
SIMT_ACCESS_HOOKS(8, uint64_t)
SIMT_ACCESS_HOOKS(16, __int128)
#undef SIMT_ACCESS_HOOKS
}
