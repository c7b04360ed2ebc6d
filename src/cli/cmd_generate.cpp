// emo generate --image face.png --audio voice.mp3 -o out.mp4
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/signals.h"
#include "emo/generate.h"
#include "emo/sampler_names.h"

namespace emo::cli {

namespace {
struct GenerateCli {
  GenerateRequest req;
  std::string model;
  RuntimeOptions rt;
  bool no_sidecar = false;
};
}  // namespace

// Flags shared with `emo batch` (per-job defaults).
void add_generate_param_flags(CLI::App* sub, GenerateParams& p) {
  sub->add_option("--steps", p.steps, "Denoising steps, 1-1000 (0 = preset: 40)");
  sub->add_option("--sampler", p.sampler,
                  "ddim (Hallo's sampler), dpmpp-2m (DPM-Solver++ 2M) or unipc (UniPC: at 20-25 steps as close to the "
                  "exact solution as ddim at 40); all read the model's scheduler config (docs/sampling.md)")
      ->check(CLI::IsMember(std::vector<std::string>(kSamplerNames.begin(), kSamplerNames.end())))
      ->capture_default_str();
  sub->add_option("--cfg-scale", p.cfg_scale, "Classifier-free guidance scale, 1-50 (0 = preset: 3.5)");
  sub->add_option("-s,--seed", p.seed, "Noise seed (drawn on the CPU, so CPU and GPU runs start alike)");
  sub->add_option("--fps", p.fps, "Frames per second, 1-240 (0 = preset: 25 hallo, 30 emo)");
  sub->add_option("--width", p.width, "Output width = height, a multiple of 64 up to 2048 (0 = preset: 512)");
  sub->add_option("--height", p.height, "Output height (= width; either one sets both)");
  sub->add_option("--pose-weight", p.pose_weight, "Weight of the full-face audio branch (0-10)");
  sub->add_option("--face-weight", p.face_weight, "Weight of the face audio branch (0-10)");
  sub->add_option("--lip-weight", p.lip_weight, "Weight of the lip audio branch (0-10)");
  sub->add_option("--speed", p.speed, "Head motion speed for EMO speed layers, 0.1-1.3 (speech 0.1-1.0, song 1.0-1.3); models without speed layers need 1");
  sub->add_option("--crf", p.crf, "H.264 quality (0 lossless .. 51 worst)");
  sub->add_flag("--crop", p.crop, "Non-square portrait: animate a square crop around the face (default: resize the whole image to a square, as Hallo)");
  sub->add_flag("--paste-back", p.paste_back, "Paste the animated square crop back into the original non-square image (implies --crop)");
  sub->add_flag("--require-face", p.require_face, "Fail when no face is found (default: whole image, with a warning)");
  sub->add_option("--max-audio-seconds", p.max_audio_seconds, "Refuse longer audio");
  sub->add_flag_function(
      "--no-vocal-separation", [&p](std::int64_t) { p.vocal_separation = false; },
      "Feed the audio as it is to wav2vec2 (default: separate the vocals first when the model folder has audio_separator/Kim_Vocal_2.onnx, as Hallo)");
}

void add_runtime_flags(CLI::App* sub, RuntimeOptions& rt) {
  sub->add_option("--device", rt.device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--dtype", rt.dtype, "fp32, fp16 (cuda) or bf16")->check(CLI::IsMember({"fp32", "fp16", "bf16"}))->capture_default_str();
  sub->add_option("--attention", rt.attention,
                  "auto (fused scaled_dot_product_attention with libtorch >= 2.0) or math (reference formula)")
      ->check(CLI::IsMember({"auto", "math"}))
      ->capture_default_str();
  sub->add_option("--cpu-linear", rt.cpu_linear,
                  "fp32 linear layers on the CPU: auto (oneDNN's matmul when libtorch has it, with GEGLU's gelu fused, feed-forwards in row chunks, convolutions with <= 256 output pixels as one matmul) or aten (torch::linear and torch::conv2d)")
      ->check(CLI::IsMember({"auto", "aten"}))
      ->capture_default_str();
  sub->add_flag_function(
      "--no-cudnn-benchmark", [&rt](std::int64_t) { rt.cudnn_benchmark = false; },
      "CUDA: keep cuDNN's default convolution algorithms (default: autotune per shape once; reproducible to the last bit without it)");
  sub->add_option("--vae-layout", rt.vae_layout,
                  "VAE activation layout: auto (= nchw, measured fastest on the CPU), nhwc or nchw")
      ->check(CLI::IsMember({"auto", "nhwc", "nchw"}))
      ->capture_default_str();
  sub->add_option("--host-memory", rt.host_memory,
                  "retain (freed CPU memory is reused by the next step: no page faults per tensor) or system (the C library's defaults)")
      ->check(CLI::IsMember({"retain", "system"}))
      ->capture_default_str();
}

Run add_generate(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<GenerateCli>();
  auto* sub = app.add_subcommand("generate", "Render one talking-portrait video from an image and an audio clip");
  sub->footer("Exit codes: 0 ok, 2 bad flag or value, 3 bad input file, 4 model, 5 output, 12 device out of memory,\n"
              "13 device error (CUDA/cuDNN/cuBLAS), 130 interrupted (docs/exit-codes.md)");
  sub->add_option("-i,--image", o->req.image, "Portrait image (png/jpg/...)")->required();
  sub->add_option("-a,--audio", o->req.audio, "Voice clip (any format FFmpeg reads)")->required();
  sub->add_option("-o,--output", o->req.output, "Output video (.mp4, or .mkv)")->required();
  sub->add_option("-m,--model", o->model, "Model folder (Hallo pretrained_models/; default $EMO_MODEL_DIR)");
  add_generate_param_flags(sub, o->req.params);
  add_runtime_flags(sub, o->rt);
  sub->add_flag("--no-sidecar", o->no_sidecar, "Do not write OUT.json next to the video");
  return [o, &g] {
    o->rt.threads = g.threads;
    o->req.params.write_sidecar = !o->no_sidecar;
    // Every parameter is checked before any work: first the model-independent rules (exit 2 even when the model
    // folder is wrong), then against the model's preset (resolving the folder reads only its configs).
    validate(o->req.params);
    auto& cancel = install_cancel_handlers();
    auto spec = resolve_model(default_model_dir(o->model));
    validate(o->req.params, spec.preset);
    auto pipeline = Pipeline::load(spec, o->rt);
    ProgressPrinter printer(g.quiet);
    ProgressLogGuard log_guard(printer);
    auto res = pipeline->generate(o->req, [&](const Progress& p) { printer(p); }, &cancel);
    printer.finish();
    spdlog::info("wrote {} ({} frames, {:.2f} s of video) in {:.1f} s", res.output, res.frames, res.seconds_of_video,
                 res.elapsed_s);
    return 0;
  };
}

}  // namespace emo::cli
