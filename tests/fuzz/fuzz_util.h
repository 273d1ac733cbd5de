// What the fuzzers share: the fuzzer's bytes as a file that gancu's path-based readers can open,
// and the rule every harness checks.
//
// The rule: for any input, a reader returns or throws a UsageError or RuntimeError with a
// message. An InternalError (a GANCU_CHECK that failed), any other exception, a crash, a hang, a
// leak or a sanitizer report is a finding: the harness aborts and libFuzzer saves the input.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gancu/check.h"
#include "gancu/internal_error.h"

namespace gancu::fuzz {

// An anonymous in-memory file (memfd) holding `size` bytes, opened by name through
// /proc/self/fd/N: each reader call opens it afresh, as it would a file on disk.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("gancu-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += size_t(n);
    }
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

// Runs `read`; gancu's own errors for bad input are the expected outcome.
template <class F>
void expect_clean(F&& read) {
  try {
    read();
  } catch (const InternalError& e) {
    std::fprintf(stderr, "fuzz: an internal check failed on this input: %s\n", e.what());
    std::abort();
  } catch (const UsageError& e) {
    if (!*e.what()) std::abort();  // an error without a message
  } catch (const RuntimeError& e) {
    if (!*e.what()) std::abort();
  }
  // Anything else (std::bad_alloc, std::out_of_range, a JSON or TOML library's exception) leaves
  // the harness: libFuzzer reports the uncaught exception as a crash.
}

}  // namespace gancu::fuzz
