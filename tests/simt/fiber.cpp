// Fibers of the SIMT emulator (see fiber.h).
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#ifndef SIMT_ASAN
#define SIMT_ASAN 0
#endif

#if SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace simt {

namespace {
// Kernels keep a few scalars and small arrays per thread; ASan's redzones need more room.
constexpr size_t kStackBytes = SIMT_ASAN ? (size_t(512) << 10) : (size_t(128) << 10);

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "simt: %s\n", what);
  std::abort();
}
}  // namespace

Fiber::~Fiber() {
  if (stack_) munmap(stack_, mapped_);
}

void Fiber::reset(void (*entry)()) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  if (!stack_) {
    mapped_ = kStackBytes + page;
    void* m =
        mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) fatal("cannot map a fiber stack");
    stack_ = static_cast<char*>(m);
    // The lowest page catches a kernel that overflows its stack.
    if (mprotect(stack_, page, PROT_NONE) != 0) fatal("cannot protect a fiber stack's guard page");
  }
#if SIMT_ASAN
  // A thread abandoned mid-kernel (a failed launch) leaves its frames' redzones behind.
  ASAN_UNPOISON_MEMORY_REGION(stack_ + page, kStackBytes);
#endif
  if (getcontext(&ctx_) != 0) fatal("getcontext failed");
  ctx_.uc_stack.ss_sp = stack_ + page;
  ctx_.uc_stack.ss_size = kStackBytes;
  ctx_.uc_link = nullptr;
  makecontext(&ctx_, entry, 0);
}

void Fiber::enter(ucontext_t* from) {
#if SIMT_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_ + mapped_ - kStackBytes, kStackBytes);
  if (swapcontext(from, &ctx_) != 0) fatal("swapcontext failed");
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  if (swapcontext(from, &ctx_) != 0) fatal("swapcontext failed");
#endif
}

void Fiber::started() {
#if SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &sched_bottom_, &sched_size_);
#endif
}

void Fiber::leave(ucontext_t* to, bool dying) {
#if SIMT_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &asan_fake_, sched_bottom_, sched_size_);
  if (swapcontext(&ctx_, to) != 0) fatal("swapcontext failed");
  __sanitizer_finish_switch_fiber(asan_fake_, &sched_bottom_, &sched_size_);
#else
  (void)dying;
  if (swapcontext(&ctx_, to) != 0) fatal("swapcontext failed");
#endif
}

}  // namespace simt
