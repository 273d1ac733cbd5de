// Fibers of the SIMT emulator: one per GPU thread of the running block, on stacks that are
// allocated once per OS thread and reused by every launch.
//
// The switch: on x86-64 a few instructions that save the callee-saved registers and the stack
// pointer (ucontext's swapcontext also saves the signal mask, a system call per switch, which was
// a quarter of the emulated tests' time); on other architectures ucontext (portable to every
// architecture glibc supports). Under AddressSanitizer
// the switches are announced (__sanitizer_start/finish_switch_fiber) so that ASan follows the
// stacks, and a reused stack is unpoisoned before a new thread starts on it.
#pragma once

#include <ucontext.h>

#include <cstddef>

namespace simt {

// A suspended execution context: the scheduler's or a fiber's.
#if defined(__x86_64__)
struct FiberContext {
  void* sp = nullptr;
};
#else
struct FiberContext {
  ucontext_t uc{};
};
#endif

class Fiber {
 public:
  Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  ~Fiber();

  // Prepares the fiber to run `entry` from the top of its stack when next switched to.
  void reset(void (*entry)());
  // From the scheduler (whose context is `from`) into this fiber, until it switches back.
  void enter(FiberContext* from);
  // From this fiber back to the scheduler. `dying`: the fiber will never be entered again
  // without a reset (ASan then forgets its fake stack).
  void leave(FiberContext* to, bool dying);
  // First thing a fiber's entry function calls (ASan bookkeeping of the switch that started it).
  void started();
  // The thread's kernel returned: every frame it pushed has popped (and unpoisoned its redzones),
  // so the next reset need not clear ASan's shadow of the stack.
  void finished_cleanly() { clean_ = true; }

 private:
  FiberContext ctx_{};
  char* stack_ = nullptr;  // mapping: a guard page, then the stack
  size_t mapped_ = 0;
  void* asan_fake_ = nullptr;
  const void* sched_bottom_ = nullptr;
  size_t sched_size_ = 0;
  bool clean_ = true;  // no ASan poison left on the stack (a fresh mapping has none)
};

}  // namespace simt
