// The run's video: frames in step order, an MP4 that ffprobe measures (where ffmpeg is installed),
// a GIF that giflib reads back when ffmpeg is hidden with GANCU_FFMPEG, and errors that leave no
// file behind. Also `gancu video`.
#include "gancu/video.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

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

// A run folder with grids of h x w x c at the given steps; frame i is filled with value(i).
std::string make_run(const TempDir& dir, const std::vector<int64_t>& steps, int h, int w, int c) {
  const std::string run = dir / "run";
  make_dirs(run + "/samples");
  for (size_t i = 0; i < steps.size(); ++i) {
    std::vector<uint8_t> pixels(size_t(h) * w * c);
    for (size_t p = 0; p < pixels.size(); ++p)
      pixels[p] = c == 1 ? uint8_t(40 + 80 * i) : uint8_t(p % c == 0 ? 200 : p % c == 1 ? 60 * i : 30);
    char name[64];
    std::snprintf(name, sizeof name, "/samples/step_%06lld.png", (long long)steps[i]);
    write_png(run + name, pixels.data(), h, w, c);
  }
  return run;
}

// The entries of a folder, sorted: to check that nothing else (no temporary file) was left.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct GifFrames {
  int w = 0, h = 0;
  std::vector<std::vector<uint8_t>> rgb;  // each [h, w, 3]
  std::vector<int> delays;
};

GifFrames read_gif(const std::string& path) {
  GifFrames out;
  int err = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &err);
  if (!gif) {
    ADD_FAILURE() << path << ": " << GifErrorString(err);
    return out;
  }
  if (DGifSlurp(gif) != GIF_OK) {
    ADD_FAILURE() << path << ": " << GifErrorString(gif->Error);
    DGifCloseFile(gif, &err);
    return out;
  }
  out.w = gif->SWidth;
  out.h = gif->SHeight;
  for (int f = 0; f < gif->ImageCount; ++f) {
    const SavedImage& im = gif->SavedImages[f];
    const ColorMapObject* map = im.ImageDesc.ColorMap ? im.ImageDesc.ColorMap : gif->SColorMap;
    std::vector<uint8_t> rgb(size_t(out.w) * out.h * 3);
    for (int i = 0; i < im.ImageDesc.Width * im.ImageDesc.Height; ++i) {
      const GifColorType col = map->Colors[im.RasterBits[i]];
      rgb[3 * i] = col.Red;
      rgb[3 * i + 1] = col.Green;
      rgb[3 * i + 2] = col.Blue;
    }
    out.rgb.push_back(rgb);
    GraphicsControlBlock gcb;
    DGifSavedExtensionToGCB(gif, f, &gcb);
    out.delays.push_back(gcb.DelayTime);
  }
  DGifCloseFile(gif, &err);
  return out;
}

TEST(Video, FramesInStepOrder) {
  TempDir dir;
  const std::string run = make_run(dir, {1000000, 50, 999999, 700}, 4, 4, 1);
  testing_io::write_raw(run + "/samples/step_abc.png", {1});
  testing_io::write_raw(run + "/samples/notes.txt", {1});
  testing_io::write_raw(run + "/samples/step_000001.png.tmp.123", {1});
  const std::vector<SampleFrame> frames = list_sample_frames(run);
  std::vector<int64_t> steps;
  for (const auto& f : frames) steps.push_back(f.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{50, 700, 999999, 1000000}));
  EXPECT_EQ(frames[0].path, run + "/samples/step_000050.png");
  EXPECT_TRUE(list_sample_frames(dir / "nowhere").empty());
}

TEST(Video, Mp4ThroughFfmpeg) {
  const std::string ffmpeg = find_ffmpeg();
  const std::string ffprobe = find_executable("ffprobe");
  if (ffmpeg.empty() || ffprobe.empty())
    GTEST_SKIP() << "ffmpeg/ffprobe are not installed (tools/setup.sh installs ffmpeg)";
  TempDir dir;
  const std::string run = make_run(dir, {100, 200, 300}, 29, 31, 3);  // odd sizes: padded to even
  VideoOptions options;
  options.fps = 4;
  EXPECT_EQ(write_run_video(run, options), run + "/samples.mp4");
  const ProcessResult r =
      run_process({ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                   "stream=codec_name,pix_fmt,width,height,nb_read_frames", "-show_entries",
                   "format=duration", "-of", "default=noprint_wrappers=1", run + "/samples.mp4"});
  ASSERT_TRUE(r.ok()) << r.err;
  for (const char* want :
       {"codec_name=h264", "pix_fmt=yuv420p", "width=32", "height=30", "nb_read_frames=3", "duration=0.75"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in:\n" << r.out;
  // Nothing but the video was added to the run folder.
  EXPECT_EQ(names_in(run), (std::vector<std::string>{"samples", "samples.mp4"}));
}

TEST(Video, GifWhenFfmpegIsMissingGray) {
  TempDir dir;
  const std::string run = make_run(dir, {30, 10, 20}, 5, 7, 1);
  ScopedEnv no_ffmpeg("GANCU_FFMPEG", "/nonexistent/ffmpeg");
  EXPECT_EQ(find_ffmpeg(), "");
  VideoOptions options;
  options.fps = 5;
  EXPECT_EQ(write_run_video(run, options), run + "/samples.gif");
  EXPECT_FALSE(file_exists(run + "/samples.mp4"));
  const GifFrames gif = read_gif(run + "/samples.gif");
  EXPECT_EQ(gif.w, 7);
  EXPECT_EQ(gif.h, 5);
  ASSERT_EQ(gif.rgb.size(), 3u);
  // Gray maps exactly; frames in step order (10, 20, 30 were written as frames 1, 2, 0).
  const uint8_t want[3] = {120, 200, 40};
  for (int f = 0; f < 3; ++f) {
    EXPECT_EQ(gif.rgb[f][0], want[f]) << "frame " << f;
    EXPECT_EQ(gif.rgb[f][3 * 34 + 2], want[f]) << "frame " << f;
    EXPECT_EQ(gif.delays[f], 20);  // 1/5 s in hundredths
  }
  EXPECT_EQ(names_in(run), (std::vector<std::string>{"samples", "samples.gif"}));
}

TEST(Video, GifOfColourGridsPaddedToTheLargest) {
  TempDir dir;
  const std::string run = make_run(dir, {1, 2}, 6, 6, 3);
  {
    // A third, larger grid: the others are padded with black at the bottom right.
    std::vector<uint8_t> pixels(8 * 9 * 3, 0);
    for (size_t p = 0; p < pixels.size(); p += 3) pixels[p + 2] = 250;  // blue
    write_png(run + "/samples/step_000003.png", pixels.data(), 8, 9, 3);
  }
  VideoOptions options;
  options.format = VideoFormat::Gif;
  EXPECT_EQ(write_run_video(run, options), run + "/samples.gif");
  const GifFrames gif = read_gif(run + "/samples.gif");
  EXPECT_EQ(gif.w, 9);
  EXPECT_EQ(gif.h, 8);
  ASSERT_EQ(gif.rgb.size(), 3u);
  auto px = [&](int f, int y, int x, int k) { return int(gif.rgb[f][(size_t(y) * gif.w + x) * 3 + k]); };
  // Frame 1 (step 2): (200, 60, 30) inside, black in the padding. A frame with few colours keeps
  // them within the quantizer's rounding.
  EXPECT_NEAR(px(1, 2, 2, 0), 200, 8);
  EXPECT_NEAR(px(1, 2, 2, 1), 60, 8);
  EXPECT_NEAR(px(1, 2, 2, 2), 30, 8);
  EXPECT_EQ(px(1, 7, 8, 0) + px(1, 7, 8, 1) + px(1, 7, 8, 2), 0);
  EXPECT_NEAR(px(2, 7, 8, 2), 250, 8);
}

TEST(Video, Errors) {
  TempDir dir;
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { write_run_video(dir / "nope"); }, {dir / "nope", "no such run"}));
  make_dirs(dir / "empty/samples");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_run_video(dir / "empty"); }, {"no sample grids"}));
  const std::string run = make_run(dir, {1, 2}, 4, 4, 1);
  testing_io::write_raw(run + "/samples/step_000003.png", {'n', 'o', 't'});
  VideoOptions gif;
  gif.format = VideoFormat::Gif;
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_run_video(run, gif); }, {"step_000003.png"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_run_video(run); }, {"step_000003.png"}));
  EXPECT_EQ(names_in(run), std::vector<std::string>{"samples"});
  std::remove((run + "/samples/step_000003.png").c_str());
  VideoOptions bad_fps;
  bad_fps.fps = 0;
  EXPECT_TRUE(throws_with<UsageError>([&] { write_run_video(run, bad_fps); }, {"fps"}));
  {
    ScopedEnv no_ffmpeg("GANCU_FFMPEG", "none");
    VideoOptions mp4;
    mp4.format = VideoFormat::Mp4;
    EXPECT_TRUE(throws_with<RuntimeError>([&] { write_run_video(run, mp4); },
                                          {"samples.mp4", "GANCU_FFMPEG=none", "not found"}));
  }
  {
    // An ffmpeg that fails after writing half a file: the error carries its message, and neither
    // the half file nor a samples.mp4 is left.
    testing_io::write_raw(dir / "bad_ffmpeg", {});
    const std::string script =
        "#!/bin/sh\ncat >/dev/null\nfor a; do out=$a; done\necho partial > \"$out\"\necho 'Unknown encoder' "
        ">&2\nexit 1\n";
    testing_io::write_raw(dir / "bad_ffmpeg", std::vector<uint8_t>(script.begin(), script.end()));
    ::chmod((dir / "bad_ffmpeg").c_str(), 0755);
    ScopedEnv fake("GANCU_FFMPEG", (dir / "bad_ffmpeg").c_str());
    EXPECT_TRUE(throws_with<RuntimeError>([&] { write_run_video(run); },
                                          {"samples.mp4", "exit status 1", "Unknown encoder"}));
    EXPECT_EQ(names_in(run), std::vector<std::string>{"samples"});
  }
}

TEST(Video, CommandLine) {
  TempDir dir;
  const std::string run = make_run(dir, {1, 2, 3}, 4, 6, 1);
  const auto gancu = [](std::vector<std::string> args) {
    args.insert(args.begin(), GANCU_BINARY);
    return run_process(args);
  };
  ProcessResult r = gancu({"video", run, "--format", "gif", "--fps", "10"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("samples.gif"), std::string::npos) << r.out;
  EXPECT_EQ(read_gif(run + "/samples.gif").delays.at(0), 10);
  r = gancu({"video", run, "--format", "webm"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--format"), std::string::npos) << r.err;
  r = gancu({"video", run, "--fps", "-1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = gancu({"video", dir / "missing"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

}  // namespace
}  // namespace gancu
