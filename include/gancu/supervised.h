// The supervised generator (train.mode = "supervised"; docs/conditional.md#the-supervised-generator):
// G draws an image from a label vector and one number, the image's mean pixel value. What its grids
// need on the host: the mean pixel values the data holds, the label rows of a sweep and of a mix of
// classes, and the images of such a grid.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/gan.h"

namespace gancu {

// Each image's mean pixel value in the model's pixel range [-1, 1] (a byte p is p / 127.5 - 1, as
// gather_batch maps it), what the supervised generator reads as its input.
std::vector<float> image_mean_levels(const Dataset& data);

// The mean pixel values of a data set: the range a sweep covers (the 1st and 99th percentiles of
// the images' means: the extremes are a few odd images) and each class's mean of them.
struct PixelLevels {
  float low = 0, high = 0;
  std::vector<float> class_mean;  // [classes]; 0 for a class without images
};
PixelLevels pixel_levels(const Dataset& data, int classes);

// A grid of the supervised generator: rows of label vectors, columns of mean pixel values.
struct SupervisedGrid {
  int classes = 0;
  std::vector<std::vector<float>> rows;  // each [classes]
  std::vector<std::string> row_names;    // "3", "0.5 x 5 + 0.5 x 0"
  std::vector<float> levels;             // the columns, low to high
};

// `columns` values evenly from levels.low to levels.high (columns >= 2).
std::vector<float> sweep_levels(const PixelLevels& levels, int columns);
// Grid (a): one row per class (its one-hot label).
SupervisedGrid sweep_grid(int classes, const std::vector<float>& levels);
// A mix of classes, parsed from "A:wa,B:wb[,...]": distinct classes in 0..classes-1, weights >= 0
// that sum to 1 (within 1e-4). Anything else is a UsageError naming `flag`.
std::vector<std::pair<int, float>> parse_label_mix(const std::string& text, int classes, const char* flag);
// Grid (b): one row per class of the mix (its one-hot label), then the mix, sum_k w_k onehot(k).
SupervisedGrid mix_grid(int classes, const std::vector<std::pair<int, float>>& mix,
                        const std::vector<float>& levels);
// A generator that reads its label other than linearly (embed, project: by its largest entry)
// would read a mix as one class: a UsageError naming `flag` and the layer.
void check_reads_label_linearly(const Config& cfg, const char* flag);

// The grid's images, row by row ([rows * columns, image] on the host, floats in [-1, 1]).
std::vector<float> draw_supervised_grid(const Exec& ex, Gan& gan, const SupervisedGrid& grid);
// The same written as a PNG grid (one row per label row).
void write_supervised_grid(const Exec& ex, Gan& gan, const SupervisedGrid& grid, const std::string& path);

}  // namespace gancu
