// emo eval --pred A [--ref B] [--metrics ...] [--weights DIR] [--json OUT] [--baseline B.json]: the papers' metrics
// (FID, FVD, Sync-C/D, SSIM, PSNR, F-SIM) computed like the reference tools (include/emo/eval.h, docs/eval.md).
//
// Inputs: a clip is a folder of frame images (sorted by name; what pytorch-fid reads) or a video file.
// Folder mode: when --pred is a folder of clips (sub-folders or video files), each prediction is paired with
// the reference of the same name (stem) in --ref; FID / FVD are computed over the whole set, SSIM / PSNR over
// all frames, Sync-C / Sync-D averaged over clips.
//
// Video files are decoded with emo::video::VideoReader; their audio track (Sync-C/D) with
// emo::audio::decode_audio at 16 kHz mono, rounded to int16 like `ffmpeg -acodec pcm_s16le`.
//
// emo eval --result R.json --baseline B.json: regression check only (no decoding); with --pred, the fresh
// result is checked. Exit code 7 when a metric regressed (docs/hdtf.md).
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
#include <fstream>

#include "emo/audio.h"
#include "emo/error.h"
#include "emo/eval.h"
#include "emo/image.h"
#include "emo/video.h"
#include "util/atomic_file.h"

namespace emo::cli {

namespace fs = std::filesystem;

namespace {

constexpr int kRegressionExit = 7;  // docs/exit-codes.md

struct EvalCliOptions {
  std::string pred, ref, weights, json_out, audio, ref_image, face_models, baseline, result;
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
    cv::Mat rgb = image::load_rgb(f.string());  // strict decoding, EXIF orientation as cv2.imread; RGB as PIL
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

// The reference's `ffmpeg -ac 1 -ar 16000 -acodec pcm_s16le` audio: 16 kHz mono, int16 scale.
void load_audio(eval::Clip& c, const std::string& path) {
  audio::DecodeOptions ao;
  ao.sample_rate = 16000;
  ao.channels = 1;
  auto a = audio::decode_audio(path, ao);
  auto& pcm = a.planes.at(0);
  c.audio_s16 = eval::pcm_float_to_s16(
      torch::from_blob(pcm.data(), {static_cast<int64_t>(pcm.size())}, torch::kFloat32).clone());
  c.audio_rate = 16000;
}

// `with_audio`: decode the audio track too (only the prediction's is used, for Sync-C/D).
eval::Clip load_clip(const fs::path& p, double fps, bool with_audio, const std::string& audio_override = {}) {
  if (!fs::exists(p)) throw InputError(p.string() + ": no such file or directory");
  eval::Clip c;
  if (fs::is_directory(p)) {
    c = load_frame_folder(p, fps);
  } else {
    video::VideoReader rd(p.string());
    std::vector<at::Tensor> frames;
    cv::Mat rgb;
    while (rd.read(rgb)) {
      if (!rgb.isContinuous()) rgb = rgb.clone();
      frames.push_back(torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone());
    }
    if (frames.empty()) throw InputError(p.string() + ": no video frames");
    c.name = p.stem().string();
    c.frames_rgb = torch::stack(frames);  // [T, H, W, 3] RGB
    c.fps = rd.fps() > 0 ? rd.fps() : fps;
    if (with_audio && audio_override.empty() && rd.has_audio()) {
      try {
        load_audio(c, p.string());
      } catch (const InputError& e) {  // an unusable track only costs this clip its Sync-C/D
        spdlog::warn("{}: audio track not decoded, Sync-C/D skipped for this clip: {}", p.string(), e.what());
      }
    }
  }
  if (with_audio && !audio_override.empty()) load_audio(c, audio_override);
  return c;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot read");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Prints the comparison; 7 when a metric regressed.
int check_baseline(const std::string& result_json, const std::string& baseline_path) {
  auto cmp = eval::compare_with_baseline(result_json, read_text(baseline_path), baseline_path);
  std::printf("baseline %s:\n%s", baseline_path.c_str(), cmp.to_text().c_str());
  if (cmp.regressed()) {
    spdlog::error("regression against {}", baseline_path);
    return kRegressionExit;
  }
  return 0;
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
  if (o.pred.empty()) {
    if (o.result.empty() || o.baseline.empty())
      throw UsageError("emo eval: --pred is required (or --result R.json --baseline B.json to only compare)");
    return check_baseline(read_text(o.result), o.baseline);
  }
  if (!o.result.empty()) throw UsageError("emo eval: --result only goes with --baseline and without --pred");
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
  eo.face_models_dir = o.face_models;
  eo.ref_image = o.ref_image;
  const bool want_sync = std::find(eo.metrics.begin(), eo.metrics.end(), "sync") != eo.metrics.end();

  const fs::path pred(o.pred);
  if (!fs::exists(pred)) throw InputError(o.pred + ": no such file or directory");
  if (!o.ref.empty() && !fs::exists(o.ref)) throw InputError(o.ref + ": no such file or directory");

  eval::Evaluator ev(eo);
  const bool folder_mode = fs::is_directory(pred) && !is_frame_folder(pred);
  if (folder_mode && !o.audio.empty()) throw UsageError("--audio goes with a single --pred clip");
  if (!folder_mode) {
    auto p = load_clip(pred, o.fps, want_sync, o.audio);
    if (o.ref.empty()) {
      ev.add(p, nullptr);
    } else {
      auto r = load_clip(o.ref, o.fps, false);
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
      auto p = load_clip(path, o.fps, want_sync);
      auto it = refs.find(name);
      if (!o.ref.empty() && it == refs.end()) spdlog::warn("{}: no reference named '{}' in {}", path.string(), name, o.ref);
      if (it == refs.end()) {
        ev.add(p, nullptr);
      } else {
        auto r = load_clip(it->second, o.fps, false);
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
  if (!o.baseline.empty()) return check_baseline(json, o.baseline);
  return 0;
}

}  // namespace

Run add_eval(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<EvalCliOptions>();
  auto* sub = app.add_subcommand("eval", "Compute FID, FVD, Sync-C/D, SSIM, PSNR, F-SIM of generated videos like the papers' reference tools; check a baseline");
  sub->add_option("--pred", o->pred, "Generated clip (folder of frames or video), or a folder of clips");
  sub->add_option("--ref", o->ref, "Reference clip, or a folder of clips paired with --pred by name");
  sub->add_option("--metrics", o->metrics, "Metrics to compute: fid fvd sync ssim psnr fsim (default: all)")->delimiter(',');
  sub->add_option("--weights", o->weights,
                  std::string("Folder with the metric weights: ") + eval::kFidWeightsFile + ", " + eval::kSyncWeightsFile +
                      ", " + eval::kI3dWeightsFile);
  sub->add_option("--json", o->json_out, "Write the results as JSON to this file");
  sub->add_option("--audio", o->audio, "Audio of a single --pred clip for Sync-C/D (frame folders; overrides a video's track)");
  sub->add_option("--ref-image", o->ref_image, "F-SIM identity reference portrait (default: each reference video's first frame)");
  sub->add_option("--face-models", o->face_models,
                  std::string("F-SIM face_analysis models folder (") + eval::kFaceDetectorFile + ", " +
                      eval::kFaceRecognitionFile + "); default: --weights");
  sub->add_option("--baseline", o->baseline, "Compare with this baseline JSON; exit code 7 on a regression (docs/hdtf.md)");
  sub->add_option("--result", o->result, "With --baseline and no --pred: compare this earlier --json result");
  sub->add_option("--ssim", o->ssim, "SSIM variant: skimage, skimage_gaussian, skimage_gray, common_metrics")->capture_default_str();
  sub->add_option("--psnr", o->psnr, "PSNR variant: skimage, common_metrics")->capture_default_str();
  sub->add_option("--sync", o->sync, "Sync-C/D variant: wav2lip (frames resized to 224), syncnet_python")->capture_default_str();
  sub->add_option("--fvd", o->fvd, "FVD variant: common_metrics (unbiased cov), styleganv (biased cov)")->capture_default_str();
  sub->add_option("--fvd-frames", o->fvd_frames, "Frames per clip for FVD (>= 10)")->capture_default_str();
  sub->add_option("--fps", o->fps, "Frame rate of frame folders")->capture_default_str();
  return [o] { return run_eval(*o); };
}

}  // namespace emo::cli
