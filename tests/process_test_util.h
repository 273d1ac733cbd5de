// A gancu process that a test starts in the background, signals, kills and waits for: the
// reliability tests need a trainer that is running while they act on it.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

namespace gancu::testing_process {

class Child {
 public:
  // Runs `GANCU_BINARY args` with stdout and stderr into `log_path`; the shell execs the binary,
  // so pid() is gancu's own pid.
  Child(const std::string& args, const std::string& log_path) : log_(log_path) {
    const std::string cmd = "exec " + std::string(GANCU_BINARY) + " " + args + " >'" + log_path + "' 2>&1";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  // Waits for the process to end: its exit status, or 128 + the signal that ended it (as a shell
  // reports it). -1 when it is still running after `timeout_s`.
  int wait(double timeout_s = 120) {
    if (reaped_) return status_;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        signaled_ = WIFSIGNALED(st);
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
      }
      if (r < 0 || std::chrono::steady_clock::now() > until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  bool ended_by_signal() const { return signaled_; }

  std::string log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool reaped_ = false, signaled_ = false;
  int status_ = -1;
};

// Polls `ready` every few milliseconds; false when it is still false after `timeout_s`.
inline bool wait_until(const std::function<bool()>& ready, double timeout_s = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace gancu::testing_process
