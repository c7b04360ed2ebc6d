#include "emo/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "emo/audio.h"
#include "emo/compat.h"
#include "emo/error.h"
#include "emo/video.h"
#include "pipeline/networks.h"
#include "pipeline/runtime.h"

namespace fs = std::filesystem;

namespace emo {

double StageTiming::mean() const {
  double s = 0;
  for (double x : seconds) s += x;
  return seconds.empty() ? 0 : s / seconds.size();
}

double StageTiming::stddev() const {
  if (seconds.size() < 2) return 0;
  double m = mean(), s = 0;
  for (double x : seconds) s += (x - m) * (x - m);
  return std::sqrt(s / (seconds.size() - 1));
}

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index() < 0 ? 0 : d.index());
}

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

}  // namespace

BenchReport run_bench(const ModelSpec& spec, const RuntimeOptions& rt, const BenchOptions& o,
                      const ProgressCallback& progress) {
  if (o.repeat < 1 || o.warmup < 0) throw UsageError("--repeat must be >= 1 and --warmup >= 0");
  c10::InferenceMode guard;
  const auto resolved = pipeline::apply_runtime(rt);
  const torch::Device dev = resolved.device;
  const torch::ScalarType dt = resolved.dtype;
  BenchReport r;
  r.model_dir = spec.paths.root;
  r.device = rt.device;
  r.dtype = rt.dtype;
  r.torch_version = compat::torch_version();
  r.attention = compat::effective_attention();
  r.threads = torch::get_num_threads();
  r.frames = o.frames > 0 ? o.frames : spec.preset.clip_frames;
  r.size = o.size > 0 ? o.size : spec.preset.width;
  r.steps = spec.preset.steps;
  if (r.size % 8) throw UsageError("--size must be a multiple of 8");

  double t0 = now_s();
  auto net = io::load_state_dict(spec.paths.net);
  auto nets = pipeline::Networks::load(spec, net, dev, dt);
  auto w2v = audio::Wav2Vec2Embedder::load(spec.paths.wav2vec_dir, dev.str());
  r.load_seconds = now_s() - t0;

  const int64_t F = r.frames, M = spec.preset.motion_frames, S = r.size, h = S / 8;
  auto opts = torch::TensorOptions().device(dev).dtype(dt);
  torch::manual_seed(0);
  auto images = torch::rand({1 + M, 3, S, S}, opts) * 2 - 1;
  auto face_emb = torch::randn({nets->image_proj->config().clip_embeddings_dim}, torch::kFloat);
  auto tokens = pipeline::face_tokens(*nets, face_emb);
  std::vector<float> speech(static_cast<size_t>(16000 * o.audio_seconds));
  for (size_t i = 0; i < speech.size(); ++i) speech[i] = 0.3f * std::sin(2 * M_PI * 220 * i / 16000.0);

  // Inputs for one UNet3D step, built the way the pipeline builds them.
  auto ref_latents = nets->vae->encode_latents(images);
  auto banks = nets->reference->write_banks(ref_latents.repeat({2, 1, 1, 1}), torch::zeros({}, torch::kLong).to(dev), tokens);
  models::UNet3DConditions cond;
  cond.encoder_hidden_states = tokens;
  const auto& acfg = nets->audio_proj->config;
  cond.audio_embedding = torch::randn({2, F, acfg.context_tokens, acfg.output_dim}, opts);
  cond.mask_cond_fea = torch::cat({torch::zeros({1, nets->face_locator->config().conditioning_embedding_channels, F, h, h}, opts),
                                   pipeline::face_locator_features(*nets, torch::ones({1, 3, S, S}), F)}, 0);
  for (int l = 0; l < 4; ++l) {
    const int64_t hw = (h >> l) * (h >> l);
    cond.full_mask.push_back(torch::rand({2 * F, hw}, opts));
    cond.face_mask.push_back(torch::rand({2 * F, hw}, opts));
    cond.lip_mask.push_back(torch::rand({2 * F, hw}, opts));
  }
  cond.motion_scale = std::array<double, 3>{1.0, 1.0, 1.0};
  auto latents = torch::randn({2, 4, F, h, h}, opts);
  auto t999 = torch::full({}, 999, torch::TensorOptions().dtype(torch::kLong).device(dev));
  auto frame_latents = torch::randn({F, 4, h, h}, opts);
  const std::string tmp_video = (fs::temp_directory_path() / ("emo_bench_" + std::to_string(::getpid()) + ".mp4")).string();
  cv::Mat frame(static_cast<int>(S), static_cast<int>(S), CV_8UC3, cv::Scalar(90, 120, 150));

  struct Stage {
    std::string name, unit;
    std::function<void()> run;
  };
  std::vector<Stage> stages = {
      {"wav2vec2", std::to_string(o.audio_seconds).substr(0, 4) + " s of audio",
       [&] { w2v.embed(speech, audio::EmbedOptions{static_cast<double>(spec.preset.fps), F}); }},
      {"vae_encode", std::to_string(1 + M) + " images (reference + motion frames)", [&] { nets->vae->encode_latents(images); }},
      {"reference_net", "1 pass, batch " + std::to_string(2 * (1 + M)),
       [&] { nets->reference->write_banks(ref_latents.repeat({2, 1, 1, 1}), torch::zeros({}, torch::kLong).to(dev), tokens); }},
      {"unet3d_step", "1 denoising step (CFG batch 2 x " + std::to_string(F) + " frames)",
       [&] {
         nets->unet->set_reference_banks(banks);
         nets->unet->forward(latents, t999, cond);
       }},
      {"vae_decode", std::to_string(F) + " frames", [&] { nets->vae->decode_latents(frame_latents, 4); }},
      {"encode_mux", std::to_string(F) + " frames to H.264 MP4 (no audio)",
       [&] {
         video::VideoWriterOptions vo;
         vo.fps = spec.preset.fps;
         video::VideoWriter w(tmp_video, static_cast<int>(S), static_cast<int>(S), vo);
         for (int64_t i = 0; i < F; ++i) w.write(frame);
         w.finish();
       }},
  };
  int done = 0;
  for (auto& st : stages) {
    StageTiming timing{st.name, st.unit, {}};
    for (int i = 0; i < o.warmup + o.repeat; ++i) {
      sync(dev);
      double a = now_s();
      st.run();
      sync(dev);
      if (i >= o.warmup) timing.seconds.push_back(now_s() - a);
    }
    r.stages.push_back(timing);
    if (progress) progress(Progress{st.name, ++done, static_cast<int>(stages.size()), 0, 0, now_s() - t0});
  }
  fs::remove(tmp_video);
  r.peak_rss_mib = peak_rss_mib();
  auto mean_of = [&](const std::string& n) {
    for (const auto& s : r.stages)
      if (s.stage == n) return s.mean();
    return 0.0;
  };
  const double per_clip = r.steps * mean_of("unet3d_step") + mean_of("reference_net") + mean_of("vae_encode") +
                          mean_of("vae_decode") + mean_of("encode_mux");
  r.seconds_per_video_second = per_clip * spec.preset.fps / static_cast<double>(F) +
                               mean_of("wav2vec2") / o.audio_seconds;
  return r;
}

std::string bench_markdown(const BenchReport& r) {
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "emo bench: %s on %s (%s), libtorch %s, %s attention, %d threads, %d frames of %dx%d, %d steps\n\n",
                r.model_dir.c_str(), r.device.c_str(), r.dtype.c_str(), r.torch_version.c_str(), r.attention.c_str(),
                r.threads, r.frames, r.size, r.size, r.steps);
  s += buf;
  s += "| stage | one run | mean (s) | ± stddev (s) | runs |\n| --- | --- | ---: | ---: | ---: |\n";
  std::snprintf(buf, sizeof buf, "| load | model folder | %.3f | | 1 |\n", r.load_seconds);
  s += buf;
  for (const auto& st : r.stages) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %.4f | %.4f | %zu |\n", st.stage.c_str(), st.unit.c_str(), st.mean(),
                  st.stddev(), st.seconds.size());
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "\npeak RSS %.0f MiB; estimated %.1f s of compute per second of video\n", r.peak_rss_mib,
                r.seconds_per_video_second);
  s += buf;
  return s;
}

std::string bench_json(const BenchReport& r) {
  nlohmann::json j = {{"model", r.model_dir}, {"device", r.device}, {"dtype", r.dtype}, {"torch", r.torch_version},
                      {"attention", r.attention}, {"threads", r.threads}, {"frames", r.frames}, {"size", r.size}, {"steps", r.steps},
                      {"load_s", r.load_seconds}, {"peak_rss_mib", r.peak_rss_mib},
                      {"seconds_per_video_second", r.seconds_per_video_second}};
  j["stages"] = nlohmann::json::array();
  for (const auto& st : r.stages)
    j["stages"].push_back({{"stage", st.stage}, {"unit", st.unit}, {"mean_s", st.mean()}, {"stddev_s", st.stddev()},
                           {"runs", st.seconds}});
  return j.dump(2);
}

}  // namespace emo
