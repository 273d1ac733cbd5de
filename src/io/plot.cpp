// Charts of metrics.jsonl through gnuplot. See include/gancu/plot.h.
//
// gnuplot gets one self-contained program on stdin (each series is an inline datablock, so no
// data file is written) and writes the PNG to stdout; gancu checks it and writes it atomically.
#include "gancu/plot.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/subprocess.h"

namespace gancu {

namespace {

// The keys that are never drawn: the x axis, the columns that only restate others, and the
// evaluation's constant mode count (a flat line).
const std::set<std::string> kNotDrawn = {"step", "time_s", "steps_per_s", "eval/modes_total"};

struct FixedPanel {
  const char* title;
  std::vector<std::pair<const char*, const char*>> series;  // key, legend label
};
const std::vector<FixedPanel> kFixedPanels = {
    {"Losses", {{"loss_d", "loss D"}, {"loss_g", "loss G"}}},
    {"Discriminator outputs", {{"d_real", "D(x)"}, {"d_fake", "D(G(z))"}}},
    {"Throughput (images/s)", {{"images_per_s", "images/s"}}},
};

// A gnuplot single-quoted string: '' stands for one quote; control characters become spaces.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'')
      out += "''";
    else if (static_cast<unsigned char>(ch) < 0x20)
      out += ' ';
    else
      out += ch;
  }
  return out + "'";
}

std::string gnuplot_binary() {
  const char* env = std::getenv("GANCU_GNUPLOT");
  return env && *env ? env : "gnuplot";
}

}  // namespace

MetricsLog read_metrics_log(const std::string& path) {
  if (!file_exists(path)) {
    if (dir_exists(path)) runtime_error(path, ": is a folder, not a metrics.jsonl file");
    runtime_error(path, ": not found (the run has not logged any metrics yet, or this is not a run folder)");
  }
  const std::vector<uint8_t> bytes = read_file(path);
  const std::string text(bytes.begin(), bytes.end());
  MetricsLog log;
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const bool terminated = end != std::string::npos;
    if (!terminated) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // ordered_json keeps the members in file order: the panels of other metrics follow it.
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      if (!terminated) {  // the last line of a run that was stopped while writing it
        log.skipped_torn_line = true;
        break;
      }
      runtime_error(path, ":", line_no, ": not a JSON line: ", line.substr(0, 80));
    }
    if (!j.is_object())
      runtime_error(path, ":", line_no, ": expected a JSON object, got ", line.substr(0, 80));
    const auto step_it = j.find("step");
    if (step_it == j.end() || !step_it->is_number())
      runtime_error(path, ":", line_no, ": no numeric \"step\" in ", line.substr(0, 80));
    const double step_value = step_it->get<double>();
    if (step_value != std::floor(step_value) || std::fabs(step_value) > 9e15)
      runtime_error(path, ":", line_no, ": \"step\" is not an integer: ", step_it->dump());
    const int64_t step = static_cast<int64_t>(step_value);
    for (const auto& [key, value] : j.items()) {
      if (key == "step" || !value.is_number()) continue;
      const double v = value.get<double>();
      if (!std::isfinite(v)) continue;
      auto [it, inserted] = log.series.try_emplace(key);
      if (inserted) log.keys.push_back(key);
      it->second.emplace_back(step, v);
    }
    ++log.lines;
  }
  if (log.lines == 0)
    runtime_error(path, ": no metrics yet (",
                  log.skipped_torn_line ? "only an incomplete line" : "the file is empty", ")");
  return log;
}

std::vector<PlotPanel> plot_panels(const MetricsLog& log) {
  std::vector<PlotPanel> panels;
  std::set<std::string> used(kNotDrawn);
  for (const FixedPanel& fixed : kFixedPanels) {
    PlotPanel p;
    p.title = fixed.title;
    for (const auto& [key, label] : fixed.series) {
      used.insert(key);
      if (log.series.count(key)) {
        p.keys.push_back(key);
        p.labels.push_back(label);
      }
    }
    if (!p.keys.empty()) panels.push_back(p);
  }
  for (const std::string& key : log.keys) {
    if (used.count(key)) continue;
    panels.push_back({key, {key}, {key}});
  }
  return panels;
}

PlotSize plot_size(int panels) {
  GANCU_CHECK(panels > 0, "plot of ", panels, " panels");
  const int cols = std::min(panels, kPlotColumns);
  const int rows = (panels + kPlotColumns - 1) / kPlotColumns;
  return {cols * kPlotPanelWidth, rows * kPlotPanelHeight};
}

std::string gnuplot_script(const MetricsLog& log, const std::vector<PlotPanel>& panels,
                           const std::string& title) {
  GANCU_CHECK(!panels.empty(), "gnuplot_script without panels");
  const PlotSize size = plot_size(int(panels.size()));
  std::ostringstream s;
  // One datablock per series: a key logged only at some steps keeps its line unbroken.
  std::map<std::string, std::string> block;
  for (const PlotPanel& p : panels) {
    for (const std::string& key : p.keys) {
      if (block.count(key)) continue;
      const std::string name = "$s" + std::to_string(block.size());
      block[key] = name;
      s << name << " << EOD\n";
      char row[64];
      for (const auto& [step, v] : log.series.at(key)) {
        std::snprintf(row, sizeof row, "%lld %.9g\n", static_cast<long long>(step), v);
        s << row;
      }
      s << "EOD\n";
    }
  }
  // Every panel spans the same steps, so that the panels line up.
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (const auto& [key, points] : log.series)
    for (const auto& point : points) {
      first = std::min(first, point.first);
      last = std::max(last, point.first);
    }
  const int rows = (int(panels.size()) + kPlotColumns - 1) / kPlotColumns;
  const int cols = std::min(int(panels.size()), kPlotColumns);
  s << "set terminal pngcairo size " << size.w << "," << size.h << " noenhanced font 'sans,10'\n"
    << "set multiplot layout " << rows << "," << cols << " title " << quoted(title) << "\n"
    << "set grid\nset key tmargin right horizontal\nset xlabel 'step'\nset format y '%g'\n";
  if (last > first) s << "set xrange [" << first << ":" << last << "]\n";
  for (const PlotPanel& p : panels) {
    s << "set title " << quoted(p.title) << "\nplot ";
    for (size_t i = 0; i < p.keys.size(); ++i) {
      // A series of a few points (an evaluation metric) is drawn with its points marked.
      const bool few = log.series.at(p.keys[i]).size() <= 50;
      s << (i ? ", " : "") << block.at(p.keys[i]) << " using 1:2 with "
        << (few ? "linespoints pt 7 ps 0.6" : "lines") << " lw 1.5 title " << quoted(p.labels[i]);
    }
    s << "\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

std::string plot_run(const std::string& run_dir, const std::string& out_arg) {
  if (!dir_exists(run_dir)) runtime_error(run_dir, ": no such run folder");
  const MetricsLog log = read_metrics_log(run_dir + "/metrics.jsonl");
  const std::vector<PlotPanel> panels = plot_panels(log);
  if (panels.empty())
    runtime_error(run_dir, "/metrics.jsonl: nothing to plot (no numeric metrics besides the step)");
  const std::string out = out_arg.empty() ? run_dir + "/plots/metrics.png" : out_arg;
  if (out_arg.empty()) make_dirs(run_dir + "/plots");

  const std::string gnuplot = find_executable(gnuplot_binary());
  if (gnuplot.empty())
    runtime_error("cannot draw ", out, ": gnuplot (", gnuplot_binary(),
                  ") not found; install it (apt-get install gnuplot-nox) or set GANCU_GNUPLOT to its path");
  std::string title = path_basename(run_dir);
  while (title.empty() && run_dir.size() > 1) title = path_basename(run_dir.substr(0, run_dir.size() - 1));
  // -d: default settings, ignoring the user's ~/.gnuplot, so that every user gets the same chart.
  const ProcessResult r = run_process({gnuplot, "-d"}, gnuplot_script(log, panels, title));
  static const char kPngSignature[] = "\x89PNG\r\n\x1a\n";
  if (!r.ok() || r.out.size() < 8 || r.out.compare(0, 8, kPngSignature, 8) != 0)
    runtime_error("cannot draw ", out, ": gnuplot ", r.ok() ? "wrote no PNG" : r.status_text(),
                  r.err.empty() ? std::string() : ": " + last_lines(r.err));
  atomic_write(out, r.out.data(), r.out.size());
  return out;
}

}  // namespace gancu
