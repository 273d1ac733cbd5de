#include "gancu/supervised.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "gancu/check.h"
#include "gancu/image_io.h"
#include "gancu/memory.h"

namespace gancu {

std::vector<float> image_mean_levels(const Dataset& data) {
  const size_t bytes = data.image_bytes();
  std::vector<float> out(size_t(data.count));
  for (int64_t i = 0; i < data.count; ++i) {
    const uint8_t* p = data.image(i);
    uint64_t sum = 0;
    for (size_t k = 0; k < bytes; ++k) sum += p[k];
    out[size_t(i)] = float(double(sum) / double(bytes) / 127.5 - 1.0);
  }
  return out;
}

PixelLevels pixel_levels(const Dataset& data, int classes) {
  if (data.count == 0) usage_error(data.name, ": no images to take mean pixel values from");
  const std::vector<float> means = image_mean_levels(data);
  PixelLevels r;
  std::vector<float> sorted = means;
  std::sort(sorted.begin(), sorted.end());
  const double last = double(sorted.size() - 1);
  r.low = sorted[size_t(std::floor(0.01 * last))];
  r.high = sorted[size_t(std::ceil(0.99 * last))];
  std::vector<double> sum(size_t(classes), 0.0);
  std::vector<int64_t> count(size_t(classes), 0);
  for (size_t i = 0; i < means.size() && !data.labels.empty(); ++i) {
    const int c = data.labels[i];
    if (c >= classes) continue;
    sum[size_t(c)] += means[i];
    ++count[size_t(c)];
  }
  r.class_mean.resize(size_t(classes));
  for (int c = 0; c < classes; ++c)
    r.class_mean[size_t(c)] = count[size_t(c)] ? float(sum[size_t(c)] / double(count[size_t(c)])) : 0.0f;
  return r;
}

std::vector<float> sweep_levels(const PixelLevels& levels, int columns) {
  GANCU_CHECK(columns >= 2, "sweep_levels: ", columns, " columns");
  std::vector<float> out(static_cast<size_t>(columns));
  for (int i = 0; i < columns; ++i)
    out[size_t(i)] = float(levels.low + (double(levels.high) - levels.low) * i / double(columns - 1));
  return out;
}

namespace {
std::vector<float> one_hot_row(int classes, int k) {
  std::vector<float> row(size_t(classes), 0.0f);
  row[size_t(k)] = 1.0f;
  return row;
}
}  // namespace

SupervisedGrid sweep_grid(int classes, const std::vector<float>& levels) {
  SupervisedGrid g;
  g.classes = classes;
  g.levels = levels;
  for (int k = 0; k < classes; ++k) {
    g.rows.push_back(one_hot_row(classes, k));
    g.row_names.push_back(std::to_string(k));
  }
  return g;
}

std::vector<std::pair<int, float>> parse_label_mix(const std::string& text, int classes, const char* flag) {
  std::vector<std::pair<int, float>> mix;
  std::stringstream ss(text);
  double total = 0;
  for (std::string part; std::getline(ss, part, ',');) {
    int k = -1, used = 0;
    float w = 0;
    if (std::sscanf(part.c_str(), " %d : %f %n", &k, &w, &used) != 2 || size_t(used) != part.size())
      usage_error(flag, ": '", part, "' is not CLASS:WEIGHT (e.g. ", flag, " 5:0.5,0:0.5)");
    if (k < 0 || k >= classes)
      usage_error(flag, ": class ", k, " is outside the model's classes 0..", classes - 1);
    if (!(w >= 0.0f) || !std::isfinite(w))
      usage_error(flag, ": the weight of class ", k, " is ", w, "; weights are >= 0");
    for (const auto& [other, _] : mix)
      if (other == k) usage_error(flag, ": class ", k, " is given twice");
    mix.push_back({k, w});
    total += w;
  }
  if (mix.size() < 2)
    usage_error(flag, ": '", text, "' mixes fewer than two classes (e.g. ", flag, " 5:0.5,0:0.5)");
  if (std::fabs(total - 1.0) > 1e-4) usage_error(flag, ": the weights sum to ", total, ", not 1");
  return mix;
}

SupervisedGrid mix_grid(int classes, const std::vector<std::pair<int, float>>& mix,
                        const std::vector<float>& levels) {
  SupervisedGrid g;
  g.classes = classes;
  g.levels = levels;
  std::vector<float> mixed(size_t(classes), 0.0f);
  std::string name;
  for (const auto& [k, w] : mix) {
    g.rows.push_back(one_hot_row(classes, k));
    g.row_names.push_back(std::to_string(k));
    mixed[size_t(k)] += w;
    name += detail::concat(name.empty() ? "" : " + ", w, " x ", k);
  }
  g.rows.push_back(mixed);
  g.row_names.push_back(name);
  return g;
}

void check_reads_label_linearly(const Config& cfg, const char* flag) {
  for (const std::string& layer : cfg.generator) {
    const std::string kind = layer.substr(0, layer.find(' '));
    if ((kind == "embed" || kind == "project") && layer.find("label") != std::string::npos)
      usage_error(flag, ": the generator reads its label through \"", layer,
                  "\", which takes the label's largest entry: a mix would be read as one class (join the "
                  "label with \"concat in=input,label\" to mix classes)");
  }
}

std::vector<float> draw_supervised_grid(const Exec& ex, Gan& gan, const SupervisedGrid& grid) {
  GANCU_CHECK(gan.config().z_dim == 1 && gan.classes() == grid.classes,
              "draw_supervised_grid: not a supervised generator of ", grid.classes, " classes");
  const int64_t cols = int64_t(grid.levels.size()), n = int64_t(grid.rows.size()) * cols;
  std::vector<float> z(static_cast<size_t>(n)), labels(static_cast<size_t>(n * grid.classes));
  for (int64_t i = 0; i < n; ++i) {
    z[size_t(i)] = grid.levels[size_t(i % cols)];
    const std::vector<float>& row = grid.rows[size_t(i / cols)];
    std::copy(row.begin(), row.end(), labels.begin() + i * grid.classes);
  }
  const int64_t per_sample = gan.image().per_sample();
  Buffer<float> dz(ex, size_t(n)), images(ex, size_t(n * per_sample));
  copy_to_device(ex, dz.data(), z.data(), z.size() * sizeof(float));
  gan.generate_with_labels(ex, dz.data(), n, labels.data(), images.data());
  return images.download();
}

void write_supervised_grid(const Exec& ex, Gan& gan, const SupervisedGrid& grid, const std::string& path) {
  const std::vector<uint8_t> pixels = float_to_u8(draw_supervised_grid(ex, gan, grid));
  const Shape im = gan.image();
  const int n = int(grid.rows.size() * grid.levels.size()), cols = int(grid.levels.size());
  const GridShape shape = grid_shape(n, im.h, im.w, cols);
  write_png(path, make_grid(pixels.data(), n, im.h, im.w, im.c, cols).data(), shape.h, shape.w, im.c);
}

}  // namespace gancu
