// A folder of PNG and JPEG images as a data set (`--data PATH`): decoded once, brought to the
// model's channels and size (resize.h: PIL's convert, torchvision's Resize + CenterCrop with
// antialiased bilinear), and cached as an IDX file so that the next run starts at once.
//
// The folder is read recursively; files are taken by their extension (.png, .jpg, .jpeg, any
// case) and decoded by their content. When every image lies in a first-level sub-folder and there
// are two to kMaxClasses of them, the sub-folders' names (sorted) are the classes and each image's
// label is its sub-folder's index.
//
// A file that cannot be decoded (truncated, corrupt, zero bytes, not an image) is skipped with a
// count and the first few names on the log, or is an error with `strict`. A folder without any
// image file, or with no readable one, is an error naming the folder.
//
// The cache: <cache dir>/folders/<key>.idx (+ .labels.idx, + .json written last, which marks the
// entry complete), where the key hashes the folder's absolute path, every image file's relative
// path, size and modification time, the target size and channels, and the reader's version: a
// changed, added or removed file makes a new entry. Cache dir: $GANCU_CACHE_DIR, else
// $XDG_CACHE_HOME/gancu, else ~/.cache/gancu.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "gancu/data.h"

namespace gancu {

struct ImageFolderOptions {
  int size = 0;      // the square side the model takes
  int channels = 0;  // 1 or 3
  bool strict = false;
  bool use_cache = true;
};

// What a folder holds, without decoding: image files and the classes of the sub-folders.
struct ImageFolderListing {
  std::string dir;
  std::vector<std::string> files;    // relative paths, sorted
  std::vector<int> labels;           // per file, when classes is not empty
  std::vector<std::string> classes;  // sub-folder names, sorted; empty without classes
};
ImageFolderListing list_image_folder(const std::string& dir);
bool holds_images(const std::string& dir);  // at least one .png/.jpg/.jpeg file, recursively

// The data set of a folder at the options' size and channels. Notes (cache use, skipped files)
// go to `log`.
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options, std::ostream& log);

// Where the cache lives (see above); "" when none of the variables is set.
std::string image_cache_dir();

}  // namespace gancu
