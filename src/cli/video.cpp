#include "gancu/video.h"

#include <iostream>
#include <memory>

#include "commands.h"
#include "gancu/check.h"

namespace gancu::cli {

void add_video(CLI::App& app) {
  struct Flags {
    std::string run, format = "auto";
    double fps = 4;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "video", "Make RUN/samples.mp4 (ffmpeg) or RUN/samples.gif from the run's sample grids, in step order");
  cmd->add_option("run", f->run, "Run folder")->required();
  cmd->add_option("--fps", f->fps, "Frames (grids) per second (default 4)");
  cmd->add_option(
      "--format", f->format,
      "auto (MP4 when ffmpeg is found, else GIF), mp4 or gif. $GANCU_FFMPEG names the ffmpeg binary");
  cmd->callback([f] {
    VideoOptions options;
    if (!(f->fps > 0 && f->fps <= 100)) usage_error("--fps: must be in (0, 100], got ", f->fps);
    options.fps = f->fps;
    if (f->format == "auto")
      options.format = VideoFormat::Auto;
    else if (f->format == "mp4")
      options.format = VideoFormat::Mp4;
    else if (f->format == "gif")
      options.format = VideoFormat::Gif;
    else
      usage_error("--format: must be auto, mp4 or gif, got ", f->format);
    const std::string out = write_run_video(f->run, options);
    std::cout << "wrote " << out << "\n";
  });
}

}  // namespace gancu::cli
