// The processes of a data-parallel run (DESIGN.md, "Data parallelism"; docs/data_parallel.md).
//
// gancu does not start processes itself: `mpirun -np N gancu train ...` (or `srun`) starts N
// copies, and MPI tells each its rank. world() is then an MPI communicator; in a process started
// any other way it is the one-process communicator, and every call below is a no-op, so that the
// trainer has one code path.
//
// Collectives block until every rank has joined them. A rank that is gone or stuck would make
// the others wait forever, so each blocking collective has a time-out: when it passes, the rank
// says which collective it waited in and for how long, and ends the job (MPI_Abort).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gancu {

class Exec;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // The rank among the processes on this node (a GPU rank's device), and how many there are.
  virtual int local_rank() const { return 0; }
  virtual int local_size() const { return 1; }
  // "single process", or the library, ranks and nodes ("MPI (Open MPI v4.1.4), 2 ranks on 1 node").
  virtual std::string describe() const { return "single process"; }

  // In place: data[i] = the mean over ranks of data[i], for n floats in the memory of `ex`'s
  // backend (MPI's sum, then a scale, on the CPU; NCCL's average on CUDA, queued on ex's stream).
  // `what` names the buffer in messages.
  virtual void all_reduce_mean(const Exec& ex, float* data, int64_t n, const char* what);
  // In place: the sum over ranks of n doubles in backend memory (synchronized batch norm's sums).
  virtual void all_reduce_sum(const Exec& ex, double* data, int64_t n, const char* what);
  // The same for host doubles (metrics, flags), and a maximum of host integers (a stop request
  // that reached some ranks only).
  virtual void all_reduce_sum_host(double* data, int n, const char* what);
  virtual int all_reduce_max_host(int value, const char* what) {
    (void)what;
    return value;
  }
  // Rank 0's string on every rank (the run folder's default name, which holds a time stamp).
  virtual void broadcast_string(std::string* s, const char* what) {
    (void)s;
    (void)what;
  }
  // Every rank's string, in rank order, on rank 0 (empty elsewhere).
  virtual std::vector<std::string> gather_strings(const std::string& mine, const char* what) {
    (void)what;
    return {mine};
  }
  // Sets up what the collectives on `ex`'s backend need (NCCL's communicator), so that none is
  // created inside a captured CUDA graph. Every rank calls it, at the same point.
  virtual void prepare(const Exec& ex) { (void)ex; }
  // Waits for every rank.
  virtual void barrier(const char* what) { (void)what; }
  // Ends every rank of the job with this exit code, after this rank's message was printed.
  [[noreturn]] virtual void abort(int code);

  // A wait for the other ranks while it lives: every blocking MPI collective, and the host
  // synchronizing with a stream whose NCCL all-reduce needs every rank. Watched by the time-out
  // and counted in collective_seconds().
  class WatchedWait {
   public:
    WatchedWait(Communicator& c, const char* what) : c_(c) { c_.begin_wait(what); }
    ~WatchedWait() { c_.end_wait(); }
    WatchedWait(const WatchedWait&) = delete;
    WatchedWait& operator=(const WatchedWait&) = delete;

   private:
    Communicator& c_;
  };

  // Seconds this rank has spent in WatchedWaits so far (waiting for slower ranks included):
  // gancu bench's all-reduce share. On CUDA, NCCL's all-reduces are queued on the stream and
  // count only where the host waits for them.
  virtual double collective_seconds() const { return 0; }

  // Seconds a blocking collective may wait for the other ranks (run.collective_timeout_s).
  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }

 protected:
  virtual void begin_wait(const char* what) { (void)what; }
  virtual void end_wait() {}
  double timeout_s_ = 600;
};

// The communicator of this process. Before init_world() (and in tests) the one-process one.
Communicator& world();

// Joins the MPI job this process was started in, if any (mpirun, srun: found from their
// environment variables), and makes it world(); otherwise leaves world() single. A RuntimeError
// when started by mpirun in a build without MPI. Call once, first thing in main(); the returned
// object ends MPI when it goes out of scope.
class WorldScope {
 public:
  WorldScope();
  ~WorldScope();
  WorldScope(const WorldScope&) = delete;
  WorldScope& operator=(const WorldScope&) = delete;
};

// True when the environment says this process is one rank of an MPI (or Slurm) job.
bool launched_by_mpi();

// "rank 1 of 4: " in a job of several ranks, "" otherwise: the prefix of a rank's own messages.
std::string rank_prefix();

// The hook of synchronized batch norm (model.sync_bn; op_types.h): world()'s sums, its rank count.
struct BatchNormSync;
const BatchNormSync* batchnorm_sync_over_world();

// A rank's part of the global batch: samples [first, first + batch) of global_batch.
struct Shard {
  int first = 0;
  int batch = 0;
  int global_batch = 0;
  bool whole() const { return batch == global_batch; }
};
// The shard of world()'s rank. A UsageError when global_batch is not a multiple of the ranks.
Shard shard_of(int global_batch);

// The seed of the draws that are per rank (dropout masks, gradient-penalty points): `seed` itself
// on rank 0, so that one process draws what it always did, and a different key on every other rank.
uint64_t rank_seed(uint64_t seed, int rank);

}  // namespace gancu
