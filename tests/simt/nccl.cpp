// The NCCL stand-in (include/nccl.h) on MPI. Compiled where the build found MPI.
#if GANCU_HAVE_MPI
#include <mpi.h>
#include <nccl.h>

#include <cstring>
#include <string>

#include "runtime.h"

struct ncclComm {
  int rank = 0, nranks = 1;
};

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess:
      return "no error";
    case ncclInvalidArgument:
      return "invalid argument (the emulator's NCCL: float or double, sum or average)";
    case ncclInvalidUsage:
      return "invalid usage (the emulator's NCCL needs MPI_Init: run under mpirun)";
    case ncclSystemError:
      return "system error (MPI_Allreduce failed)";
    default:
      return "internal error";
  }
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id, 0, sizeof *id);
  std::strcpy(id->internal, "simt-mpi-world");
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  int initialized = 0, size = 0, me = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return ncclInvalidUsage;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  // The id must be rank 0's (broadcast by the caller), and the job must be MPI_COMM_WORLD.
  if (std::strcmp(id.internal, "simt-mpi-world") != 0 || size != nranks || me != rank)
    return ncclInvalidArgument;
  *comm = new ncclComm{rank, nranks};
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* async_error) {
  *async_error = ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  if (!comm || (type != ncclFloat && type != ncclDouble) || (op != ncclSum && op != ncclAvg))
    return ncclInvalidArgument;
  const int nranks = comm->nranks;
  const auto work = [=] {
    const MPI_Datatype mt = type == ncclFloat ? MPI_FLOAT : MPI_DOUBLE;
    const void* in = send == recv ? MPI_IN_PLACE : send;
    if (MPI_Allreduce(in, recv, int(count), mt, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
      simt::set_error(cudaErrorIllegalState, "ncclAllReduce: MPI_Allreduce failed");
    if (op == ncclAvg) {
      if (type == ncclFloat)
        for (size_t i = 0; i < count; ++i) static_cast<float*>(recv)[i] /= float(nranks);
      else
        for (size_t i = 0; i < count; ++i) static_cast<double*>(recv)[i] /= double(nranks);
    }
  };
  return simt::enqueue_library_call(stream, "ncclAllReduce", work) ? ncclSuccess : ncclSystemError;
}
#endif  // GANCU_HAVE_MPI
