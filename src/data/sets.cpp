// Finding data sets by name or path, splits, and synthetic data. See include/gancu/data.h.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/fileutil.h"
#include "gancu/image_folder.h"

namespace gancu {

namespace fs = std::filesystem;

const char* split_name(Split split) {
  switch (split) {
    case Split::Train:
      return "train";
    case Split::Test:
      return "test";
    default:
      return "all";
  }
}

Split parse_split(const std::string& text) {
  if (text == "train") return Split::Train;
  if (text == "test") return Split::Test;
  if (text == "all") return Split::All;
  usage_error("unknown data split '", text, "' (expected train, test or all)");
}

// ---- Synthetic ------------------------------------------------------------------------------

namespace {

// splitmix64: a tiny, well-mixed generator; the synthetic images only need to be deterministic
// and not constant, so nothing heavier (or shared with the training RNG streams) is wanted.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Dataset make_synthetic_dataset(int h, int w, int c, int64_t count, uint64_t seed) {
  if (h < 1 || w < 1 || c < 1 || h > 16384 || w > 16384 || c > 4 || count < 1)
    usage_error("synthetic data set of ", count, " images of ", h, "x", w, "x", c,
                ": sides must be 1..16384, channels 1..4 and the count at least 1");
  const uint64_t bytes = uint64_t(h) * w * c * uint64_t(count);
  if (bytes > (uint64_t(1) << 34))
    usage_error("synthetic data set of ", count, " images of ", h, "x", w, "x", c, " needs ", bytes,
                " bytes, more than the 16 GiB allowed");
  Dataset d;
  d.name = "synthetic:" + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
  d.h = h;
  d.w = w;
  d.c = c;
  d.count = count;
  d.num_classes = kMaxClasses;
  d.images.resize(bytes);
  uint64_t state = seed;
  for (size_t i = 0; i < d.images.size(); i += 8) {
    const uint64_t r = splitmix64(state);
    const size_t n = std::min<size_t>(8, d.images.size() - i);
    std::memcpy(&d.images[i], &r, n);
  }
  d.labels.resize(count);
  for (auto& label : d.labels) label = static_cast<uint8_t>(splitmix64(state) % kMaxClasses);
  return d;
}

// ---- Folders --------------------------------------------------------------------------------

namespace {

void note(const std::string& text) {
  std::fprintf(stderr, "gancu: note: %s\n", text.c_str());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// An IDX images file name: "<prefix>-images-idx3-ubyte" (MNIST) or "-idx4-" (gancu's colour
// extension), optionally gzipped.
bool is_idx_images_name(const std::string& name) {
  const std::string base = ends_with(name, ".gz") ? name.substr(0, name.size() - 3) : name;
  return (base.find("-images-idx3-") != std::string::npos ||
          base.find("-images-idx4-") != std::string::npos) &&
         ends_with(base, "-ubyte");
}

bool is_test_name(const std::string& name) {
  return starts_with(name, "t10k") || starts_with(name, "test");
}

// The labels file that belongs to an images file, if it exists (raw preferred, then gzip).
std::string find_labels_for(const std::string& images_path) {
  std::string name = path_basename(images_path);
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  for (const char* tag : {"-images-idx3-", "-images-idx4-"}) {
    const size_t at = name.find(tag);
    if (at == std::string::npos) continue;
    const std::string labels = name.substr(0, at) + "-labels-idx1-" + name.substr(at + std::strlen(tag));
    const std::string dir = path_dirname(images_path);
    for (const std::string& candidate : {dir + "/" + labels, dir + "/" + labels + ".gz"})
      if (file_exists(candidate)) return candidate;
  }
  return "";
}

struct FolderContent {
  std::string dir;
  // IDX: images file per split ("" when absent).
  std::string idx_train, idx_test;
  // CIFAR-10: data_batch_N.bin sorted by N, and test_batch.bin ("" when absent).
  std::vector<std::string> cifar_train;
  std::string cifar_test;

  bool has_idx() const { return !idx_train.empty() || !idx_test.empty(); }
  bool has_cifar() const { return !cifar_train.empty() || !cifar_test.empty(); }
};

// Picks one images file per split. Both "x" and "x.gz" may be present (an unpacked copy next to
// the download): the raw one is taken, it reads faster. Two different data sets for the same
// split are ambiguous and an error.
std::string pick_idx(const std::string& dir, std::vector<std::string> names, const char* split) {
  if (names.empty()) return "";
  std::sort(names.begin(), names.end());
  std::vector<std::string> bases;
  for (const auto& n : names) bases.push_back(ends_with(n, ".gz") ? n.substr(0, n.size() - 3) : n);
  bases.erase(std::unique(bases.begin(), bases.end()), bases.end());
  if (bases.size() > 1)
    runtime_error(dir, ": several IDX image files for the ", split, " split (", join(names, ", "),
                  "): pass the path of the one to use");
  return dir + "/" + names.front();  // sorted: "x" before "x.gz"
}

FolderContent scan_folder(const std::string& dir) {
  FolderContent content;
  content.dir = dir;
  std::vector<std::string> train, test;
  std::vector<std::pair<long, std::string>> batches;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code ec2;
    if (!entry.is_regular_file(ec2)) continue;
    const std::string name = entry.path().filename().string();
    if (is_idx_images_name(name)) {
      (is_test_name(name) ? test : train).push_back(name);
    } else if (name == "test_batch.bin") {
      content.cifar_test = dir + "/" + name;
    } else if (starts_with(name, "data_batch_") && ends_with(name, ".bin")) {
      const std::string num = name.substr(11, name.size() - 15);
      if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos)
        batches.emplace_back(std::stol(num), dir + "/" + name);
    }
  }
  if (ec) runtime_error(dir, ": cannot list folder: ", ec.message());
  content.idx_train = pick_idx(dir, train, "train");
  content.idx_test = pick_idx(dir, test, "test");
  std::sort(batches.begin(), batches.end());
  for (auto& b : batches) content.cifar_train.push_back(b.second);
  // The official archive unpacks into cifar-10-batches-bin/; accept the folder above it.
  if (!content.has_idx() && !content.has_cifar() && dir_exists(dir + "/cifar-10-batches-bin"))
    return scan_folder(dir + "/cifar-10-batches-bin");
  return content;
}

std::optional<Dataset> load_one_split(const FolderContent& content, Split split) {
  const bool train = split == Split::Train;
  if (content.has_idx()) {
    const std::string& images = train ? content.idx_train : content.idx_test;
    if (images.empty()) return std::nullopt;
    return read_idx(images, find_labels_for(images));
  }
  if (train) {
    if (content.cifar_train.empty()) return std::nullopt;
    if (content.cifar_train.size() < 5)
      note(content.dir + ": " + std::to_string(content.cifar_train.size()) +
           " of CIFAR-10's 5 training batches are present; using those");
    return read_cifar10(content.cifar_train);
  }
  if (content.cifar_test.empty()) return std::nullopt;
  return read_cifar10({content.cifar_test});
}

Dataset concat(Dataset a, Dataset b, const std::string& where) {
  if (a.h != b.h || a.w != b.w || a.c != b.c)
    runtime_error(where, ": train images are ", a.h, "x", a.w, "x", a.c, " but test images are ", b.h, "x",
                  b.w, "x", b.c, "; cannot combine them for split 'all'");
  if (a.labels.empty() != b.labels.empty()) {
    note(where + ": only one split has labels; the combined data set has none");
    a.labels.clear();
    b.labels.clear();
    a.num_classes = 0;
  }
  a.images.insert(a.images.end(), b.images.begin(), b.images.end());
  a.labels.insert(a.labels.end(), b.labels.begin(), b.labels.end());
  a.count += b.count;
  return a;
}

// Loads `split` from a scanned folder. A missing split falls back to the other with a note (the
// project's shared MNIST copy has only the test set).
Dataset load_folder(const FolderContent& content, Split split, const std::string& name) {
  const std::string kind = content.has_idx() ? "IDX" : "CIFAR-10";
  if (content.has_idx() && content.has_cifar())
    runtime_error(content.dir, ": holds both IDX and CIFAR-10 files; pass the path of one file");
  std::optional<Dataset> train, test;
  if (split != Split::Test) train = load_one_split(content, Split::Train);
  if (split != Split::Train) test = load_one_split(content, Split::Test);
  std::optional<Dataset> result;
  if (split == Split::All && train && test) {
    result = concat(std::move(*train), std::move(*test), content.dir);
  } else if (train || test) {
    result = train ? std::move(train) : std::move(test);
    if (split == Split::All)
      note(content.dir + ": has only the " + (train ? "train" : "test") + " split of " + name +
           "; split 'all' uses that one");
  } else {
    const Split other = split == Split::Train ? Split::Test : Split::Train;
    result = load_one_split(content, other);
    GANCU_CHECK(result, "folder ", content.dir, " has ", kind, " files but neither split");
    note(content.dir + ": has no " + split_name(split) + " split of " + name + "; using the " +
         split_name(other) + " split (" + std::to_string(result->count) + " images) instead");
  }
  result->name = name;
  return std::move(*result);
}

// ---- Known names ----------------------------------------------------------------------------

// Where a known data set may be, with a word on why, for the error message when none has it.
struct Place {
  std::string dir;
  std::string origin;
};

std::string data_dir_env() {
  const char* v = std::getenv("GANCU_DATA_DIR");
  return v && *v ? std::string(v) : std::string();
}

void add_place(std::vector<Place>& places, const std::string& dir, const std::string& origin) {
  const std::string norm = fs::path(dir).lexically_normal().string();
  for (const auto& p : places)
    if (p.dir == norm) return;
  places.push_back({norm, origin});
}

void add_env_place(std::vector<Place>& places, const std::string& sub) {
  const std::string env = data_dir_env();
  if (!env.empty())
    add_place(places, env + "/" + sub, "$GANCU_DATA_DIR/" + sub);
  else
    places.push_back({"$GANCU_DATA_DIR/" + sub, "GANCU_DATA_DIR is not set"});
}

// `<dir>/../shared/data/mnist` for the folder and its two parents: the executable lives in
// build/ (or a folder below it) of the project, whose ../shared/data holds the project's data.
void add_shared_places(std::vector<Place>& places, const std::string& start, const std::string& origin) {
  if (start.empty()) return;
  fs::path dir = fs::path(start).lexically_normal();
  for (int up = 0; up < 3 && !dir.empty(); ++up) {
    add_place(places, (dir / ".." / "shared" / "data" / "mnist").string(), origin);
    if (dir == dir.parent_path()) break;
    dir = dir.parent_path();
  }
}

std::string current_dir() {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  return ec ? "" : cwd.string();
}

struct KnownSet {
  const char* name;
  bool cifar;         // which kind of files the folder must hold
  const char* files;  // for the message
  const char* how;    // how to get it
};

const KnownSet kKnown[] = {
    {"mnist", false, "*-images-idx3-ubyte[.gz]",
     "download train-/t10k-images-idx3-ubyte.gz and train-/t10k-labels-idx1-ubyte.gz "
     "(yann.lecun.com/exdb/mnist "
     "or a mirror) into $GANCU_DATA_DIR/mnist, or run from a checkout next to the project's shared/data "
     "(test set only)"},
    {"fashion-mnist", false, "*-images-idx3-ubyte[.gz]",
     "apt-get install dataset-fashion-mnist (installs /usr/share/datasets/fashion-mnist), or put the IDX "
     "files "
     "from github.com/zalandoresearch/fashion-mnist in $GANCU_DATA_DIR/fashion-mnist"},
    {"cifar10", true, "data_batch_N.bin / test_batch.bin",
     "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into "
     "$GANCU_DATA_DIR/cifar10 or ~/.cache/gancu/cifar10"},
};

std::vector<Place> places_for(const std::string& name) {
  std::vector<Place> places;
  add_env_place(places, name);
  if (name == "mnist") {
    add_shared_places(places, executable_dir(), "relative to the executable");
    add_shared_places(places, current_dir(), "relative to the working directory");
  } else if (name == "fashion-mnist") {
    add_place(places, "/usr/share/datasets/fashion-mnist", "Debian package dataset-fashion-mnist");
  } else if (name == "cifar10") {
    const char* home = std::getenv("HOME");
    if (home && *home)
      add_place(places, std::string(home) + "/.cache/gancu/cifar10", "~/.cache/gancu/cifar10");
    else
      places.push_back({"~/.cache/gancu/cifar10", "HOME is not set"});
  }
  return places;
}

Dataset load_known(const KnownSet& known, Split split) {
  std::vector<std::string> looked;
  for (const Place& place : places_for(known.name)) {
    if (place.dir[0] == '$' || place.dir[0] == '~') {
      looked.push_back(place.dir + " (" + place.origin + ")");
      continue;
    }
    if (!dir_exists(place.dir)) {
      looked.push_back(place.dir + " (" + place.origin + "; no such folder)");
      continue;
    }
    const FolderContent content = scan_folder(place.dir);
    if (known.cifar ? content.has_cifar() : content.has_idx()) return load_folder(content, split, known.name);
    looked.push_back(place.dir + " (" + place.origin + "; exists but holds no " + known.files + ")");
  }
  runtime_error("data set '", known.name, "' not found. Looked for ", known.files,
                " in: ", join(looked, ", "), ". To get it: ", known.how, ".");
}

// "synthetic:HxWxC" or "synthetic:HxWxC:N".
Dataset load_synthetic(const std::string& spec, Split split) {
  const std::string body = spec.substr(std::strlen("synthetic:"));
  auto bad = [&]() {
    usage_error("data set '", spec,
                "': expected synthetic:HxWxC or synthetic:HxWxC:N (e.g. synthetic:32x32x3 or ",
                "synthetic:28x28x1:60000)");
  };
  std::vector<long long> numbers;
  std::string digits;
  std::vector<char> seps;
  for (char ch : body + ";") {
    if (ch >= '0' && ch <= '9') {
      digits += ch;
      continue;
    }
    if (digits.empty() || digits.size() > 12) bad();
    numbers.push_back(std::stoll(digits));
    digits.clear();
    seps.push_back(ch);
  }
  const bool shape_only = seps == std::vector<char>{'x', 'x', ';'};
  const bool with_count = seps == std::vector<char>{'x', 'x', ':', ';'};
  if (!shape_only && !with_count) bad();
  const long long h = numbers[0], w = numbers[1], c = numbers[2];
  const long long n = with_count ? numbers[3] : 4096;
  if (h < 1 || w < 1 || c < 1 || n < 1 || h > 16384 || w > 16384 || c > 4)
    usage_error("data set '", spec, "': sides must be 1..16384, channels 1..4 and the count at least 1");
  // Each split has its own seed so that train and test differ, as real splits do.
  auto make = [&](Split s) {
    return make_synthetic_dataset(int(h), int(w), int(c), n, s == Split::Test ? 0x7e57ull : 0x7a19ull);
  };
  Dataset d = split == Split::All ? concat(make(Split::Train), make(Split::Test), spec) : make(split);
  d.name = spec;
  return d;
}

}  // namespace

Dataset load_dataset(const std::string& name_or_path, Split split, const ImageFolderOptions* folder) {
  const std::string& spec = name_or_path;
  if (starts_with(spec, "synthetic:")) return load_synthetic(spec, split);
  if (spec == "stacked-mnist") return make_stacked_mnist(load_dataset("mnist", split), 60000, 0x57acull);
  for (const KnownSet& known : kKnown)
    if (spec == known.name) return load_known(known, split);

  if (dir_exists(spec)) {
    const FolderContent content = scan_folder(spec);
    if (!content.has_idx() && !content.has_cifar()) {
      if (holds_images(spec)) {
        if (!folder)
          usage_error(spec, ": a folder of images is read at a model's size; use it with gancu train --data ",
                      spec);
        return load_image_folder(spec, *folder, std::cerr);
      }
      runtime_error(spec,
                    ": folder holds no data set files (looked for IDX *-images-idx3-ubyte[.gz], CIFAR-10 ",
                    "data_batch_N.bin / test_batch.bin, and .png / .jpg / .jpeg images, in sub-folders too)");
    }
    return load_folder(content, split, spec);
  }
  if (file_exists(spec)) {
    Dataset d = ends_with(spec, ".bin") ? read_cifar10({spec}) : read_idx(spec, find_labels_for(spec));
    d.name = spec;
    return d;
  }
  std::string names;
  for (const KnownSet& known : kKnown) names += std::string(known.name) + ", ";
  usage_error("data set '", spec, "': not a known name (", names,
              "synthetic:HxWxC) and no file or folder of that name exists (working directory ", current_dir(),
              ")");
}

}  // namespace gancu
