// The product's main job as a library call: portrait + audio in, talking-portrait video out.
// The CLI (`emo generate`, `emo batch`) is a thin layer over this header.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "emo/error.h"
#include "emo/log.h"
#include "emo/model_spec.h"

namespace emo {

// Chosen once at load time.
struct RuntimeOptions {
  std::string device = "cpu";   // "cpu" | "cuda" | "cuda:N"
  std::string dtype = "fp32";   // "fp32" | "fp16" | "bf16"
  int threads = 0;              // 0 = all cores
  std::string attention = "auto";  // "auto": fused scaled_dot_product_attention on libtorch >= 2.0, math before;
                                   // "math": always softmax(q k^T * scale) v (for parity checks)
  std::string cpu_linear = "auto";  // fp32 linear layers on the CPU: "auto" (oneDNN's matmul when libtorch has it,
                                    // measured faster than the BLAS sgemm) or "aten" (torch::linear)
  std::string vae_layout = "auto";  // VAE activations: "auto" (= NCHW: NHWC measured no faster for emo's VAE on
                                    // the CPU, unmeasured on CUDA), "nhwc" or "nchw"
  bool cudnn_benchmark = true;  // CUDA: cuDNN times its convolution algorithms per shape once and keeps the
                                // fastest (first clip slower; results can differ in the last bits between runs)
  std::string host_memory = "retain";  // "retain": freed host memory stays with the process for reuse (glibc:
                                       // no mmap per large tensor, no trimming; process-wide, set once);
                                       // "system": the C library's defaults (docs/performance.md)
};

// Per-job settings; 0 means "use the model preset's value" for steps, cfg_scale, fps, width and height
// (width or height alone sets both: portraits are square). Negative values are errors, never "preset":
// validate() below lists the accepted ranges (docs/limits.md).
struct GenerateParams {
  int steps = 0;
  std::string sampler = "ddim";  // one of kSamplerNames (emo/sampler_names.h): "ddim" (Hallo's DDIM, the default),
                                 // "dpmpp-2m" or "unipc" (fewer steps; docs/sampling.md)
  double cfg_scale = 0;
  int64_t seed = 42;
  int fps = 0;
  int width = 0;
  int height = 0;
  double pose_weight = 1.0;     // motion_scale[0]: full-face audio branch
  double face_weight = 1.0;     // motion_scale[1]
  double lip_weight = 1.0;      // motion_scale[2]
  double speed = 1.0;           // EMO speed layers (emo preset only)
  int crf = 18;                 // H.264 quality
  bool crop = false;            // non-square portraits: crop a square around the face (default: hallo's squash to SxS)
  bool paste_back = false;      // put the animated square back into the original (non-square) image; implies crop
  bool require_face = false;    // no face found -> error instead of whole-image fallback
  double max_audio_seconds = 3600;
  bool vocal_separation = true; // separate the vocals first when the model folder has audio_separator/Kim_Vocal_2.onnx (Hallo)
  bool write_sidecar = true;    // OUT.json next to the video
};

// The values a job renders with: GenerateParams with the preset's values filled in.
struct EffectiveParams {
  int steps = 0;
  double cfg_scale = 0;
  int fps = 0;
  int size = 0;  // width = height
};

// Every problem with `params`, one entry each ("width 520: expected a positive multiple of 64 ..."), empty when
// all is well. With `preset`, also the checks that need the model: the effective (preset-filled) values and
// settings the model cannot honour (--speed without speed layers). Accepted ranges: docs/limits.md.
std::vector<std::string> parameter_problems(const GenerateParams& params, const ModelPreset* preset = nullptr);
// Throws UsageError (exit 2) listing every bad value in one message. The model-independent checks only.
void validate(const GenerateParams& params);
// The same with the model's preset; returns the values the job renders with. Called by `emo generate` and
// `emo batch` (per job) before any work, and at the top of Pipeline::generate.
EffectiveParams validate(const GenerateParams& params, const ModelPreset& preset);

// Benchmarks (`emo bench`, `emo generate --profile`): per-stage device time of the run, synchronised at stage
// boundaries (a normal run never synchronises), optionally with the FLOPs of each stage counted by shape.
// kTimeFlopsAndOps also records libtorch's operators of each stage's last call (`emo bench --ops`): CPU time per
// operator name, on the host thread that dispatched it (on CUDA that is launch time, not kernel time).
enum class StageProfile { kOff, kTime, kTimeAndFlops, kTimeFlopsAndOps };

struct OpStat {
  std::string name;    // "aten::addmm"
  int64_t calls = 0;
  double self_s = 0;   // excluding the operators it called
  double total_s = 0;  // including them
};

struct StageStats {
  std::vector<double> seconds;     // one entry per call (e.g. one per denoising step for unet3d_step)
  double flops = 0;                // kTimeAndFlops: summed over the calls (matmul, convolution and attention FLOPs)
  int counted_calls = 0;
  std::vector<double> call_flops;  // kTimeAndFlops: one entry per counted call
  std::vector<OpStat> ops;         // kTimeFlopsAndOps: the last call's, most self time first
};

struct GenerateRequest {
  std::string image;
  std::string audio;
  std::string output;           // .mp4 (default) or .mkv
  GenerateParams params;
  StageProfile profile = StageProfile::kOff;
};

struct GenerateResult {
  std::string output;
  std::string sidecar;          // "" when not written
  int frames = 0;
  double seconds_of_video = 0;
  double elapsed_s = 0;
  // With a StageProfile: portrait, wav2vec2, face_locator (+ image_proj, once per job), vae_encode, reference_net, audio_proj, unet3d_step, guidance_step,
  // vae_decode, frames_out (RGB conversion, H.264 encoding and muxing of the frames), finish (audio, trailer).
  std::map<std::string, StageStats> stages;
};

class Pipeline {
 public:
  // Loads every network of the model folder once (throws ModelError naming the component).
  static std::unique_ptr<Pipeline> load(const ModelSpec& spec, const RuntimeOptions& runtime);
  virtual ~Pipeline() = default;

  // Renders one job. Output is written to a temporary name and renamed on success; on error or
  // cancellation nothing is left under the final name. Throws emo::Error subclasses.
  // Per-image portrait analysis and per-audio features are cached inside the pipeline, so batch jobs
  // that share an image or an audio file do that work once.
  virtual GenerateResult generate(const GenerateRequest& request, const ProgressCallback& progress = {},
                                  const std::atomic<bool>* cancel = nullptr) = 0;
  virtual const ModelSpec& spec() const = 0;
  virtual double load_seconds() const { return 0; }  // reading the weights and building the networks
};

// Thrown when `cancel` becomes true between steps.
struct CancelledError : Error {
  explicit CancelledError(const std::string& w) : Error(ExitCode::kInterrupted, w) {}
};

}  // namespace emo
