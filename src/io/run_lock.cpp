// The run folder's lock. See include/gancu/run_lock.h.
#include "gancu/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gancu/check.h"
#include "gancu/fileutil.h"

namespace gancu {

namespace {

// The pid the holder wrote into the lock file, or "" (it may not have written it yet).
std::string read_holder(int fd) {
  char buf[32] = {0};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string pid(buf, size_t(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : "";
}

bool is_temp_name(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0 || at + 5 == name.size()) return false;
  return name.find_first_not_of("0123456789", at + 5) == std::string::npos;
}

// True when `dir` holds nothing but the lock file and empty checkpoints/ and samples/ folders:
// what a trainer refused before its run began leaves behind.
bool holds_only_the_lock(const std::string& dir) {
  const auto names = dir_entries(dir);
  if (!names) return false;
  for (const std::string& name : *names) {
    if (name == "gancu.lock") continue;
    if ((name == "checkpoints" || name == "samples") && dir_is_empty(dir + "/" + name)) continue;
    return false;
  }
  return true;
}

}  // namespace

std::string run_lock_path(const std::string& run_dir) {
  return run_dir + "/gancu.lock";
}

RunLock::RunLock(const std::string& run_dir) : dir_(run_dir), path_(run_lock_path(run_dir)) {
  created_ = !dir_exists(run_dir);
  make_dirs(run_dir);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) runtime_error(path_, ": cannot open the run folder's lock: ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = err == EWOULDBLOCK ? read_holder(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) runtime_error(path_, ": cannot lock the run folder: ", std::strerror(err));
    runtime_error(run_dir, " is in use by another gancu train (pid ",
                  holder.empty() ? std::string("unknown") : holder, ", holding ", path_,
                  "); wait for it to end, stop it, or choose another --out");
  }
  // Ours now: record our pid for the message above (best effort: the lock itself is what counts).
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // A full disk can refuse even these few bytes; the lock still holds.
  }
  for (const char* sub : {"", "/checkpoints", "/samples"}) remove_stale_temp_files(run_dir + sub);
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // A folder this trainer created and left empty (a config error found after the lock, a data set
  // that would not load) goes again, removed while the lock is still ours: no half-made run
  // folder stays behind to be mistaken for a run.
  if (created_ && holds_only_the_lock(dir_)) {
    for (const char* sub : {"/checkpoints", "/samples"}) ::rmdir((dir_ + sub).c_str());
    std::remove(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  ::close(fd_);  // releases the flock
}

int remove_stale_temp_files(const std::string& dir) {
  int removed = 0;
  for (const std::string& name : dir_entries(dir).value_or(std::vector<std::string>{}))
    if (is_temp_name(name)) removed += std::remove((dir + "/" + name).c_str()) == 0;
  return removed;
}

}  // namespace gancu
