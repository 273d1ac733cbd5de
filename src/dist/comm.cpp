// The one-process communicator, world(), and what every rank computes alike (shards, seeds).
#include "gancu/comm.h"

#include <cstdlib>
#include <cstring>
#include <memory>

#include "dist/world_internal.h"
#include "gancu/check.h"
#include "gancu/op_types.h"

namespace gancu {

void Communicator::all_reduce_mean(const Exec&, float*, int64_t, const char*) {}
void Communicator::all_reduce_sum_host(double*, int, const char*) {}
void Communicator::all_reduce_sum(const Exec&, double*, int64_t, const char*) {}
void Communicator::abort(int code) {
  std::exit(code);
}

namespace {
std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> w = std::make_unique<Communicator>();
  return w;
}
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}
}  // namespace

Communicator& world() {
  return *world_slot();
}

void detail::set_world(std::unique_ptr<Communicator> comm) {
  world_slot() = std::move(comm);
}

bool launched_by_mpi() {
  // Open MPI's mpirun; MPICH's hydra and Slurm's PMI-2; PMIx (srun --mpi=pmix, Open MPI 4 and later).
  if (env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMIX_RANK")) return true;
  // srun without an MPI plugin of its own still says how many tasks it started.
  const char* tasks = std::getenv("SLURM_NTASKS");
  return env_set("SLURM_PROCID") && env_set("SLURM_STEP_ID") && tasks && std::atoi(tasks) > 1;
}

std::string rank_prefix() {
  const Communicator& w = world();
  if (w.size() <= 1) return "";
  return detail::concat("rank ", w.rank(), " of ", w.size(), ": ");
}

const BatchNormSync* batchnorm_sync_over_world() {
  static BatchNormSync sync;
  sync.all_reduce_sum = [](const Exec& ex, double* data, int64_t n) {
    world().all_reduce_sum(ex, data, n, "the synchronized batch-norm statistics");
  };
  sync.ranks = world().size();
  return &sync;
}

Shard shard_of(int global_batch) {
  const Communicator& w = world();
  if (global_batch % w.size() != 0)
    usage_error("train.batch: the global batch ", global_batch, " does not split over ", w.size(),
                " ranks; choose a multiple of ", w.size());
  const int batch = global_batch / w.size();
  return Shard{w.rank() * batch, batch, global_batch};
}

uint64_t rank_seed(uint64_t seed, int rank) {
  // An odd multiplier (2^64 / golden ratio) maps distinct ranks to distinct, far-apart keys.
  return rank == 0 ? seed : seed ^ (uint64_t(rank) * 0x9E3779B97F4A7C15ull);
}

#if !GANCU_HAVE_MPI
WorldScope::WorldScope() {
  if (launched_by_mpi())
    runtime_error(
        "this process was started by mpirun or srun, but this gancu was built without MPI; install "
        "libopenmpi-dev (tools/setup.sh) and rebuild");
}
WorldScope::~WorldScope() = default;
#endif

}  // namespace gancu
