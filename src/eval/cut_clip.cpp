// Test-clip preparation as the HDTF authors describe it (github.com/MRzzm/HDTF README): split a source video
// by a time range, crop the fixed face window of xx_crop_wh.txt (given at the xx_resolution.txt height) and
// resize to 512 x 512; 25 fps, 16 kHz mono audio. Everything through emo's libav reader / writer and OpenCV
// (no ffmpeg CLI). Used by `emo cut` and scripts/hdtf/prepare.sh.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "emo/audio.h"
#include "emo/error.h"
#include "emo/eval.h"
#include "emo/video.h"

namespace emo::eval {

namespace fs = std::filesystem;

namespace {
// Removes a temporary file on scope exit.
struct TempFile {
  fs::path path;
  ~TempFile() {
    std::error_code ec;
    if (!path.empty()) fs::remove(path, ec);
  }
};
}  // namespace

CutClipResult cut_clip(const CutClipOptions& o) {
  if (o.fps <= 0) throw InputError(o.input + ": cut: fps must be > 0");
  if (o.size < 0 || o.size % 2) throw InputError(o.output + ": cut: size must be even (H.264 4:2:0)");
  video::VideoReader rd(o.input);
  const int W = rd.width(), H = rd.height();

  // Crop window in source pixels (scaled from the reference height, clamped, even sizes).
  CutClipResult res;
  cv::Rect win(0, 0, W, H);
  if (o.crop_w > 0 && o.crop_h > 0) {
    const double s = o.ref_height > 0 ? static_cast<double>(H) / o.ref_height : 1.0;
    int x = static_cast<int>(std::lround(o.crop_x * s)), y = static_cast<int>(std::lround(o.crop_y * s));
    int w = std::min(W, static_cast<int>(std::lround(o.crop_w * s)));
    int h = std::min(H, static_cast<int>(std::lround(o.crop_h * s)));
    x = std::max(0, std::min(x, W - w));
    y = std::max(0, std::min(y, H - h));
    win = cv::Rect(x, y, w, h);
  }
  if (o.size == 0) {  // keep the cropped size: H.264 4:2:0 needs even sides
    win.width -= win.width % 2;
    win.height -= win.height % 2;
  }
  if (win.width < 2 || win.height < 2) throw InputError(o.input + ": cut: empty crop window");
  res.crop_x = win.x, res.crop_y = win.y, res.crop_w = win.width, res.crop_h = win.height;
  res.width = o.size ? o.size : win.width;
  res.height = o.size ? o.size : win.height;

  // Audio: the clip's range at 16 kHz mono, as a WAV the writer re-encodes (and the generator reads).
  TempFile tmp_wav;
  std::string wav = o.audio_wav;
  if (rd.has_audio()) {
    audio::DecodeOptions ao;
    ao.sample_rate = 16000;
    ao.channels = 1;
    ao.max_duration_s = 0;  // raw HDTF sources can be long
    const auto a = audio::decode_audio(o.input, ao);
    const auto& pcm = a.planes.at(0);
    const int64_t n = static_cast<int64_t>(pcm.size());
    const int64_t b = std::clamp<int64_t>(std::llround(o.start_s * 16000), 0, n);
    const int64_t e = o.end_s > o.start_s ? std::clamp<int64_t>(std::llround(o.end_s * 16000), b, n) : n;
    if (e > b) {
      if (wav.empty()) {
        tmp_wav.path = fs::path(o.output).parent_path() /
                       (".emo_cut_" + std::to_string(::getpid()) + "_" + fs::path(o.output).stem().string() + ".wav");
        wav = tmp_wav.path.string();
      }
      audio::write_wav_pcm16(wav, std::vector<float>(pcm.begin() + b, pcm.begin() + e), 16000, 1);
      res.has_audio = true;
    }
  }

  video::VideoWriterOptions vo;
  vo.fps = o.fps;
  vo.crf = o.crf;
  if (res.has_audio) vo.audio_path = wav;
  std::unique_ptr<video::VideoWriter> w;

  // Frame k of the output shows the last source frame whose timestamp is <= start + k / fps.
  cv::Mat cur, prev;
  bool have_prev = false;
  int64_t k = 0;
  auto emit = [&](const cv::Mat& src) {
    cv::Mat crop = src(win), out;
    if (o.size)
      cv::resize(crop, out, cv::Size(o.size, o.size), 0, 0, cv::INTER_LANCZOS4);
    else
      out = crop.clone();
    if (!w) w = std::make_unique<video::VideoWriter>(o.output, out.cols, out.rows, vo);
    w->write(out);
    if (k == 0 && !o.first_frame_png.empty()) {
      cv::Mat bgr;
      cv::cvtColor(out, bgr, cv::COLOR_RGB2BGR);
      if (!cv::imwrite(o.first_frame_png, bgr)) throw OutputError(o.first_frame_png + ": cannot write image");
    }
    ++k;
  };
  const double end = o.end_s > o.start_s ? o.end_s : INFINITY;
  while (rd.read(cur)) {
    const double t = rd.timestamp();
    // Emit every output instant that falls before this frame: it shows the previous frame.
    while (have_prev && o.start_s + k / o.fps < t && o.start_s + k / o.fps < end - 1e-9) emit(prev);
    if (t >= end) break;
    prev = cur;
    have_prev = true;
  }
  // Output instants after the last decoded frame: up to the range end, at most one source frame duration past
  // the last frame (after a break on t >= end nothing is left).
  if (have_prev) {
    const double src_dt = 1.0 / (rd.fps() > 0 ? rd.fps() : o.fps);
    const double limit = std::min(end, rd.timestamp() + src_dt);
    while (o.start_s + k / o.fps < limit - 1e-9) emit(prev);
  }
  if (!w || k == 0) throw InputError(o.input + ": cut: no video frames in [" + std::to_string(o.start_s) + ", " +
                                     std::to_string(o.end_s) + ") s");
  w->finish();
  res.frames = k;
  return res;
}

}  // namespace emo::eval
