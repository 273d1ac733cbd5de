// Image folders as data sets (image_folder.h).
#include "gancu/image_folder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/fnv_hash.h"
#include "gancu/image_io.h"
#include "gancu/resize.h"

namespace gancu {

namespace fs = std::filesystem;

namespace {

// Bumped whenever decoding, conversion or resampling changes what a file becomes.
constexpr int kReaderVersion = 1;
constexpr size_t kSkippedNamesShown = 5;

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::string cache_key(const ImageFolderListing& listing, const ImageFolderOptions& options) {
  Fnv f;
  f.add_value(kReaderVersion);
  f.add_value(options.size);
  f.add_value(options.channels);
  f.add(fs::absolute(listing.dir).lexically_normal().string());
  for (const std::string& rel : listing.files) {
    f.add(rel);
    struct stat st {};
    if (::stat((listing.dir + "/" + rel).c_str(), &st) == 0) {
      f.add_value(int64_t(st.st_size));
      f.add_value(int64_t(st.st_mtim.tv_sec));
      f.add_value(int64_t(st.st_mtim.tv_nsec));
    }
  }
  return f.hex();
}

// One file, decoded and brought to the model's input; throws RuntimeError naming the file.
Image decode_for_model(const std::string& path, const ImageFolderOptions& options) {
  return resize_and_center_crop(convert_channels(read_image(path), options.channels), options.size);
}

std::string describe_skipped(const std::vector<std::string>& reasons, size_t skipped, size_t total) {
  std::ostringstream s;
  s << skipped << " of " << total << " image files could not be read";
  for (size_t i = 0; i < reasons.size() && i < kSkippedNamesShown; ++i)
    s << (i == 0 ? ": " : "; ") << reasons[i];
  if (skipped > kSkippedNamesShown) s << "; ...";
  return s.str();
}

struct CachedFolder {
  Dataset data;
  size_t skipped = 0;
  std::vector<std::string> reasons;
};

// A complete cache entry of the expected shape, or nothing (a damaged entry is decoded again).
std::optional<CachedFolder> read_cache(const std::string& base, bool labels, const Dataset& want,
                                       std::ostream& log) {
  try {
    CachedFolder c;
    c.data = read_idx(base + ".idx", labels ? base + ".labels.idx" : std::string());
    const std::vector<uint8_t> text = read_file(base + ".json");
    const nlohmann::json meta = nlohmann::json::parse(text.begin(), text.end());
    c.skipped = meta.at("skipped").get<size_t>();
    c.reasons = meta.at("reasons").get<std::vector<std::string>>();
    if (c.data.h == want.h && c.data.w == want.w && c.data.c == want.c) return c;
    log << "gancu: note: the cache entry " << base << " holds other sizes; decoding again\n";
  } catch (const std::exception& e) {
    log << "gancu: note: the cache entry " << base << " is unreadable (" << e.what() << "); decoding again\n";
  }
  return std::nullopt;
}

}  // namespace

std::string image_cache_dir() {
  if (const char* v = std::getenv("GANCU_CACHE_DIR"); v && *v) return v;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return std::string(v) + "/gancu";
  if (const char* v = std::getenv("HOME"); v && *v) return std::string(v) + "/.cache/gancu";
  return "";
}

bool holds_images(const std::string& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2) && has_image_extension(it->path())) return true;
  }
  return false;
}

ImageFolderListing list_image_folder(const std::string& dir) {
  ImageFolderListing listing;
  listing.dir = dir;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) runtime_error(dir, ": cannot read the folder: ", ec.message());
  for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) runtime_error(dir, ": cannot read the folder: ", ec.message());
    std::error_code ec2;
    if (it->is_regular_file(ec2) && has_image_extension(it->path()))
      listing.files.push_back(fs::relative(it->path(), dir).generic_string());
  }
  std::sort(listing.files.begin(), listing.files.end());
  // Classes: every image in a first-level sub-folder, and at least two sub-folders.
  std::vector<std::string> firsts;
  bool all_in_subfolders = !listing.files.empty();
  for (const std::string& rel : listing.files) {
    const size_t slash = rel.find('/');
    if (slash == std::string::npos) {
      all_in_subfolders = false;
      break;
    }
    firsts.push_back(rel.substr(0, slash));
  }
  std::vector<std::string> classes = firsts;
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  if (all_in_subfolders && classes.size() >= 2 && classes.size() <= size_t(kMaxClasses)) {
    listing.classes = classes;
    for (const std::string& first : firsts)
      listing.labels.push_back(
          int(std::lower_bound(classes.begin(), classes.end(), first) - classes.begin()));
  }
  return listing;
}

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options, std::ostream& log) {
  if (options.size <= 0 || (options.channels != 1 && options.channels != 3))
    usage_error("--data ", dir, ": an image folder is read at the model's size; the generator makes ",
                options.size, "x", options.size, "x", options.channels,
                " images (image folders need square 1- or 3-channel images)");
  const ImageFolderListing listing = list_image_folder(dir);
  if (listing.files.empty())
    runtime_error(dir,
                  ": the folder holds no images (looked for .png, .jpg and .jpeg files, in sub-folders too)");

  Dataset d;
  d.name = dir;
  d.h = d.w = options.size;
  d.c = options.channels;
  d.class_names = listing.classes;
  d.num_classes = int(listing.classes.size());

  const std::string cache_root = options.use_cache ? image_cache_dir() : std::string();
  const std::string base =
      cache_root.empty() ? std::string() : cache_root + "/folders/" + cache_key(listing, options);
  if (!base.empty() && file_exists(base + ".json")) {
    if (std::optional<CachedFolder> cached = read_cache(base, !listing.classes.empty(), d, log)) {
      if (cached->skipped > 0 && options.strict)
        runtime_error(dir, ": ", describe_skipped(cached->reasons, cached->skipped, listing.files.size()),
                      " (strict: no image may be skipped)");
      d.count = cached->data.count;
      d.images = std::move(cached->data.images);
      d.labels = std::move(cached->data.labels);
      log << "gancu: data " << dir << ": " << d.count << " images from the cache " << base << ".idx\n";
      return d;
    }
  }

  // Decode every file (in parallel: a folder can hold many thousands), then keep the readable ones
  // in the listing's order.
  const int64_t n = int64_t(listing.files.size());
  const size_t per_image = d.image_bytes();
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * per_image);
  std::vector<std::string> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    try {
      const Image im = decode_for_model(dir + "/" + listing.files[size_t(i)], options);
      std::copy(im.pixels.begin(), im.pixels.end(), pixels.begin() + i * int64_t(per_image));
    } catch (const std::exception& e) {
      errors[size_t(i)] = e.what();
      if (errors[size_t(i)].empty()) errors[size_t(i)] = "unreadable";
    }
  }
  // The readable images moved down over the skipped ones, in place.
  std::vector<std::string> reasons;
  size_t skipped = 0;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!errors[size_t(i)].empty()) {
      ++skipped;
      if (reasons.size() < kSkippedNamesShown) reasons.push_back(errors[size_t(i)]);
      continue;
    }
    if (kept != i)
      std::copy_n(pixels.begin() + i * int64_t(per_image), per_image,
                  pixels.begin() + kept * int64_t(per_image));
    if (!listing.classes.empty()) d.labels.push_back(uint8_t(listing.labels[size_t(i)]));
    ++kept;
  }
  pixels.resize(size_t(kept) * per_image);
  d.images = std::move(pixels);
  d.count = kept;
  if (skipped > 0) {
    const std::string what = describe_skipped(reasons, skipped, size_t(n));
    if (options.strict) runtime_error(dir, ": ", what, " (strict: no image may be skipped)");
    if (d.count == 0) runtime_error(dir, ": no readable image: ", what);
    log << "gancu: warning: data " << dir << ": skipped " << what << "\n";
  }
  if (!base.empty()) {
    // The cache is a convenience: a folder that cannot be written only costs the next run time.
    try {
      make_dirs(cache_root + "/folders");
      write_idx_images(base + ".idx", d.images.data(), d.count, d.h, d.w, d.c);
      if (!listing.classes.empty()) write_idx_labels(base + ".labels.idx", d.labels.data(), d.count);
      const nlohmann::json meta = {{"folder", dir},           {"images", d.count}, {"skipped", skipped},
                                   {"reasons", reasons},      {"size", d.h},       {"channels", d.c},
                                   {"classes", d.class_names}};
      atomic_write(base + ".json", meta.dump(1) + "\n");
      log << "gancu: data " << dir << ": " << d.count << " images decoded and cached in " << base << ".idx\n";
    } catch (const RuntimeError& e) {
      log << "gancu: warning: data " << dir << ": not cached (" << e.what() << ")\n";
    }
  }
  return d;
}

}  // namespace gancu
