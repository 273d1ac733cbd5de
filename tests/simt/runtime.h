// Internal interface between the SIMT emulator's parts: the scheduler (simt.cpp), the runtime API
// (cuda_api.cpp: errors, streams, graphs, memory) and the library stand-ins (cublas.cpp, cudnn.cpp).
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace simt {

// Records `e` as the thread's last error (cudaGetLastError returns and clears it); `detail` is
// what cudaGetErrorString adds for it and what is printed to stderr.
void set_error(cudaError_t e, const std::string& detail);

// Where work enqueued on `stream` goes. Returns:
//   Run      - no capture: run it now;
//   Recorded - the stream is being captured: `work` was appended to the graph as a node;
//   Refused  - the call is not allowed here (error already set).
enum class Enqueue { Run, Recorded, Refused };
enum class NodeKind { Kernel, Memcpy, Memset, Library };
Enqueue enqueue(void* stream, NodeKind kind, const std::string& name, const std::function<void()>& work);

// Runs one grid now; false (and the error set) when a block failed.
bool execute_grid(const LaunchSpec& spec, const std::function<void()>& body);

}  // namespace simt
