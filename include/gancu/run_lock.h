// One writer per run folder.
//
// `gancu train` holds an exclusive flock(2) on RUN/gancu.lock for as long as it runs. A second
// trainer on the same folder is refused with a message that names the holder's pid, instead of
// both writing into one metrics.jsonl and two TensorBoard files. The kernel releases the lock when
// the holder's process ends in any way (exit, crash, SIGKILL), so `--resume` after a crash never
// meets a stale lock; the file itself stays and only records the last holder's pid. A folder that
// the lock created and that holds nothing else when the lock is released (the trainer was refused
// before its run began) is removed again.
#pragma once

#include <string>

namespace gancu {

class RunLock {
 public:
  // Creates `run_dir` if needed and takes its lock. Held by another process: RuntimeError naming
  // the folder and the holder's pid. Then removes the temporary files (NAME.tmp.PID) that a killed
  // writer left in the folder, in checkpoints/ and in samples/: nobody else can be writing them.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
  bool created_ = false;  // the folder did not exist before this lock
};

// The lock file of a run folder.
std::string run_lock_path(const std::string& run_dir);

// Removes the files named *.tmp.<digits> directly inside `dir` (none when `dir` is missing) and
// returns how many it removed. Only for folders whose writers are known to be gone.
int remove_stale_temp_files(const std::string& dir);

}  // namespace gancu
