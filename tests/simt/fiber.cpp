// Fibers of the SIMT emulator (see fiber.h).
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "asan.h"

#if defined(__x86_64__)
// simt_switch(save, to): saves the callee-saved registers on the current stack, stores the stack
// pointer in *save, and resumes the context whose stack pointer is `to` (System V ABI: everything
// else is caller-saved, so a function call boundary needs nothing more).
extern "C" void simt_switch(void** save, void* to);
__asm__(
    ".text\n"
    ".globl simt_switch\n"
    ".type simt_switch,@function\n"
    "simt_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size simt_switch,.-simt_switch\n"
    ".section .note.GNU-stack,\"\",@progbits\n"
    ".text\n");
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
  // A thread abandoned mid-kernel (a failed launch, or unwound by its exception) leaves its
  // frames' redzones behind. Only then: clearing the shadow of the whole stack at every thread
  // start was a quarter of the emulated suite's time under ASan.
  if (!clean_) ASAN_UNPOISON_MEMORY_REGION(stack_ + page, kStackBytes);
#endif
  clean_ = false;
#if defined(__x86_64__)
  // The first switch "returns" into entry with the stack as a call would leave it: six zeroed
  // registers for simt_switch to pop, entry's address for its ret, then a null return address
  // (entry never returns), 16-byte aligned as the ABI wants at a call.
  uintptr_t top = reinterpret_cast<uintptr_t>(stack_ + mapped_) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;
  *--sp = reinterpret_cast<void*>(entry);
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  ctx_.sp = sp;
#else
  if (getcontext(&ctx_.uc) != 0) fatal("getcontext failed");
  ctx_.uc.uc_stack.ss_sp = stack_ + page;
  ctx_.uc.uc_stack.ss_size = kStackBytes;
  ctx_.uc.uc_link = nullptr;
  makecontext(&ctx_.uc, entry, 0);
#endif
}

namespace {
void switch_to(FiberContext* save, FiberContext* to) {
#if defined(__x86_64__)
  simt_switch(&save->sp, to->sp);
#else
  if (swapcontext(&save->uc, &to->uc) != 0) fatal("swapcontext failed");
#endif
}
}  // namespace

void Fiber::enter(FiberContext* from) {
#if SIMT_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_ + mapped_ - kStackBytes, kStackBytes);
  switch_to(from, &ctx_);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  switch_to(from, &ctx_);
#endif
}

void Fiber::started() {
#if SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &sched_bottom_, &sched_size_);
#endif
}

void Fiber::leave(FiberContext* to, bool dying) {
#if SIMT_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &asan_fake_, sched_bottom_, sched_size_);
  switch_to(&ctx_, to);
  __sanitizer_finish_switch_fiber(asan_fake_, &sched_bottom_, &sched_size_);
#else
  (void)dying;
  switch_to(&ctx_, to);
#endif
}

}  // namespace simt
