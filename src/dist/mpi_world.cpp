// world() as an MPI job: the CPU backend's collectives are MPI's; on CUDA the gradients go
// through NCCL (kernels/nccl_comm.cu), whose unique id MPI hands from rank 0 to the others.
//
// Every blocking MPI call runs under a watchdog: a rank that waits longer than the time-out
// (another rank died or hangs) prints where it waited and ends the job. MPI errors return codes
// (MPI_ERRORS_RETURN) that become RuntimeErrors naming the call.
#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "dist/world_internal.h"
#include "gancu/check.h"
#include "gancu/exec.h"
#if GANCU_HAVE_NCCL
#include "nccl_comm.h"
#endif

namespace gancu {

namespace {

void check_mpi(int rc, const char* call, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  runtime_error(rank_prefix(), call, " (", what, ") failed: ", std::string(text, size_t(len)));
}

// Ends the process (hence, through mpirun, the job) when one blocking wait lasts too long.
class Watchdog {
 public:
  explicit Watchdog(const Communicator& comm) : comm_(comm), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void begin(const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    what_ = what;
    since_ = std::chrono::steady_clock::now();
    waiting_ = true;
  }
  void end() {
    std::lock_guard<std::mutex> lock(mutex_);
    waiting_ = false;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!quit_) {
      wake_.wait_for(lock, std::chrono::milliseconds(200));
      if (!waiting_) continue;
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
      if (waited < comm_.timeout()) continue;
      std::fprintf(stderr,
                   "gancu: %serror: waited %.1f s for the other ranks in %s (run.collective_timeout_s = %g); "
                   "another rank has failed or hangs. Ending the job.\n",
                   rank_prefix().c_str(), waited, what_, comm_.timeout());
      std::fflush(stderr);
      // Not MPI_Abort: this thread may not call MPI while the main thread is inside it. A rank
      // that exits without MPI_Finalize makes mpirun (and srun) end the others.
      std::_Exit(1);
    }
  }
  const Communicator& comm_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool quit_ = false, waiting_ = false;
  const char* what_ = "";
  std::chrono::steady_clock::time_point since_;
  std::thread thread_;  // last: starts after the fields it reads
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread", "start");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // The ranks that share this node's memory (and GPUs).
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_),
              "MPI_Comm_split_type", "node communicator");
    MPI_Comm_set_errhandler(node_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(node_, &local_rank_);
    MPI_Comm_size(node_, &local_size_);
    // Nodes: the ranks that are local rank 0.
    int leader = local_rank_ == 0 ? 1 : 0;
    check_mpi(MPI_Allreduce(&leader, &nodes_, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce", "nodes");
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    library_ = std::string(version, size_t(len));
    library_ = library_.substr(0, library_.find_first_of(",\n"));
    watchdog_ = std::make_unique<Watchdog>(*this);
  }
  ~MpiCommunicator() override {
    watchdog_.reset();
#if GANCU_HAVE_NCCL
    nccl_.reset();
#endif
    MPI_Comm_free(&node_);
    MPI_Finalize();
  }

  int rank() const override {
    return rank_;
  }
  int size() const override {
    return size_;
  }
  int local_rank() const override {
    return local_rank_;
  }
  int local_size() const override {
    return local_size_;
  }
  std::string describe() const override {
    return detail::concat("MPI (", library_, "), ", size_, size_ == 1 ? " rank" : " ranks", " on ", nodes_,
                          nodes_ == 1 ? " node" : " nodes");
  }

  void all_reduce_mean(const Exec& ex, float* data, int64_t n, const char* what) override {
    if (size_ == 1 || n == 0) return;
    if (on_device(ex, what)) {
#if GANCU_HAVE_NCCL
      nccl_all_reduce_mean(nccl(), ex, data, n, what);
#endif
      return;
    }
    sum_in_place(data, n, MPI_FLOAT, what);
    const float inv = 1.0f / float(size_);
    for (int64_t i = 0; i < n; ++i) data[i] *= inv;
  }
  void all_reduce_sum(const Exec& ex, double* data, int64_t n, const char* what) override {
    if (size_ == 1 || n == 0) return;
    if (on_device(ex, what)) {
#if GANCU_HAVE_NCCL
      nccl_all_reduce_sum(nccl(), ex, data, n, what);
#endif
      return;
    }
    sum_in_place(data, n, MPI_DOUBLE, what);
  }
  void all_reduce_sum_host(double* data, int n, const char* what) override {
    if (size_ == 1) return;
    sum_in_place(data, n, MPI_DOUBLE, what);
  }
  int all_reduce_max_host(int value, const char* what) override {
    if (size_ == 1) return value;
    WatchedWait w(*this, what);
    int out = value;
    check_mpi(MPI_Allreduce(&value, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce", what);
    return out;
  }
  void broadcast_string(std::string* s, const char* what) override {
    if (size_ == 1) return;
    WatchedWait w(*this, what);
    int len = int(s->size());
    check_mpi(MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast", what);
    s->resize(size_t(len));
    check_mpi(MPI_Bcast(s->data(), len, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast", what);
  }
  std::vector<std::string> gather_strings(const std::string& mine, const char* what) override {
    if (size_ == 1) return {mine};
    WatchedWait w(*this, what);
    const int len = int(mine.size());
    std::vector<int> lens(static_cast<size_t>(size_), 0), offsets(static_cast<size_t>(size_), 0);
    check_mpi(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather", what);
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[size_t(r)] = total;
      total += lens[size_t(r)];
    }
    std::string all(size_t(rank_ == 0 ? total : 0), '\0');
    check_mpi(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, 0,
                          MPI_COMM_WORLD),
              "MPI_Gatherv", what);
    std::vector<std::string> out;
    if (rank_ == 0)
      for (int r = 0; r < size_; ++r)
        out.push_back(all.substr(size_t(offsets[size_t(r)]), size_t(lens[size_t(r)])));
    return out;
  }
  void barrier(const char* what) override {
    if (size_ == 1) return;
    WatchedWait w(*this, what);
    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier", what);
  }
  double collective_seconds() const override {
    return collective_seconds_;
  }
  // Every blocking wait for the other ranks: watched for the time-out, and timed.
  void begin_wait(const char* what) override {
    watchdog_->begin(what);
    wait_start_ = std::chrono::steady_clock::now();
  }
  void end_wait() override {
    watchdog_->end();
    collective_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start_).count();
  }
  void prepare(const Exec& ex) override {
    if (size_ == 1 || !ex.on_cuda()) return;
#if GANCU_HAVE_NCCL
    (void)nccl();
#endif
  }
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
#if GANCU_HAVE_NCCL
  // Opened at the first CUDA collective; prepare() opens it before a CUDA graph is captured.
  NcclComm& nccl() {
    if (!nccl_)
      nccl_ = nccl_open(rank_, size_, [&](void* id, size_t bytes) {
        WatchedWait w(*this, "the NCCL unique id's broadcast");
        check_mpi(MPI_Bcast(id, int(bytes), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast", "NCCL unique id");
      });
    return *nccl_;
  }
#endif
  // The CUDA backend's collectives are NCCL's: true on CUDA (a RuntimeError in a build without
  // NCCL), false on the CPU.
  bool on_device(const Exec& ex, const char* what) {
    if (!ex.on_cuda()) return false;
#if !GANCU_HAVE_NCCL
    runtime_error(rank_prefix(), "all-reduce of ", what,
                  " on CUDA needs NCCL, and this gancu was built without it (kernels/FindCudnnNccl.cmake)");
#else
    (void)what;
#endif
    return true;
  }
  // In place: the sum over the ranks of n host values of `type`; MPI counts are ints, so large
  // buffers go in pieces.
  void sum_in_place(void* data, int64_t n, MPI_Datatype type, const char* what) {
    WatchedWait w(*this, what);
    int type_bytes = 0;
    MPI_Type_size(type, &type_bytes);
    constexpr int64_t kPiece = int64_t(1) << 30;
    for (int64_t at = 0; at < n; at += kPiece)
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + at * type_bytes,
                              int(std::min(kPiece, n - at)), type, MPI_SUM, MPI_COMM_WORLD),
                "MPI_Allreduce", what);
  }
  std::chrono::steady_clock::time_point wait_start_;
  double collective_seconds_ = 0;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, nodes_ = 1;
  MPI_Comm node_ = MPI_COMM_NULL;
  std::string library_;
  std::unique_ptr<Watchdog> watchdog_;
#if GANCU_HAVE_NCCL
  NcclCommPtr nccl_;
#endif
};

}  // namespace

WorldScope::WorldScope() {
  if (launched_by_mpi()) detail::set_world(std::make_unique<MpiCommunicator>());
}
WorldScope::~WorldScope() {
  detail::set_world(std::make_unique<Communicator>());
}

}  // namespace gancu
