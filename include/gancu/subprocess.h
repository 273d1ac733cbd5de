// Running the external tools gancu drives (gnuplot for plots, ffmpeg for the run's video): find
// the program, start it with posix_spawn, feed it its input on stdin and collect what it writes on
// stdout and stderr, then wait for it.
//
// Nothing goes through a shell: arguments are passed as they are, so paths with spaces or quotes
// need no escaping.
#pragma once

#include <string>
#include <vector>

namespace gancu {

// The program a name stands for: a name with a '/' is taken as a path; a bare name is looked up
// in $PATH. Returns "" when there is no such executable file.
std::string find_executable(const std::string& name);

struct ProcessResult {
  int exit_code = -1;  // the exit status, or -1 when a signal ended the process
  int signal = 0;      // the signal that ended it, or 0
  std::string out;     // everything it wrote on stdout
  std::string err;     // everything it wrote on stderr
  bool ok() const { return exit_code == 0; }
  // "exit status N" or "killed by signal N (name)", for messages.
  std::string status_text() const;
};

// Runs argv[0] (a path, or a name looked up in $PATH) with argv[1..] as its arguments, `input` on
// its stdin (then closed), and waits for it. The child gets the default disposition for every
// signal. A program that cannot be started (not found, not executable) is a RuntimeError naming
// it and the system's reason; a program that runs and fails is not an error here: look at the
// result.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "");

// The last `max_lines` non-empty lines of a tool's stderr, for error messages: tools like ffmpeg
// print a banner first and the reason last.
std::string last_lines(const std::string& text, int max_lines = 5);

}  // namespace gancu
