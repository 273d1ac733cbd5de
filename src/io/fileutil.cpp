// File-system helpers: atomic writes, mkdir -p, whole-file reads. See include/gancu/fileutil.h.
#include "gancu/fileutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "gancu/check.h"

namespace gancu {

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<std::vector<std::string>> dir_entries(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return std::nullopt;
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  ::closedir(d);
  return names;
}

bool dir_is_empty(const std::string& path) {
  const auto names = dir_entries(path);
  return names && names->empty();
}

void make_dirs(const std::string& path) {
  if (path.empty() || dir_exists(path)) return;
  // Create each prefix in turn; EEXIST from a racing process that made the same folder is fine,
  // as long as what exists is a directory.
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0777) == 0) continue;
    const int err = errno;
    if (err == EEXIST && dir_exists(prefix)) continue;
    if (err == EEXIST)
      runtime_error(path, ": cannot create directory: ", prefix, " exists and is not a directory");
    runtime_error(path, ": cannot create directory ", prefix, ": ", std::strerror(err));
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) runtime_error(path, ": cannot read: ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) runtime_error(path, ": cannot read: is a directory, not a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) runtime_error(path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  // The size from stat is a hint only (pipes and /proc files report 0), so read to EOF.
  bytes.reserve(S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) : 0);
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) runtime_error(path, ": read failed: ", std::strerror(err));
  return bytes;
}

std::string path_basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string path_dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) runtime_error("cannot write a file with an empty name");
  temp_ = path_ + ".tmp." + std::to_string(::getpid());
  file_ = std::fopen(temp_.c_str(), "wb");
  if (!file_) {
    const int err = errno;
    if (!dir_exists(path_dirname(path_)))
      runtime_error(path_, ": cannot write: directory ", path_dirname(path_), " does not exist");
    runtime_error(path_, ": cannot create ", temp_, ": ", std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (done_) return;
  if (file_) std::fclose(file_);
  std::remove(temp_.c_str());
}

void AtomicFile::fail(const char* what, int err) {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::remove(temp_.c_str());
  done_ = true;
  runtime_error(path_, ": ", what, ": ", std::strerror(err), " (nothing was written; the previous ",
                "content, if any, is unchanged)");
}

void AtomicFile::write(const void* data, size_t size) {
  GANCU_CHECK(file_ && !done_, "write to ", path_, " after commit or failure");
  if (size == 0) return;
  errno = 0;
  if (std::fwrite(data, 1, size, file_) != size) fail("write failed", errno ? errno : EIO);
}

void AtomicFile::commit() {
  GANCU_CHECK(file_ && !done_, "commit of ", path_, " after commit or failure");
  // Buffered data reaches the kernel at fflush; the kernel's pages reach the disk at fsync.
  // A full disk can show up at either, or only at close on network file systems.
  errno = 0;
  if (std::fflush(file_) != 0) fail("write failed", errno ? errno : EIO);
  if (::fsync(::fileno(file_)) != 0 && errno != EINVAL && errno != EROFS) fail("fsync failed", errno);
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fclose(f) != 0) fail("close failed", errno ? errno : EIO);
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    fail(err == EISDIR ? "cannot replace" : "rename failed", err);
  }
  done_ = true;
  // Make the rename itself durable. Best effort: some file systems refuse fsync on directories.
  const int dir = ::open(path_dirname(path_).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void atomic_write(const std::string& path, const void* data, size_t size) {
  AtomicFile file(path);
  file.write(data, size);
  file.commit();
}

std::string executable_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  return path_dirname(buf);
}

}  // namespace gancu
