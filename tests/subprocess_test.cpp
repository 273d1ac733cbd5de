// Running external tools: finding them, feeding stdin while draining stdout and stderr (no
// deadlock on large data both ways), exit codes and signals, and a child that stops reading.
#include "gancu/subprocess.h"

#include <gtest/gtest.h>

#include "gancu/check.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::ScopedEnv;
using testing_io::throws_with;

TEST(Subprocess, FindExecutable) {
  EXPECT_FALSE(find_executable("sh").empty());
  EXPECT_EQ(find_executable("/bin/sh"), "/bin/sh");
  EXPECT_EQ(find_executable("/nonexistent/tool"), "");
  EXPECT_EQ(find_executable("gancu-no-such-tool"), "");
  EXPECT_EQ(find_executable(""), "");
  EXPECT_EQ(find_executable("/etc/passwd"), "");  // a file, but not executable
  ScopedEnv path("PATH", "/nonexistent");
  EXPECT_EQ(find_executable("sh"), "");
}

TEST(Subprocess, LargeInputAndOutputBothWays) {
  std::string input(8 << 20, 'x');  // far more than a pipe holds
  for (size_t i = 0; i < input.size(); i += 4096) input[i] = char('a' + (i / 4096) % 26);
  const ProcessResult r = run_process({"cat"}, input);
  EXPECT_TRUE(r.ok()) << r.status_text();
  EXPECT_EQ(r.out, input);
  EXPECT_TRUE(r.err.empty());
}

TEST(Subprocess, ExitStatusStderrAndSignals) {
  const ProcessResult r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.status_text(), "exit status 3");
  const ProcessResult k = run_process({"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(k.signal, 9);
  EXPECT_NE(k.status_text().find("signal 9"), std::string::npos);
  // Arguments reach the program as they are: no shell in between.
  EXPECT_EQ(run_process({"printf", "%s|", "a b", "'c'", "$HOME"}).out, "a b|'c'|$HOME|");
}

TEST(Subprocess, ChildThatStopsReadingDoesNotKillUs) {
  const ProcessResult r = run_process({"true"}, std::string(4 << 20, 'x'));
  EXPECT_TRUE(r.ok());
  const ProcessResult h = run_process({"head", "-c", "5"}, std::string(4 << 20, 'y'));
  EXPECT_EQ(h.out, "yyyyy");
}

TEST(Subprocess, MissingProgramIsARuntimeError) {
  EXPECT_TRUE(throws_with<RuntimeError>([] { run_process({"gancu-no-such-tool"}); },
                                        {"gancu-no-such-tool", "not found in $PATH"}));
  EXPECT_TRUE(throws_with<RuntimeError>([] { run_process({"/nonexistent/ffmpeg"}); },
                                        {"/nonexistent/ffmpeg", "no such executable"}));
}

TEST(Subprocess, LastLines) {
  EXPECT_EQ(last_lines("a\nb\n\nc\nd\n", 2), "c\nd");
  EXPECT_EQ(last_lines("only", 5), "only");
  EXPECT_EQ(last_lines("", 5), "");
}

}  // namespace
}  // namespace gancu
