// Errors and status checks: the one place where gancu turns a failed condition or a failed
// library call into an exception with a message that says what, where and why.
//
// Exit codes follow the kind of error (see src/main.cpp): usage and config errors exit 2,
// everything else (bad data, I/O, CUDA failures, divergence) exits 1.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gancu {

// A flag, option or config value the user gave is wrong. Exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Something went wrong while running: a file is missing or corrupt, a device call failed,
// training diverged. Exit code 1.
struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream s;
  ((s << args), ...);
  return s.str();
}
[[noreturn]] void throw_check_failure(const char* file, int line, const char* what, const std::string& msg);
// An op or allocation asked for the CUDA backend in a build without it.
[[noreturn]] void no_cuda_backend(const char* what);
// A double-precision op asked for the CUDA backend, which implements float32 only.
[[noreturn]] void no_double_on_cuda(const char* op);
}  // namespace detail

template <class... Args>
[[noreturn]] void usage_error(const Args&... args) {
  throw UsageError(detail::concat(args...));
}

template <class... Args>
[[noreturn]] void runtime_error(const Args&... args) {
  throw RuntimeError(detail::concat(args...));
}

}  // namespace gancu

// Internal invariant: a failure is a bug in gancu, reported with file:line.
#define GANCU_CHECK(cond, ...)                                                                               \
  do {                                                                                                       \
    if (!(cond))                                                                                             \
      ::gancu::detail::throw_check_failure(__FILE__, __LINE__, #cond, ::gancu::detail::concat(__VA_ARGS__)); \
  } while (0)

// Library status checks. The expansion site includes the library's header; this file does not,
// so that host code without CUDA can include it.
#define GANCU_CUDA_CHECK(call)                                                                            \
  do {                                                                                                    \
    cudaError_t gancu_status_ = (call);                                                                   \
    if (gancu_status_ != cudaSuccess)                                                                     \
      ::gancu::detail::throw_check_failure(__FILE__, __LINE__, #call, cudaGetErrorString(gancu_status_)); \
  } while (0)

#define GANCU_CUBLAS_CHECK(call)                                                                             \
  do {                                                                                                       \
    cublasStatus_t gancu_status_ = (call);                                                                   \
    if (gancu_status_ != CUBLAS_STATUS_SUCCESS)                                                              \
      ::gancu::detail::throw_check_failure(__FILE__, __LINE__, #call, cublasGetStatusString(gancu_status_)); \
  } while (0)

#define GANCU_CUDNN_CHECK(call)                                                                            \
  do {                                                                                                     \
    cudnnStatus_t gancu_status_ = (call);                                                                  \
    if (gancu_status_ != CUDNN_STATUS_SUCCESS)                                                             \
      ::gancu::detail::throw_check_failure(__FILE__, __LINE__, #call, cudnnGetErrorString(gancu_status_)); \
  } while (0)

#define GANCU_NCCL_CHECK(call)                                                                            \
  do {                                                                                                    \
    ncclResult_t gancu_status_ = (call);                                                                  \
    if (gancu_status_ != ncclSuccess)                                                                     \
      ::gancu::detail::throw_check_failure(__FILE__, __LINE__, #call, ncclGetErrorString(gancu_status_)); \
  } while (0)

// After a kernel launch: catches bad launch configurations at the launch site.
#define GANCU_CUDA_CHECK_LAUNCH() GANCU_CUDA_CHECK(cudaGetLastError())
