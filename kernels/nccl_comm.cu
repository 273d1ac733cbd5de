// The NCCL half of the data-parallel path. Compiled only where NCCL was found (GANCU_HAVE_NCCL);
// without it the MPI communicator refuses CUDA all-reduces with a message.
#if GANCU_HAVE_NCCL
#include <nccl.h>

#include "common.cuh"
#include "cuda_context.h"
#include "nccl_comm.h"

namespace gancu {

struct NcclComm {
  ncclComm_t comm = nullptr;
  int rank = 0;
};

void NcclCommDeleter::operator()(NcclComm* c) const {
  if (c->comm) ncclCommDestroy(c->comm);
  delete c;
}

namespace {
void check_nccl(ncclResult_t rc, const char* call, const char* what) {
  if (rc == ncclSuccess) return;
  runtime_error(call, " (", what, ") failed: ", ncclGetErrorString(rc));
}
}  // namespace

NcclCommPtr nccl_open(int rank, int size, const std::function<void(void*, size_t)>& broadcast_id) {
  ncclUniqueId id;
  if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", "the job's communicator");
  broadcast_id(&id, sizeof id);
  NcclCommPtr c(new NcclComm);
  c->rank = rank;
  check_nccl(ncclCommInitRank(&c->comm, size, id, rank), "ncclCommInitRank", "the job's communicator");
  return c;
}

namespace {
// A peer's failure shows up here as an asynchronous error instead of a hang in the next call.
void check_async(NcclComm& c, const char* what) {
  ncclResult_t async = ncclSuccess;
  check_nccl(ncclCommGetAsyncError(c.comm, &async), "ncclCommGetAsyncError", what);
  check_nccl(async, "an earlier NCCL operation", what);
}
}  // namespace

void nccl_all_reduce_mean(NcclComm& c, const Exec& ex, float* data, int64_t n, const char* what) {
  check_async(c, what);
  check_nccl(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclAvg, c.comm, cuda::stream_of(ex)),
             "ncclAllReduce", what);
}

void nccl_all_reduce_sum(NcclComm& c, const Exec& ex, double* data, int64_t n, const char* what) {
  check_async(c, what);
  check_nccl(ncclAllReduce(data, data, size_t(n), ncclDouble, ncclSum, c.comm, cuda::stream_of(ex)),
             "ncclAllReduce", what);
}

}  // namespace gancu
#endif  // GANCU_HAVE_NCCL
