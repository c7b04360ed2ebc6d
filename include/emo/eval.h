// Evaluation metrics of talking-head papers, computed exactly like the reference tools:
//   FID      pytorch-fid (FID-Inception pool3 + calculate_frechet_distance)
//   FVD      common_metrics_on_video_quality (unbiased cov) / stylegan-v (biased cov), I3D from TorchScript
//   Sync-C/D syncnet_python SyncNetInstance.evaluate / Wav2Lip's SyncNetInstance_calc_scores
//   SSIM     scikit-image structural_similarity (3 settings) / common_metrics (BasicSR-style)
//   PSNR     scikit-image peak_signal_noise_ratio / common_metrics img_psnr
// Background: shared/reference/eval-metrics.md, fixtures shared/golden/eval/*.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "emo/state_dict.h"

namespace emo::eval {

// ---- Frechet distance (FID / FVD) ---------------------------------------------------------------

enum class Covariance {
  kUnbiased,  // np.cov (divides by N-1): pytorch-fid, common_metrics FVD
  kBiased,    // stylegan-v FeatureStats: X^T X / N - mu mu^T
};

struct GaussianStats {
  at::Tensor mu;     // [D] float64
  at::Tensor sigma;  // [D, D] float64
};

// feats [N, D] (any float dtype; computed in float64). N == 1 gives a zero covariance.
GaussianStats feature_statistics(const at::Tensor& feats, Covariance cov = Covariance::kUnbiased);

// tr(sqrtm(s1 @ s2)) in float64: real part of sum(sqrt(eig(s1 @ s2))) (the Schur diagonal of scipy's sqrtm).
double trace_sqrtm_product(const at::Tensor& s1, const at::Tensor& s2);

enum class EpsBranch {
  kAuto,    // imitate scipy's sqrtm failure: used when a covariance has an all-zero row (a constant feature)
  kNever,
  kAlways,
};

struct FrechetResult {
  double distance = 0;
  bool eps_branch = false;  // pytorch-fid's "fid calculation produces singular product" retry ran
};

// pytorch_fid.fid_score.calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6).
FrechetResult frechet_distance(const GaussianStats& a, const GaussianStats& b, double eps = 1e-6,
                               EpsBranch policy = EpsBranch::kAuto);

// ---- FID -----------------------------------------------------------------------------------------

// pytorch_fid.inception.InceptionV3([3]) (FID-Inception, pool3 2048-d) with resize_input and normalize_input.
class FidInception {
 public:
  // `path`: pt_inception-2015-12-05-6726825d.pth (legacy or zip torch.save), or any state-dict file with
  // its key names (fc.* is ignored, num_batches_tracked may be absent).
  static FidInception load(const std::string& path);
  static FidInception from_state_dict(const io::StateDict& sd, const std::string& source = "state dict");

  // images: uint8 [N, H, W, 3] RGB (or float [N, 3, H, W] in [0, 1]) -> [N, 2048] float32 pool3 features.
  // Images are processed in batches of `batch_size` (the result does not depend on it beyond rounding).
  at::Tensor features(const at::Tensor& images, int batch_size = 50) const;

  // Debug taps of one batch (float [N, 3, H, W] in [0, 1]): "input" (resized, normalised), "block0",
  // "block1", "block2", "pool3" (as pytorch-fid's output_blocks 0..3).
  std::vector<at::Tensor> forward_blocks(const at::Tensor& x01) const;

  ~FidInception();
  FidInception(FidInception&&) noexcept;
  FidInception& operator=(FidInception&&) noexcept;

 private:
  struct Impl;
  explicit FidInception(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- FVD -----------------------------------------------------------------------------------------

enum class FvdVariant {
  kCommonMetrics,  // common_metrics_on_video_quality method="styleganv": np.cov (N-1); 1 video -> |dmu|^2
  kStyleganV,      // stylegan-v compute_fvd: FeatureStats biased covariance
};

// FVD from I3D features [N, 400] of each set (no eps fallback, real part, as both references).
double fvd_from_features(const at::Tensor& feats_gen, const at::Tensor& feats_real, FvdVariant variant);

// common_metrics preprocess_single: video [C, T, H, W] in [0, 1] -> [C, T, 224, 224] in [-1, 1]
// (shorter side bilinear to 224, align_corners=False, ceil for the other side, centre crop, x*2-1).
at::Tensor fvd_preprocess_common_metrics(const at::Tensor& video_cthw, int64_t target = 224);

// stylegan-v / common_metrics I3D TorchScript (i3d_torchscript.pt), run with torch::jit::load.
class I3D {
 public:
  static I3D load(const std::string& path);
  // x [B, 3, T, H, W] float; returns [B, 400] (return_features=True).
  at::Tensor features(const at::Tensor& x, bool rescale, bool resize) const;
  // Whole-video convenience in the common_metrics convention: videos [B, T, H, W, 3] uint8 ->
  // preprocess_single per video, I3D in batches of 10 with rescale=resize=false.
  at::Tensor features_common_metrics(const at::Tensor& videos_u8) const;
  ~I3D();
  I3D(I3D&&) noexcept;
  I3D& operator=(I3D&&) noexcept;

 private:
  struct Impl;
  explicit I3D(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- SSIM / PSNR -----------------------------------------------------------------------------------

enum class SsimVariant {
  kSkimage,          // structural_similarity(x, y, channel_axis=2) on uint8 RGB (7x7 uniform, sample cov)
  kSkimageGaussian,  // ... gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
  kSkimageGray,      // cv2 RGB2GRAY, then skimage defaults
  kCommonMetrics,    // common_metrics / BasicSR: 11x11 Gaussian cv2.filter2D, valid crop, [0,1], RGB mean
};
enum class PsnrVariant {
  kSkimage,        // float64 MSE over uint8 values; identical frames -> +inf
  kCommonMetrics,  // float32 MSE on u8/255; identical (mse < 1e-10) -> 100
};

// One frame pair, uint8 [H, W, 3] RGB.
double ssim(const at::Tensor& x, const at::Tensor& y, SsimVariant variant = SsimVariant::kSkimage);
double psnr(const at::Tensor& x, const at::Tensor& y, PsnrVariant variant = PsnrVariant::kSkimage);
const char* to_string(SsimVariant v);
const char* to_string(PsnrVariant v);

// ---- Sync-C / Sync-D (SyncNet) -----------------------------------------------------------------------

// python_speech_features.mfcc(signal, samplerate) with its defaults; `signal` 1-D, int16 sample values
// (int16 or float tensor, NOT normalised). Returns [numframes, 13] float64.
at::Tensor mfcc(const at::Tensor& signal, int sample_rate = 16000);

// Float samples in [-1, 1] (e.g. emo's libav audio decoder output) -> int16 as the reference's
// `ffmpeg -acodec pcm_s16le` writes them (libswresample: av_clip_int16(lrintf(x * 32768))). 1-D float -> int16.
at::Tensor pcm_float_to_s16(const at::Tensor& samples);

enum class SyncVariant {
  kWav2Lip,        // Wav2Lip SyncNetInstance_calc_scores: frames cv2.resize'd to 224x224 (INTER_LINEAR)
  kSyncnetPython,  // syncnet_python SyncNetInstance.evaluate: frames used as they are (must be 224x224)
};

struct SyncOptions {
  SyncVariant variant = SyncVariant::kWav2Lip;
  int vshift = 15;
  int batch_size = 20;
};

struct SyncResult {
  int offset = 0;
  float conf = 0;       // Sync-C / LSE-C
  float min_dist = 0;   // Sync-D / LSE-D
  at::Tensor video_emb;  // [W, 1024]
  at::Tensor audio_emb;  // [W, 1024]
  at::Tensor dists;      // [W, 2*vshift+1]
  at::Tensor mdist;      // [2*vshift+1]
  at::Tensor framewise_conf;  // medfilt(median(mdist) - dists[:, minidx], 9) [W]
  at::Tensor mfcc;       // [Tm, 13] float64
};

class SyncNet {
 public:
  // `path`: syncnet_v2.model (legacy or zip torch.save of the name -> tensor mapping).
  static SyncNet load(const std::string& path);
  static SyncNet from_state_dict(const io::StateDict& sd, const std::string& source = "state dict");

  // frames: uint8 [T, H, W, 3] in BGR order (cv2.imread); audio: 1-D int16 samples at 16 kHz;
  // 25 fps assumed (640 samples per frame) as the reference does. Throws InputError when the clip is
  // shorter than 6 frames.
  SyncResult evaluate(const at::Tensor& frames_bgr, const at::Tensor& audio_s16,
                      const SyncOptions& options = {}) const;

  at::Tensor forward_lip(const at::Tensor& x) const;  // [n, 3, 5, 224, 224] -> [n, 1024]
  at::Tensor forward_aud(const at::Tensor& x) const;  // [n, 1, 13, 20] -> [n, 1024]

  ~SyncNet();
  SyncNet(SyncNet&&) noexcept;
  SyncNet& operator=(SyncNet&&) noexcept;

 private:
  struct Impl;
  explicit SyncNet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Wav2Lip's frame preprocessing: cv2.resize(img, (224, 224)) with the default INTER_LINEAR. [H, W, 3] uint8.
at::Tensor resize_224_linear(const at::Tensor& frame_u8);

}  // namespace emo::eval

// ---- Whole-run driver (used by `emo eval`; independent of how videos are decoded) -----------------

namespace emo::eval {

// A decoded clip: RGB frames and (optionally) its mono audio track as int16 samples.
struct Clip {
  std::string name;
  at::Tensor frames_rgb;  // [T, H, W, 3] uint8
  double fps = 25.0;
  at::Tensor audio_s16;   // [N] int16 (undefined when the clip has no audio)
  int audio_rate = 16000;
};

// File names the metrics need inside EvalOptions::weights_dir.
inline constexpr const char* kFidWeightsFile = "pt_inception-2015-12-05-6726825d.pth";
inline constexpr const char* kSyncWeightsFile = "syncnet_v2.model";
inline constexpr const char* kI3dWeightsFile = "i3d_torchscript.pt";
// F-SIM needs insightface's detector and recognition net (Hallo's face_analysis/models, antelopev2 names).
inline constexpr const char* kFaceDetectorFile = "scrfd_10g_bnkps.onnx";
inline constexpr const char* kFaceRecognitionFile = "glintr100.onnx";

// F-SIM of one pair of faces: cosine similarity of two raw ArcFace embeddings (= dot product of insightface's
// normed_embedding). Throws InputError on size mismatch; 0 when either vector is all zeros.
double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);
// F-SIM of a clip: mean over the frames in which a face was found (frames without one are skipped, as the
// reference scripts skip failed detections); NaN when `per_frame` is empty.
double fsim_clip_mean(const std::vector<double>& per_frame);

struct EvalOptions {
  std::vector<std::string> metrics = {"fid", "fvd", "sync", "ssim", "psnr", "fsim"};
  std::string weights_dir;
  // F-SIM: face_analysis models (a Hallo pretrained_models/, face_analysis/ or models/ folder); empty =
  // weights_dir (searched as face_analysis/models, models, itself).
  std::string face_models_dir;
  // F-SIM identity reference: a portrait image (the generation's input). Empty = the first frame of each
  // clip's reference video.
  std::string ref_image;
  SsimVariant ssim_variant = SsimVariant::kSkimage;
  PsnrVariant psnr_variant = PsnrVariant::kSkimage;
  SyncVariant sync_variant = SyncVariant::kWav2Lip;
  FvdVariant fvd_variant = FvdVariant::kCommonMetrics;
  int fvd_frames = 16;      // frames per video for FVD (first N; at least 10)
  int fid_batch_size = 50;  // pytorch-fid default
};

struct MetricResult {
  std::string name;          // "fid", "fvd", "sync_c", "sync_d", "ssim", "psnr", "fsim"
  std::string variant;       // reference implementation the value reproduces
  bool available = false;
  std::string reason;        // why unavailable (e.g. the weight file it needs)
  double value = 0;          // mean over clips (per-clip metrics) or set value (fid, fvd)
  std::vector<std::pair<std::string, double>> per_clip;
};

struct EvalReport {
  std::vector<MetricResult> metrics;
  std::vector<std::string> clips;
  std::string to_json() const;  // {"clips": [...], "metrics": {"fid": {"available":..,"value":..}, ...}}
  const MetricResult* find(const std::string& name) const;
};

// Streaming evaluator: add (prediction, optional reference) pairs one at a time, then finish().
// Missing weight files make the metrics that need them unavailable; the others still run.
class Evaluator {
 public:
  explicit Evaluator(EvalOptions options);
  ~Evaluator();
  void add(const Clip& pred, const Clip* ref);
  EvalReport finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Test-clip preparation (HDTF protocol: cut a time range, crop a fixed window, resize) -------------------

struct CutClipOptions {
  std::string input;          // source video (any container libav reads), with its audio track
  std::string output;         // .mp4 / .mkv: H.264 + AAC (16 kHz mono audio source)
  double start_s = 0;         // clip time range in the source, seconds
  double end_s = 0;           // <= start_s: until the end of the source
  // Crop window (HDTF crop_wh: x = min_width, w = width, y = min_height, h = height) in pixels of a frame of
  // height `ref_height` (HDTF xx_resolution.txt); scaled by real_height / ref_height, clamped inside the frame.
  // w or h <= 0: no crop. ref_height <= 0: the window is in pixels of the source as decoded.
  int crop_x = 0, crop_y = 0, crop_w = 0, crop_h = 0;
  int ref_height = 0;
  int size = 512;             // output is size x size (Lanczos); 0 = keep the cropped size (made even)
  double fps = 25;            // output rate: frame k shows the last source frame at or before start + k / fps
  int crf = 16;
  std::string first_frame_png;  // optional: also write the first output frame (the generation's portrait)
  std::string audio_wav;        // optional: also write the clip's audio, 16 kHz mono PCM16 (the driving audio)
};

struct CutClipResult {
  int64_t frames = 0;
  int width = 0, height = 0;
  int crop_x = 0, crop_y = 0, crop_w = 0, crop_h = 0;  // the window applied, in source pixels
  bool has_audio = false;
};

// Cuts, crops and resizes one clip (decodes the source from its start: long sources take a while). Throws
// InputError (unreadable source, empty range) / OutputError.
CutClipResult cut_clip(const CutClipOptions& options);

// ---- Regression check against a baseline (scripts/hdtf/, docs/hdtf.md) --------------------------------

// One metric of a result compared with its baseline value.
struct BaselineCheck {
  std::string metric;
  bool higher_is_better = true;  // ssim, psnr, sync_c, fsim: higher; fid, fvd, sync_d: lower
  double baseline = 0, tolerance = 0, value = 0;
  bool available = false;        // the metric has a numeric value in the result
  bool regressed = false;        // worse than baseline by more than tolerance, or missing from the result
  std::string note;
};

struct BaselineComparison {
  std::vector<BaselineCheck> checks;
  bool regressed() const;
  std::string to_text() const;  // one line per metric
};

// Compares an `emo eval --json` result with a baseline. Baseline format (docs/hdtf.md):
//   {"metrics": {"ssim": {"value": 0.71, "tolerance": 0.02}, "fid": {"value": 31.0, "tolerance": 3.0,
//                "optional": true}, ...},
//    "tolerances": {"psnr": 0.5}}   // optional, overrides / supplies per-metric tolerances
// An `emo eval --json` output is itself a valid baseline (tolerance 0 unless given). Metrics unavailable in
// the baseline are ignored; a baseline metric missing or unavailable in the result is a regression unless
// "optional": true. "higher_is_better" may override the direction of unknown metric names.
// Throws InputError on malformed JSON (the text is named by `what`).
BaselineComparison compare_with_baseline(const std::string& result_json, const std::string& baseline_json,
                                         const std::string& what = "baseline");

}  // namespace emo::eval
