// A video of a run's fixed-noise sample grids, RUN/samples/step_*.png in step order: how the
// generator learned, at a glance.
//
// With ffmpeg: RUN/samples.mp4 (H.264 via libx264, yuv420p so that every player shows it, the
// frames padded with black to even width and height, which yuv420p needs). The ffmpeg binary is
// $GANCU_FFMPEG when set and non-empty (a path or a name in $PATH), else ffmpeg in $PATH; when it
// names no executable (e.g. GANCU_FFMPEG=none), ffmpeg counts as missing.
// Without ffmpeg: RUN/samples.gif through giflib, looping. Gray grids use a 256-level gray
// palette (exact); colour grids are reduced to 256 colours per frame by giflib's median-cut
// quantizer (GifQuantizeBuffer), each frame with its own palette. Frames of different sizes are
// padded with black to the largest.
//
// Files are written to a temporary name and renamed, so a failure never leaves a half-written
// video; the other format's file, if any, is left as it is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gancu {

struct SampleFrame {
  int64_t step = 0;
  std::string path;
};

// RUN/samples/step_<N>.png files, sorted by N as a number (step_1000000 after step_999999).
// Other files are ignored. A missing samples folder gives an empty list.
std::vector<SampleFrame> list_sample_frames(const std::string& run_dir);

enum class VideoFormat { Auto, Mp4, Gif };

struct VideoOptions {
  double fps = 4;                          // frames per second, in (0, 100]
  VideoFormat format = VideoFormat::Auto;  // Auto: MP4 when ffmpeg is found, else GIF
};

// The ffmpeg binary to use, or "" when there is none (see above).
std::string find_ffmpeg();

// Writes RUN/samples.mp4 or RUN/samples.gif and returns its path. RuntimeErrors: no such run
// folder, no sample grids, an unreadable grid (names the file), ffmpeg failing (its message is
// included), Mp4 asked for without ffmpeg, a failed write.
std::string write_run_video(const std::string& run_dir, const VideoOptions& options = {});

// The pieces, for tests and other callers: an MP4 or a GIF of `frames` at `out`.
void write_mp4(const std::string& ffmpeg, const std::vector<SampleFrame>& frames, const std::string& out,
               double fps);
void write_gif(const std::vector<SampleFrame>& frames, const std::string& out, double fps);

}  // namespace gancu
