// NCCL for the CUDA backend's all-reduces (src/dist/mpi_world.cpp creates it; MPI carries the
// unique id from rank 0 to the others, as nccl-tests and PyTorch do).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace gancu {

class Exec;

struct NcclComm;
struct NcclCommDeleter {
  void operator()(NcclComm* c) const;
};
using NcclCommPtr = std::unique_ptr<NcclComm, NcclCommDeleter>;

// One communicator over `size` ranks on the current CUDA device. `broadcast_id(bytes, n)` must
// give every rank rank 0's n bytes (a collective of the launcher's communicator).
NcclCommPtr nccl_open(int rank, int size, const std::function<void(void* bytes, size_t n)>& broadcast_id);

// In place: the mean over ranks of n floats of device memory, queued on ex's stream (no host
// synchronization, so that it can sit inside a captured CUDA graph). NCCL failures, including an
// asynchronous error of a peer, become RuntimeErrors naming `what`.
void nccl_all_reduce_mean(NcclComm& comm, const Exec& ex, float* data, int64_t n, const char* what);
// In place: the sum over ranks of n doubles of device memory (synchronized batch norm), likewise.
void nccl_all_reduce_sum(NcclComm& comm, const Exec& ex, double* data, int64_t n, const char* what);

}  // namespace gancu
