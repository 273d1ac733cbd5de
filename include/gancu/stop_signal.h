// Stopping a run cleanly on SIGINT (Ctrl-C) and SIGTERM (a scheduler, `kill`).
//
// While a StopOnSignal lives, the first SIGINT or SIGTERM only records the signal and says so on
// stderr; the training loop polls stop_signal() after each step, writes a checkpoint and the
// grids, and returns. A second signal of either kind ends the process at once (by that signal,
// as if no handler were installed): the files written so far are whole, since every writer
// renames complete files into place, and --resume continues from the newest checkpoint.
#pragma once

namespace gancu {

class StopOnSignal {
 public:
  StopOnSignal();   // installs the handlers and clears any earlier request
  ~StopOnSignal();  // restores the previous handlers
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
};

// The signal that asked the run to stop (SIGINT or SIGTERM), or 0.
int stop_signal();

// "SIGINT", "SIGTERM", or "signal N".
const char* signal_name(int sig);

// Ends the process by `sig` with its default action (after flushing stdio), so that the parent
// sees what a shell expects of an interrupted program: $? is 128 + sig (130 for SIGINT, 143 for
// SIGTERM), and a shell loop around gancu stops too.
[[noreturn]] void die_by_signal(int sig);

}  // namespace gancu
