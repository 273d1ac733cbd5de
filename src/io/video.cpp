// The video of a run's sample grids: MP4 through ffmpeg, or GIF through giflib. See
// include/gancu/video.h.
#include "gancu/video.h"

#include <fcntl.h>
#include <gif_lib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/subprocess.h"

namespace gancu {

namespace {

// What all frames need: the largest width and height, and whether any frame has colour.
struct FramesInfo {
  int w = 0, h = 0;
  bool colour = false;
};

FramesInfo frames_info(const std::vector<SampleFrame>& frames) {
  FramesInfo info;
  for (const SampleFrame& f : frames) {
    const Image im = read_png(f.path);  // a corrupt grid fails here, naming its file
    info.w = std::max(info.w, im.w);
    info.h = std::max(info.h, im.h);
    info.colour = info.colour || im.c >= 3;
  }
  return info;
}

// ffconcat quotes: a ' inside '...' is written as '\''.
std::string concat_quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string absolute_path(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) runtime_error("cannot resolve ", path, ": ", std::strerror(errno));
  return std::string(cwd) + "/" + path;
}

// Makes a finished temporary file durable and moves it over `out`; removes it on failure.
void fsync_and_rename(const std::string& temp, const std::string& out) {
  const int fd = ::open(temp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(temp.c_str(), out.c_str()) != 0) {
    const int err = errno;
    std::remove(temp.c_str());
    runtime_error(out, ": cannot write (rename from ", temp, "): ", std::strerror(err));
  }
}

const char* gif_error(int code) {
  const char* why = GifErrorString(code);
  return why ? why : "unknown giflib error";
}

int gif_append(GifFileType* gif, const GifByteType* data, int n) {
  auto* bytes = static_cast<std::vector<uint8_t>*>(gif->UserData);
  bytes->insert(bytes->end(), data, data + n);
  return n;
}

// Owns an encoder; closing it (on success or on an exception) frees giflib's state.
struct GifEncoder {
  GifFileType* gif = nullptr;
  std::string out;
  ~GifEncoder() {
    if (gif) EGifCloseFile(gif, nullptr);
  }
  void check(int rc, const char* what) {
    if (rc == GIF_ERROR) runtime_error(out, ": cannot encode GIF (", what, "): ", gif_error(gif->Error));
  }
};

}  // namespace

std::vector<SampleFrame> list_sample_frames(const std::string& run_dir) {
  std::vector<SampleFrame> frames;
  const std::string dir = run_dir + "/samples";
  for (const std::string& name : dir_entries(dir).value_or(std::vector<std::string>{})) {
    // step_<digits>.png
    if (name.size() < 10 || name.compare(0, 5, "step_") != 0 || name.compare(name.size() - 4, 4, ".png") != 0)
      continue;
    const std::string digits = name.substr(5, name.size() - 9);
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    if (!file_exists(dir + "/" + name)) continue;
    frames.push_back({std::stoll(digits), dir + "/" + name});
  }
  std::sort(frames.begin(), frames.end(), [](const SampleFrame& a, const SampleFrame& b) {
    return a.step < b.step || (a.step == b.step && a.path < b.path);
  });
  return frames;
}

std::string find_ffmpeg() {
  const char* env = std::getenv("GANCU_FFMPEG");
  return find_executable(env && *env ? env : "ffmpeg");
}

void write_mp4(const std::string& ffmpeg, const std::vector<SampleFrame>& frames, const std::string& out,
               double fps) {
  GANCU_CHECK(!frames.empty(), "write_mp4 without frames");
  const FramesInfo info = frames_info(frames);
  // yuv420p stores chroma at half resolution in both directions, so H.264 wants even sizes.
  const int w = (info.w + 1) / 2 * 2, h = (info.h + 1) / 2 * 2;

  // The concat demuxer's list, on ffmpeg's stdin: each grid shown for 1/fps seconds. Paths are
  // absolute and marked file: because the list itself comes from pipe:.
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.6f", 1.0 / fps);
  std::string list = "ffconcat version 1.0\n";
  for (const SampleFrame& f : frames)
    list += "file " + concat_quoted("file:" + absolute_path(f.path)) + "\nduration " + duration + "\n";

  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", fps);
  const std::string temp = out + ".tmp." + std::to_string(::getpid());
  const std::vector<std::string> args = {
      ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
      // input: the list from stdin
      "-protocol_whitelist", "file,pipe", "-f", "concat", "-safe", "0", "-i", "pipe:0",
      // pad every grid to the same even size at the top left, black around it
      "-vf", "pad=" + std::to_string(w) + ":" + std::to_string(h) + ":0:0:black,format=yuv420p", "-r", rate,
      "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", temp};
  ProcessResult r;
  try {
    r = run_process(args, list);
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
  if (!r.ok() || !file_exists(temp)) {
    std::remove(temp.c_str());
    runtime_error("cannot write ", out, ": ", ffmpeg, " ", r.status_text(),
                  r.err.empty() ? std::string() : ": " + last_lines(r.err));
  }
  fsync_and_rename(temp, out);
}

void write_gif(const std::vector<SampleFrame>& frames, const std::string& out, double fps) {
  GANCU_CHECK(!frames.empty(), "write_gif without frames");
  const FramesInfo info = frames_info(frames);
  if (info.w > 65535 || info.h > 65535)
    runtime_error(out, ": grids of ", info.h, "x", info.w, " are too large for GIF (65535 at most)");
  const int w = info.w, h = info.h;
  // GIF delays are in hundredths of a second; browsers treat delays under 2 as 10.
  const int delay = std::max(2, int(std::lround(100.0 / fps)));

  std::vector<uint8_t> bytes;
  GifEncoder enc;
  enc.out = out;
  int error = 0;
  enc.gif = EGifOpen(&bytes, gif_append, &error);
  if (!enc.gif) runtime_error(out, ": cannot start GIF encoder: ", gif_error(error));
  EGifSetGifVersion(enc.gif, true);  // GIF89a: needed for the delay and the loop
  enc.check(EGifPutScreenDesc(enc.gif, w, h, 8, 0, nullptr), "screen");
  // NETSCAPE2.0 application extension: loop count 0, i.e. forever.
  static const GifByteType kLoop[3] = {1, 0, 0};
  enc.check(EGifPutExtensionLeader(enc.gif, APPLICATION_EXT_FUNC_CODE), "loop");
  enc.check(EGifPutExtensionBlock(enc.gif, 11, "NETSCAPE2.0"), "loop");
  enc.check(EGifPutExtensionBlock(enc.gif, 3, kLoop), "loop");
  enc.check(EGifPutExtensionTrailer(enc.gif), "loop");

  std::vector<GifColorType> palette(256);
  std::vector<GifByteType> indices(size_t(w) * h);
  std::vector<GifByteType> red, green, blue;
  for (const SampleFrame& f : frames) {
    const Image im = read_png(f.path);
    // Channels 0..2 of each pixel (gray repeated for a gray image); padding stays black.
    auto channel = [&](int y, int x, int k) -> uint8_t {
      if (y >= im.h || x >= im.w) return 0;
      const uint8_t* p = &im.pixels[(size_t(y) * im.w + x) * im.c];
      return im.c >= 3 ? p[k] : p[0];
    };
    if (!info.colour) {
      for (int i = 0; i < 256; ++i) palette[i] = {GifByteType(i), GifByteType(i), GifByteType(i)};
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) indices[size_t(y) * w + x] = channel(y, x, 0);
    } else {
      red.resize(indices.size());
      green.resize(indices.size());
      blue.resize(indices.size());
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const size_t i = size_t(y) * w + x;
          red[i] = channel(y, x, 0);
          green[i] = channel(y, x, 1);
          blue[i] = channel(y, x, 2);
        }
      int size = 256;
      std::fill(palette.begin(), palette.end(), GifColorType{0, 0, 0});
      if (GifQuantizeBuffer(unsigned(w), unsigned(h), &size, red.data(), green.data(), blue.data(),
                            indices.data(), palette.data()) == GIF_ERROR)
        runtime_error(out, ": cannot reduce ", f.path, " to 256 colours (giflib's quantizer failed)");
    }
    GraphicsControlBlock gcb;
    gcb.DisposalMode = DISPOSE_DO_NOT;
    gcb.UserInputFlag = false;
    gcb.DelayTime = delay;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    const size_t ext_len = EGifGCBToExtension(&gcb, ext);
    enc.check(EGifPutExtension(enc.gif, GRAPHICS_EXT_FUNC_CODE, int(ext_len), ext), "frame delay");
    ColorMapObject* map = GifMakeMapObject(256, palette.data());
    if (!map) runtime_error(out, ": out of memory for a GIF palette");
    const int rc = EGifPutImageDesc(enc.gif, 0, 0, w, h, false, map);
    GifFreeMapObject(map);
    enc.check(rc, "frame");
    for (int y = 0; y < h; ++y) enc.check(EGifPutLine(enc.gif, &indices[size_t(y) * w], w), "frame");
  }
  GifFileType* gif = enc.gif;
  enc.gif = nullptr;
  if (EGifCloseFile(gif, &error) == GIF_ERROR) runtime_error(out, ": cannot finish GIF: ", gif_error(error));
  atomic_write(out, bytes);
}

std::string write_run_video(const std::string& run_dir, const VideoOptions& options) {
  if (!(options.fps > 0 && options.fps <= 100))
    usage_error("video: fps must be in (0, 100], got ", options.fps);
  if (!dir_exists(run_dir)) runtime_error(run_dir, ": no such run folder");
  const std::vector<SampleFrame> frames = list_sample_frames(run_dir);
  if (frames.empty()) runtime_error(run_dir, "/samples: no sample grids (step_N.png) to make a video of");
  const std::string ffmpeg = options.format == VideoFormat::Gif ? "" : find_ffmpeg();
  if (options.format == VideoFormat::Mp4 && ffmpeg.empty()) {
    const char* env = std::getenv("GANCU_FFMPEG");
    runtime_error("cannot write ", run_dir, "/samples.mp4: ffmpeg ",
                  env && *env ? "(GANCU_FFMPEG=" + std::string(env) + ") " : std::string(),
                  "not found; install it (apt-get install ffmpeg) or ask for a GIF");
  }
  if (!ffmpeg.empty()) {
    const std::string out = run_dir + "/samples.mp4";
    write_mp4(ffmpeg, frames, out, options.fps);
    return out;
  }
  const std::string out = run_dir + "/samples.gif";
  write_gif(frames, out, options.fps);
  return out;
}

}  // namespace gancu
