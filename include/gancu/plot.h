// Charts of a run's metrics.jsonl as one PNG, drawn by gnuplot (Debian's gnuplot-nox, pngcairo
// terminal): `gancu plot RUN`.
//
// Panels, in this order, each present when the run logged its keys:
//   "Losses"                loss_d and loss_g
//   "Discriminator outputs" d_real (D(x)) and d_fake (D(G(z)))
//   "Throughput"            images_per_s
//   one panel per other numeric key (evaluation metrics such as fid), titled by the key.
// step, time_s and steps_per_s (images_per_s / batch) are not drawn. All panels share the x axis
// (training step) and are laid out two per row, each kPlotPanelWidth x kPlotPanelHeight pixels.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gancu {

// The numeric series of a metrics.jsonl: for each key, the (step, value) points of the lines
// that carry it as a number (a key logged only at evaluation steps has fewer points).
struct MetricsLog {
  std::vector<std::string> keys;  // in order of first appearance, "step" excluded
  std::map<std::string, std::vector<std::pair<int64_t, double>>> series;
  int64_t lines = 0;  // lines read (a torn last line is not counted)
  bool skipped_torn_line = false;
};

// Reads a metrics.jsonl. Each non-empty line must be a JSON object with an integer "step"; other
// members that are numbers become points, anything else (strings, null for NaN, objects) is
// ignored. A last line that does not parse and is not terminated by a newline is an interrupted
// write and is skipped; any other line that does not parse is a RuntimeError naming the file and
// the line number. A missing file, or one without any line, is a RuntimeError.
MetricsLog read_metrics_log(const std::string& path);

struct PlotPanel {
  std::string title;
  std::vector<std::string> keys;    // the series drawn in it
  std::vector<std::string> labels;  // their legend labels
};

// The panels for a log, in the order described above.
std::vector<PlotPanel> plot_panels(const MetricsLog& log);

constexpr int kPlotPanelWidth = 640;
constexpr int kPlotPanelHeight = 360;
constexpr int kPlotColumns = 2;

// The size of the PNG for `panels` panels: min(panels, 2) columns, ceil(panels / 2) rows.
struct PlotSize {
  int w = 0, h = 0;
};
PlotSize plot_size(int panels);

// The gnuplot program that draws `log` to stdout as PNG (data inline, nothing else read).
std::string gnuplot_script(const MetricsLog& log, const std::vector<PlotPanel>& panels,
                           const std::string& title);

// Draws RUN/metrics.jsonl into `out` (default RUN/plots/metrics.png; its folder is created) and
// returns the path written. The PNG is written atomically. Errors are RuntimeErrors: no such run
// folder, no or bad metrics.jsonl, gnuplot missing (the message says how to install it) or failing
// (its message is included). The gnuplot binary is $GANCU_GNUPLOT when set, else gnuplot in $PATH.
std::string plot_run(const std::string& run_dir, const std::string& out = "");

}  // namespace gancu
