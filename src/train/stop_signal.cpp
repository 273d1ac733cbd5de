// Clean stops on SIGINT and SIGTERM. See include/gancu/stop_signal.h.
#include "gancu/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gancu {

namespace {

volatile sig_atomic_t g_stop = 0;
struct sigaction g_old_int, g_old_term;

void write_stderr(const char* text) {
  // write(2) is async-signal-safe; stdio is not.
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

void on_signal(int sig) {
  if (g_stop != 0) {
    // The second signal: no more waiting. Default action, then the signal again ends the process.
    write_stderr("\ngancu: second signal: stopping now, without a checkpoint of this step\n");
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_stop = sig;
  write_stderr(sig == SIGINT ? "\ngancu: SIGINT: stopping at the end of this step and writing a checkpoint "
                               "(Ctrl-C again to quit at once)\n"
                             : "\ngancu: SIGTERM: stopping at the end of this step and writing a checkpoint "
                               "(a second signal quits at once)\n");
}

}  // namespace

StopOnSignal::StopOnSignal() {
  g_stop = 0;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes in progress continue rather than fail with EINTR
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

StopOnSignal::~StopOnSignal() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int stop_signal() {
  return g_stop;
}

const char* signal_name(int sig) {
  static thread_local char buf[24];
  if (sig == SIGINT) return "SIGINT";
  if (sig == SIGTERM) return "SIGTERM";
  std::snprintf(buf, sizeof buf, "signal %d", sig);
  return buf;
}

void die_by_signal(int sig) {
  std::fflush(nullptr);
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  std::_Exit(128 + sig);  // only if the signal's default action did not end the process
}

}  // namespace gancu
