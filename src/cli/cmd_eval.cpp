// emo eval --pred A [--ref B] [--metrics ...] [--weights DIR] [--json OUT]: the papers' metrics (FID, FVD,
// Sync-C/D, SSIM, PSNR) computed like the reference tools (include/emo/eval.h, docs/eval.md).
//
// Inputs: a clip is a folder of frame images (sorted by name; what pytorch-fid reads) or a video file.
// Folder mode: when --pred is a folder of clips (sub-folders or video files), each prediction is paired with
// the reference of the same name (stem) in --ref; FID / FVD are computed over the whole set, SSIM / PSNR over
// all frames, Sync-C / Sync-D averaged over clips.
//
// Video FILES are decoded with emo::video::VideoReader when include/emo/video.h exists (gate below; the
// `video` branch); without it they are rejected with a clear message. TODO(audio issue): the audio track
// (emo::audio::decode_audio -> eval::pcm_float_to_s16) is not wired yet, so Sync-C/D are unavailable from the
// CLI (the library path is complete).
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "emo/error.h"
#include "emo/eval.h"
#include "util/atomic_file.h"

// Transitional gate: video files are decoded once the video reader (include/emo/video.h, `video` branch) is
// on the branch being built; audio (Sync-C/D from the CLI) still waits for the `audio` branch's decoder.
#if __has_include("emo/video.h")
#include "emo/video.h"
#define EMO_EVAL_HAS_VIDEO_READER 1
#endif

namespace emo::cli {

namespace fs = std::filesystem;

namespace {

struct EvalCliOptions {
  std::string pred, ref, weights, json_out;
  std::vector<std::string> metrics;
  std::string ssim = "skimage", psnr = "skimage", sync = "wav2lip", fvd = "common_metrics";
  double fps = 25.0;
  int fvd_frames = 16;
};

bool is_image(const fs::path& p) {
  static const std::set<std::string> exts = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return exts.count(e) != 0;
}

bool is_video(const fs::path& p) {
  static const std::set<std::string> exts = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return exts.count(e) != 0;
}

// True when `dir` directly holds frame images (then it is ONE clip).
bool is_frame_folder(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_image(e.path())) return true;
  return false;
}

eval::Clip load_frame_folder(const fs::path& dir, double fps) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_image(e.path())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw InputError(dir.string() + ": no frame images");
  std::vector<at::Tensor> frames;
  for (const auto& f : files) {
    cv::Mat bgr = cv::imread(f.string(), cv::IMREAD_COLOR);
    if (bgr.empty()) throw InputError(f.string() + ": cannot read image");
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);  // PIL .convert("RGB") order
    auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
    if (!frames.empty() && t.sizes() != frames.front().sizes())
      throw InputError(f.string() + ": frame size differs from the first frame of " + dir.string());
    frames.push_back(t);
  }
  eval::Clip c;
  c.name = dir.filename().string();
  c.frames_rgb = torch::stack(frames);  // [T, H, W, 3]
  c.fps = fps;
  return c;
}

eval::Clip load_clip(const fs::path& p, double fps) {
  if (!fs::exists(p)) throw InputError(p.string() + ": no such file or directory");
  if (fs::is_directory(p)) return load_frame_folder(p, fps);
#ifdef EMO_EVAL_HAS_VIDEO_READER
  {
    video::VideoReader rd(p.string());
    std::vector<at::Tensor> frames;
    cv::Mat rgb;
    while (rd.read(rgb)) {
      if (!rgb.isContinuous()) rgb = rgb.clone();
      frames.push_back(torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone());
    }
    if (frames.empty()) throw InputError(p.string() + ": no video frames");
    eval::Clip c;
    c.name = p.stem().string();
    c.frames_rgb = torch::stack(frames);  // [T, H, W, 3] RGB
    c.fps = rd.fps() > 0 ? rd.fps() : fps;
    // TODO(audio issue): c.audio_s16 = eval::pcm_float_to_s16(mono 16 kHz samples of emo::audio::decode_audio)
    if (rd.has_audio()) spdlog::warn("{}: audio decoding for Sync-C/D is not wired yet (audio branch)", p.string());
    return c;
  }
#endif
  // TODO(video/audio issues): once those branches are on main, decode video files here:
  //   emo::video::VideoReader rd(path): frames_rgb = stack(read_all()) [T, H, W, 3], fps = rd.fps();
  //   if rd.has_audio(): emo::audio::decode_audio(path, {16000, 1}) -> planes[0] ->
  //   eval::pcm_float_to_s16(...) (int16 scale, as `ffmpeg -ac 1 -ar 16000 -acodec pcm_s16le`), audio_rate 16000.
  // Frame folders may then also take their audio from a --audio file the same way.
  throw NotImplementedError(p.string() +
                            ": reading video files needs the libav video/audio decoders, which are not merged yet; "
                            "pass a folder of frame images instead");
}

// Clips under a folder-mode root: sub-folders of frames and video files, keyed by stem.
std::map<std::string, fs::path> list_clips(const fs::path& root) {
  std::map<std::string, fs::path> out;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() || (e.is_regular_file() && is_video(e.path()))) out[e.path().stem().string()] = e.path();
  }
  return out;
}

template <typename E>
E parse_variant(const std::string& v, const std::map<std::string, E>& table, const char* what) {
  auto it = table.find(v);
  if (it == table.end()) {
    std::string names;
    for (const auto& kv : table) names += (names.empty() ? "" : ", ") + kv.first;
    throw UsageError(std::string("--") + what + ": unknown variant '" + v + "' (" + names + ")");
  }
  return it->second;
}

int run_eval(const EvalCliOptions& o) {
  eval::EvalOptions eo;
  if (!o.metrics.empty()) eo.metrics = o.metrics;
  eo.weights_dir = o.weights;
  eo.ssim_variant = parse_variant<eval::SsimVariant>(
      o.ssim,
      {{"skimage", eval::SsimVariant::kSkimage},
       {"skimage_gaussian", eval::SsimVariant::kSkimageGaussian},
       {"skimage_gray", eval::SsimVariant::kSkimageGray},
       {"common_metrics", eval::SsimVariant::kCommonMetrics}},
      "ssim");
  eo.psnr_variant = parse_variant<eval::PsnrVariant>(
      o.psnr, {{"skimage", eval::PsnrVariant::kSkimage}, {"common_metrics", eval::PsnrVariant::kCommonMetrics}}, "psnr");
  eo.sync_variant = parse_variant<eval::SyncVariant>(
      o.sync, {{"wav2lip", eval::SyncVariant::kWav2Lip}, {"syncnet_python", eval::SyncVariant::kSyncnetPython}},
      "sync");
  eo.fvd_variant = parse_variant<eval::FvdVariant>(
      o.fvd, {{"common_metrics", eval::FvdVariant::kCommonMetrics}, {"styleganv", eval::FvdVariant::kStyleganV}},
      "fvd");
  eo.fvd_frames = o.fvd_frames;

  const fs::path pred(o.pred);
  if (!fs::exists(pred)) throw InputError(o.pred + ": no such file or directory");
  if (!o.ref.empty() && !fs::exists(o.ref)) throw InputError(o.ref + ": no such file or directory");

  eval::Evaluator ev(eo);
  const bool folder_mode = fs::is_directory(pred) && !is_frame_folder(pred);
  if (!folder_mode) {
    auto p = load_clip(pred, o.fps);
    if (o.ref.empty()) {
      ev.add(p, nullptr);
    } else {
      auto r = load_clip(o.ref, o.fps);
      ev.add(p, &r);
    }
  } else {
    auto preds = list_clips(pred);
    if (preds.empty()) throw InputError(o.pred + ": no clips (frame folders or videos) found");
    std::map<std::string, fs::path> refs;
    if (!o.ref.empty()) {
      if (!fs::is_directory(o.ref)) throw UsageError("--ref must be a folder when --pred is a folder of clips");
      refs = list_clips(o.ref);
    }
    for (const auto& [name, path] : preds) {
      auto p = load_clip(path, o.fps);
      auto it = refs.find(name);
      if (!o.ref.empty() && it == refs.end()) spdlog::warn("{}: no reference named '{}' in {}", path.string(), name, o.ref);
      if (it == refs.end()) {
        ev.add(p, nullptr);
      } else {
        auto r = load_clip(it->second, o.fps);
        ev.add(p, &r);
      }
    }
  }
  auto report = ev.finish();
  const std::string json = report.to_json();
  if (!o.json_out.empty()) {
    util::AtomicFile f(o.json_out);
    f.write(json.data(), json.size());
    f.write("\n", 1);
    f.commit();
  }
  for (const auto& m : report.metrics) {
    if (m.available)
      std::printf("%-7s %12.6f  (%s)\n", m.name.c_str(), m.value, m.variant.c_str());
    else
      std::printf("%-7s %12s  (%s)\n", m.name.c_str(), "unavailable", m.reason.c_str());
  }
  return 0;
}

}  // namespace

Run add_eval(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<EvalCliOptions>();
  auto* sub = app.add_subcommand("eval", "Compute FID, FVD, Sync-C/D, SSIM, PSNR of generated videos like the papers' reference tools");
  sub->add_option("--pred", o->pred, "Generated clip (folder of frames or video), or a folder of clips")->required();
  sub->add_option("--ref", o->ref, "Reference clip, or a folder of clips paired with --pred by name");
  sub->add_option("--metrics", o->metrics, "Metrics to compute: fid fvd sync ssim psnr (default: all)")->delimiter(',');
  sub->add_option("--weights", o->weights,
                  std::string("Folder with the metric weights: ") + eval::kFidWeightsFile + ", " + eval::kSyncWeightsFile +
                      ", " + eval::kI3dWeightsFile);
  sub->add_option("--json", o->json_out, "Write the results as JSON to this file");
  sub->add_option("--ssim", o->ssim, "SSIM variant: skimage, skimage_gaussian, skimage_gray, common_metrics")->capture_default_str();
  sub->add_option("--psnr", o->psnr, "PSNR variant: skimage, common_metrics")->capture_default_str();
  sub->add_option("--sync", o->sync, "Sync-C/D variant: wav2lip (frames resized to 224), syncnet_python")->capture_default_str();
  sub->add_option("--fvd", o->fvd, "FVD variant: common_metrics (unbiased cov), styleganv (biased cov)")->capture_default_str();
  sub->add_option("--fvd-frames", o->fvd_frames, "Frames per clip for FVD (>= 10)")->capture_default_str();
  sub->add_option("--fps", o->fps, "Frame rate of frame folders")->capture_default_str();
  return [o] { return run_eval(*o); };
}

}  // namespace emo::cli
