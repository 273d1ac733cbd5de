// Running external tools. See include/gancu/subprocess.h.
//
// One loop with poll() writes the child's stdin and drains its stdout and stderr at the same
// time: writing all input first could deadlock against a child that fills its output pipe before
// reading the rest of its input. SIGPIPE (a child that exits without reading all its input) is
// blocked in this thread while writing, so it shows up as EPIPE instead of killing gancu.
#include "gancu/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gancu/check.h"

extern char** environ;

namespace gancu {

namespace {

bool is_executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// A pipe whose ends are closed on destruction; both ends close-on-exec, so that only the
// descriptors the spawn's file actions place on 0, 1 and 2 reach the child.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) runtime_error("cannot create a pipe: ", std::strerror(errno));
  }
  ~Pipe() {
    close_end(0);
    close_end(1);
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

// Blocks SIGPIPE in this thread for the object's lifetime, and discards a SIGPIPE that arrived
// meanwhile (one that was pending before is left alone).
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old_);
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, SIGPIPE);
        const timespec zero = {0, 0};
        while (sigtimedwait(&only, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace

std::string find_executable(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return is_executable_file(name) ? name : "";
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = end > start ? path.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

std::string ProcessResult::status_text() const {
  if (signal != 0) return detail::concat("killed by signal ", signal, " (", strsignal(signal), ")");
  return detail::concat("exit status ", exit_code);
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input) {
  GANCU_CHECK(!argv.empty() && !argv[0].empty(), "run_process without a program");
  const std::string program = find_executable(argv[0]);
  if (program.empty())
    runtime_error("cannot run ", argv[0], ": ",
                  argv[0].find('/') != std::string::npos ? "no such executable file" : "not found in $PATH");

  Pipe in, out, err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) runtime_error("cannot run ", program, ": ", std::strerror(rc));
  in.close_end(0);
  out.close_end(1);
  err.close_end(1);

  ProcessResult result;
  {
    SigpipeBlock block_sigpipe;
    size_t written = 0;
    if (input.empty()) in.close_end(1);
    if (in.fd[1] >= 0) ::fcntl(in.fd[1], F_SETFL, ::fcntl(in.fd[1], F_GETFL) | O_NONBLOCK);
    char buf[1 << 16];
    while (in.fd[1] >= 0 || out.fd[0] >= 0 || err.fd[0] >= 0) {
      pollfd fds[3];
      int n = 0;
      if (in.fd[1] >= 0) fds[n++] = {in.fd[1], POLLOUT, 0};
      if (out.fd[0] >= 0) fds[n++] = {out.fd[0], POLLIN, 0};
      if (err.fd[0] >= 0) fds[n++] = {err.fd[0], POLLIN, 0};
      if (::poll(fds, n, -1) < 0) {
        if (errno == EINTR) continue;
        break;  // cannot happen with valid descriptors; wait for the child below
      }
      for (int i = 0; i < n; ++i) {
        if (fds[i].revents == 0) continue;
        if (fds[i].fd == in.fd[1]) {
          const ssize_t w = ::write(in.fd[1], input.data() + written, input.size() - written);
          if (w > 0) written += size_t(w);
          // EPIPE: the child stopped reading; it will say why on stderr or in its exit status.
          if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in.close_end(1);
        } else {
          const bool is_out = fds[i].fd == out.fd[0];
          const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
          if (r > 0)
            (is_out ? result.out : result.err).append(buf, size_t(r));
          else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            (is_out ? out : err).close_end(0);
        }
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) runtime_error("waiting for ", program, ": ", std::strerror(errno));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

std::string last_lines(const std::string& text, int max_lines) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  std::string joined;
  const size_t first = lines.size() > size_t(max_lines) ? lines.size() - size_t(max_lines) : 0;
  for (size_t i = first; i < lines.size(); ++i) joined += (i > first ? "\n" : "") + lines[i];
  return joined;
}

}  // namespace gancu
