// Charts of metrics.jsonl: the reader (torn last line skipped, garbage refused with its line
// number), the panels, a PNG of the documented size that read_png reads, a missing gnuplot, and
// `gancu plot` exit codes.
#include "gancu/plot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/subprocess.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::ScopedEnv;
using testing_io::TempDir;
using testing_io::throws_with;

void write_text(const std::string& path, const std::string& text) {
  testing_io::write_raw(path, std::vector<uint8_t>(text.begin(), text.end()));
}

std::string training_lines(int n, bool with_fid) {
  std::string text;
  for (int i = 1; i <= n; ++i) {
    text += "{\"step\":" + std::to_string(10 * i) + ",\"loss_d\":" + std::to_string(1.0 + 0.01 * i) +
            ",\"loss_g\":" + std::to_string(0.7 + 0.02 * i) +
            ",\"d_real\":0.6,\"d_fake\":0.4,\"images_per_s\":" + std::to_string(1000 + i) +
            ",\"steps_per_s\":15.6,\"time_s\":" + std::to_string(0.5 * i);
    if (with_fid && i % 5 == 0)
      text += ",\"fid\":" + std::to_string(100 - i) + ",\"note\":\"text is ignored\"";
    text += "}\n";
  }
  return text;
}

bool have_gnuplot() {
  return !find_executable("gnuplot").empty();
}

TEST(MetricsLog, ReadsSeriesAndSkipsATornLastLine) {
  TempDir dir;
  write_text(dir / "m.jsonl", training_lines(10, true) + "\n{\"step\": 110, \"loss_d\": 0.");
  const MetricsLog log = read_metrics_log(dir / "m.jsonl");
  EXPECT_EQ(log.lines, 10);
  EXPECT_TRUE(log.skipped_torn_line);
  const std::vector<std::string> keys = {"loss_d",       "loss_g",      "d_real", "d_fake",
                                         "images_per_s", "steps_per_s", "time_s", "fid"};
  EXPECT_EQ(log.keys, keys);
  ASSERT_EQ(log.series.at("loss_d").size(), 10u);
  EXPECT_EQ(log.series.at("loss_d")[2].first, 30);
  EXPECT_DOUBLE_EQ(log.series.at("loss_d")[2].second, 1.03);
  // fid at steps 50 and 100 only; the string member is not a series.
  ASSERT_EQ(log.series.at("fid").size(), 2u);
  EXPECT_EQ(log.series.at("fid")[1], (std::pair<int64_t, double>{100, 90.0}));
  EXPECT_EQ(log.series.count("note"), 0u);
}

TEST(MetricsLog, NullValuesAreSkipped) {
  TempDir dir;
  write_text(dir / "m.jsonl", "{\"step\":1,\"loss_d\":null,\"loss_g\":2}\n{\"step\":2,\"loss_d\":1}\n");
  const MetricsLog log = read_metrics_log(dir / "m.jsonl");
  EXPECT_EQ(log.series.at("loss_d").size(), 1u);
  EXPECT_EQ(log.series.at("loss_g").size(), 1u);
}

TEST(MetricsLog, BadInputNamesTheFileAndLine) {
  TempDir dir;
  const std::string p = dir / "m.jsonl";
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p, "not found"}));
  write_text(p, "");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p, "empty"}));
  write_text(p, "{\"step\":1,\"lo");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p, "only an incomplete line"}));
  // Garbage that is not the last line, or a last line that ends with a newline, is an error.
  write_text(p, "{\"step\":1}\nnot json\n{\"step\":2}\n");
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p + ":2", "not a JSON line", "not json"}));
  write_text(p, "{\"step\":1}\n{\"step\":2,\n");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p + ":2"}));
  write_text(p, "[1, 2]\n");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p + ":1", "JSON object"}));
  write_text(p, "{\"loss_d\": 1}\n");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p + ":1", "step"}));
  write_text(p, "{\"step\": 1.5}\n");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(p); }, {p + ":1", "not an integer"}));
  make_dirs(dir / "d.jsonl");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_metrics_log(dir / "d.jsonl"); }, {"is a folder"}));
}

TEST(Plot, PanelsInOrderWithOneForEachOtherMetric) {
  TempDir dir;
  write_text(dir / "m.jsonl", training_lines(10, true));
  const std::vector<PlotPanel> panels = plot_panels(read_metrics_log(dir / "m.jsonl"));
  ASSERT_EQ(panels.size(), 4u);
  EXPECT_EQ(panels[0].keys, (std::vector<std::string>{"loss_d", "loss_g"}));
  EXPECT_EQ(panels[1].keys, (std::vector<std::string>{"d_real", "d_fake"}));
  EXPECT_EQ(panels[1].labels, (std::vector<std::string>{"D(x)", "D(G(z))"}));
  EXPECT_EQ(panels[2].keys, (std::vector<std::string>{"images_per_s"}));
  EXPECT_EQ(panels[3].keys, (std::vector<std::string>{"fid"}));
  // A log with only one of the fixed keys gets only that panel.
  write_text(dir / "n.jsonl", "{\"step\":1,\"loss_g\":2,\"time_s\":1}\n");
  const auto one = plot_panels(read_metrics_log(dir / "n.jsonl"));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].keys, std::vector<std::string>{"loss_g"});
  EXPECT_EQ(plot_size(1).w, kPlotPanelWidth);
  EXPECT_EQ(plot_size(3).h, 2 * kPlotPanelHeight);
  EXPECT_EQ(plot_size(4).w, 2 * kPlotPanelWidth);
}

TEST(Plot, ScriptQuotesTitlesAndKeepsDataInline) {
  MetricsLog log;
  log.keys = {"it's"};
  log.series["it's"] = {{1, 0.5}, {2, 0.25}};
  log.lines = 2;
  const std::string s = gnuplot_script(log, plot_panels(log), "run 'x'");
  EXPECT_NE(s.find("'it''s'"), std::string::npos) << s;
  EXPECT_NE(s.find("'run ''x'''"), std::string::npos) << s;
  EXPECT_NE(s.find("1 0.5\n2 0.25\nEOD"), std::string::npos) << s;
  EXPECT_EQ(s.find("set output"), std::string::npos) << "the PNG goes to stdout";
}

TEST(Plot, WritesAPngOfTheDocumentedSize) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (tools/setup.sh installs gnuplot-nox)";
  TempDir dir;
  const std::string run = dir / "run";
  make_dirs(run);
  write_text(run + "/metrics.jsonl", training_lines(30, true));
  const std::string out = plot_run(run);
  EXPECT_EQ(out, run + "/plots/metrics.png");
  const Image im = read_png(out);
  const PlotSize want = plot_size(4);
  EXPECT_EQ(im.w, want.w);
  EXPECT_EQ(im.h, want.h);
  EXPECT_EQ(im.w, 1280);
  EXPECT_EQ(im.h, 720);
  // Not a blank page: some pixels are drawn in a colour that is not the white background.
  size_t drawn = 0;
  for (size_t i = 0; i + 2 < im.pixels.size(); i += im.c) drawn += im.pixels[i] < 200;
  EXPECT_GT(drawn, 1000u);
  // An explicit output, and only the PNG is left behind (no temporary files).
  const std::string other = dir / "chart.png";
  EXPECT_EQ(plot_run(run, other), other);
  EXPECT_EQ(read_png(other).w, want.w);
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"chart.png", "run"}));
  // One panel for a log with a single series of one point.
  write_text(run + "/metrics.jsonl", "{\"step\":5,\"loss_g\":0.5}\n");
  const Image single = read_png(plot_run(run));
  EXPECT_EQ(single.w, kPlotPanelWidth);
  EXPECT_EQ(single.h, kPlotPanelHeight);
}

TEST(Plot, MissingGnuplotSaysHowToInstallIt) {
  TempDir dir;
  write_text(dir / "metrics.jsonl", training_lines(3, false));
  ScopedEnv gnuplot("GANCU_GNUPLOT", "/nonexistent/gnuplot");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { plot_run(dir.path()); },
                                        {"gnuplot", "/nonexistent/gnuplot", "apt-get install gnuplot-nox"}));
  EXPECT_FALSE(file_exists(dir / "plots/metrics.png"));
}

TEST(Plot, FailingGnuplotLeavesNoFile) {
  TempDir dir;
  write_text(dir / "metrics.jsonl", training_lines(3, false));
  write_text(dir / "fake_gnuplot", "#!/bin/sh\ncat >/dev/null\necho 'gnuplot broke' >&2\nexit 1\n");
  ::chmod((dir / "fake_gnuplot").c_str(), 0755);
  ScopedEnv gnuplot("GANCU_GNUPLOT", (dir / "fake_gnuplot").c_str());
  EXPECT_TRUE(throws_with<RuntimeError>([&] { plot_run(dir.path()); }, {"exit status 1", "gnuplot broke"}));
  EXPECT_TRUE(dir.entries() == (std::vector<std::string>{"fake_gnuplot", "metrics.jsonl", "plots"}));
}

TEST(Plot, RunFolderErrors) {
  TempDir dir;
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { plot_run(dir / "nope"); }, {dir / "nope", "no such run folder"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { plot_run(dir.path()); }, {"metrics.jsonl", "not found"}));
  write_text(dir / "metrics.jsonl", "{\"step\":1}\n{\"step\":2}\n");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { plot_run(dir.path()); }, {"nothing to plot"}));
}

TEST(Plot, CommandLine) {
  TempDir dir;
  const auto gancu = [](std::vector<std::string> args) {
    args.insert(args.begin(), GANCU_BINARY);
    return run_process(args);
  };
  ProcessResult r = gancu({"plot", dir / "nope"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no such run folder"), std::string::npos) << r.err;
  r = gancu({"plot"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = gancu({"plot", dir.path(), "--frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (tools/setup.sh installs gnuplot-nox)";
  write_text(dir / "metrics.jsonl", training_lines(5, false));
  r = gancu({"plot", dir.path(), "--out", dir / "x.png"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + dir / "x.png"), std::string::npos) << r.out;
  EXPECT_EQ(read_png(dir / "x.png").h, kPlotPanelHeight * 2);
}

}  // namespace
}  // namespace gancu
