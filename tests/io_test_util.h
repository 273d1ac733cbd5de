// Helpers shared by the I/O tests: a temporary folder that cleans up after itself, raw file
// writing that bypasses gancu's writers (to make broken files), and an assertion that a call
// throws a given exception type whose message contains given pieces.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace gancu::testing_io {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gancu_io_test.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (!made) std::abort();
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // Names of the entries in the folder, sorted: to check that no temporary file was left.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

// Writes bytes with stdio, no checks beyond success: for crafting corrupt inputs.
inline void write_raw(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  ASSERT_EQ(std::fclose(f), 0);
}

inline std::vector<uint8_t> read_raw(const std::string& path) {
  std::vector<uint8_t> out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  int ch;
  while ((ch = std::fgetc(f)) != EOF) out.push_back(static_cast<uint8_t>(ch));
  std::fclose(f);
  return out;
}

inline void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// Runs `f`, expects an exception of type E whose what() contains every piece.
template <class E>
::testing::AssertionResult throws_with(const std::function<void()>& f,
                                       const std::vector<std::string>& pieces) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    // GANCU_TEST_PRINT_ERRORS=1 shows every checked message, to review their wording.
    if (std::getenv("GANCU_TEST_PRINT_ERRORS")) std::printf("    message: %s\n", msg.c_str());
    for (const auto& piece : pieces)
      if (msg.find(piece) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks \"" << piece << "\": " << msg;
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw another type: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// A python3 interpreter for cross-checks, preferring the system one (it has numpy), or "".
inline std::string find_python() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  if (std::system("command -v python3 >/dev/null 2>&1") == 0) return "python3";
  return "";
}

// Sets an environment variable for the lifetime of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_.c_str(), old_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace gancu::testing_io
