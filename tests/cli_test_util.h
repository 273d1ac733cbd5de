// Running the gancu command from a test: its exit code and output, temporary paths, and the
// assertion that an exit code and pieces of the message came out.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace gancu::testing_cli {

struct Result {
  int code = -1;
  std::string output;  // stdout and stderr
};

// A shell command line, stdout and stderr together.
inline Result run_command(const std::string& command) {
  Result r;
  const std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// `gancu ARGS`.
inline Result run(const std::string& args) {
  return run_command(std::string(GANCU_BINARY) + " " + args);
}

inline std::string temp(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/gancu_cli_" + name + "_" + std::to_string(::getpid());
  std::system(("rm -rf '" + path + "'").c_str());
  return path;
}

inline void expect(const Result& r, int code, const std::vector<std::string>& parts) {
  EXPECT_EQ(r.code, code) << r.output;
  for (const auto& p : parts)
    EXPECT_NE(r.output.find(p), std::string::npos) << "missing '" << p << "' in:\n" << r.output;
}

}  // namespace gancu::testing_cli
