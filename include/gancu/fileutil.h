// Small file-system helpers that every writer in gancu goes through.
//
// The rule they enforce (DESIGN.md, "Errors are part of the interface"): nothing gancu writes is
// ever left half-written. A file is written to a temporary name next to its target, flushed to
// the disk, and only then renamed over the target, so a crash, a full disk or a killed process
// leaves either the old file or the new one, never a mixture. Every failure is a RuntimeError that
// names the file and the system's reason (strerror).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace gancu {

// True when `path` names an existing regular file (following symlinks).
bool file_exists(const std::string& path);

// True when `path` names an existing directory (following symlinks).
bool dir_exists(const std::string& path);

// The names in a directory, without "." and ".."; nullopt when it cannot be opened (missing, not
// a directory, no permission). The order is the file system's.
std::optional<std::vector<std::string>> dir_entries(const std::string& path);

// True when `path` names an existing, readable directory with no entries.
bool dir_is_empty(const std::string& path);

// Creates `path` and any missing parents (mkdir -p). An existing directory is fine; an existing
// non-directory in the way, or a failed mkdir, is a RuntimeError naming the path.
void make_dirs(const std::string& path);

// The whole content of a file. A missing, unreadable file or a directory is a RuntimeError
// naming the path.
std::vector<uint8_t> read_file(const std::string& path);

// A file that appears at `path` only when commit() succeeds.
//
// Writes go to `path.tmp.<pid>` in the same directory (rename is atomic only within one file
// system). commit() flushes, fsyncs, closes (fclose can be the call that reports a full disk,
// so it is checked) and renames. If anything fails, or the object is destroyed without commit(),
// the temporary file is removed and the target is untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(const std::vector<uint8_t>& bytes) { write(bytes.data(), bytes.size()); }
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const char* what, int err);  // removes the temp file, then throws
  std::string path_;
  std::string temp_;
  std::FILE* file_ = nullptr;
  bool done_ = false;
};

// Writes `size` bytes to `path` atomically (see AtomicFile).
void atomic_write(const std::string& path, const void* data, size_t size);
inline void atomic_write(const std::string& path, const std::vector<uint8_t>& bytes) {
  atomic_write(path, bytes.data(), bytes.size());
}
inline void atomic_write(const std::string& path, const std::string& text) {
  atomic_write(path, text.data(), text.size());
}

// The last component of a path ("a/b/c.gz" -> "c.gz"), and everything before it ("a/b"; "."
// when there is no slash). Error messages name files by basename where the folder is already
// said, and the readers use them to find companion files.
std::string path_basename(const std::string& path);
// The folder of the running executable ("" when /proc/self/exe cannot be read).
std::string executable_dir();
std::string path_dirname(const std::string& path);

}  // namespace gancu
