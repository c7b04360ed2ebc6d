// emo::Pipeline for Hallo-layout model folders (scripts/inference.py inference_process): portrait analysis,
// audio features, clips chained by motion frames, streamed decoding and muxing.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>

#include "emo/audio.h"
#include "emo/compat.h"
#include "emo/error.h"
#include "emo/face.h"
#include "emo/face_tensors.h"
#include "emo/generate.h"
#include "emo/log.h"
#include "emo/separator.h"
#include "emo/video.h"
#include "pipeline/clip_loop.h"
#include "pipeline/frame_writer.h"
#include "pipeline/device_errors.h"
#include "pipeline/networks.h"
#include "pipeline/runtime.h"
#include "hub/digest.h"
#include "pipeline/sidecar.h"
#include "pipeline/stage_clock.h"

#include <algorithm>

namespace fs = std::filesystem;

namespace emo {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string file_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path;
  return path + "|" + std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

struct Portrait {
  face::PortraitAnalysis analysis;
  cv::Mat original_rgb;            // for paste-back
  torch::Tensor pixels;            // [1, 3, S, S] in [-1, 1]
  torch::Tensor face_region;       // [1, 3, S, S] in [0, 1]
  torch::Tensor embedding;         // [E]
  std::array<torch::Tensor, 4> full, face, lip;  // [1, HW_l] in [0, 1]
};

struct AudioFeatures {
  torch::Tensor emb;       // [seq_len, L, H] (the clip loop builds one clip's windows at a time)
  int64_t audio_length = 0;
  int64_t seq_len = 0;
  double seconds = 0;
  double separation_s = 0;  // time spent separating the vocals (0 when off)
};

class HalloPipeline final : public Pipeline {
 public:
  HalloPipeline(ModelSpec spec, const RuntimeOptions& rt) : spec_(std::move(spec)) {
    const auto resolved = pipeline::apply_runtime(rt);
    device_ = resolved.device;
    dtype_ = resolved.dtype;
    auto t0 = Clock::now();
    auto net = io::load_state_dict(spec_.paths.net);
    nets_ = pipeline::Networks::load(spec_, net, device_, dtype_);
    nets_->vae->use_channels_last(resolved.vae_channels_last);
    wav2vec_ = std::make_unique<audio::Wav2Vec2Embedder>(
        audio::Wav2Vec2Embedder::load(spec_.paths.wav2vec_dir, device_.str()));
    load_seconds_ = seconds_since(t0);
    log_info("loaded " + spec_.paths.root + " (" + spec_.preset.name + " preset) in " +
             std::to_string(load_seconds_).substr(0, 5) + " s on " + device_.str());
  }

  const ModelSpec& spec() const override { return spec_; }
  double load_seconds() const override { return load_seconds_; }

  // Device failures (CUDA out of memory, CUDA/cuDNN/cuBLAS errors) anywhere in the job become one-line
  // emo::Errors naming the job and where in the clip loop it was (exit 12/13); everything the job held is released
  // (its tensors by unwinding, the caches and the caching allocator's memory here) before the error leaves.
  GenerateResult generate(const GenerateRequest& req, const ProgressCallback& progress,
                          const std::atomic<bool>* cancel) override {
    JobPoint at;
    const int job_number = ++jobs_started_;
    try {
      return generate_job(req, progress, cancel, job_number, at);
    } catch (const c10::Error& e) {
      if (pipeline::device_error_code(e) == ExitCode::kOk) throw;
      std::string where;
      if (at.clips > 0)
        where = " at clip " + std::to_string(at.clip) + "/" + std::to_string(at.clips) + ", step " +
                std::to_string(at.step) + "/" + std::to_string(at.steps);
      auto err = pipeline::device_error(
          e, "in job image=" + req.image + " audio=" + req.audio + " output=" + req.output + where, device_.str());
      release_caches();
      throw err;
    }
  }

  // Drops per-job caches (portrait analysis, audio features) and the caching allocator's device memory.
  void release_caches() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      portraits_.clear();
      audios_.clear();
    }
    pipeline::release_device_memory();
  }

 private:
  struct JobPoint {  // where the clip loop is, for device error messages
    int clip = 0, clips = 0, step = 0, steps = 0;
  };

  GenerateResult generate_job(const GenerateRequest& req, const ProgressCallback& progress,
                              const std::atomic<bool>* cancel, int job_number, JobPoint& at) {
    c10::InferenceMode guard;
    // Test-only fault hook (docs/reliability.md), read once per job; a malformed value is a usage error.
    pipeline::FaultInjector fault(pipeline::fault_plan_from_env(), job_number);
    const auto t_start = Clock::now();
    const auto& pre = spec_.preset;
    const auto& p = req.params;
    const EffectiveParams eff = validate(p, pre);  // every bad value in one UsageError, before any work
    const int size = eff.size, fps = eff.fps, steps = eff.steps;
    const double cfg = eff.cfg_scale;
    const int64_t F = pre.clip_frames, M = pre.motion_frames;
    if (req.output.empty()) throw UsageError("no output path given");
    if (!fs::exists(req.image)) throw InputError(req.image + ": no such image file");
    if (!fs::exists(req.audio)) throw InputError(req.audio + ": no such audio file");
    auto out_dir = fs::path(req.output).parent_path();
    if (!out_dir.empty() && !fs::is_directory(out_dir)) throw OutputError(req.output + ": output folder does not exist");
    if (fs::is_directory(req.output)) throw OutputError(req.output + ": is a directory");
    if (p.write_sidecar && fs::is_directory(pipeline::sidecar_path(req.output)))
      throw OutputError(pipeline::sidecar_path(req.output) + ": the sidecar's name is taken by a directory");

    std::map<std::string, double> timings;
    auto report = [&](const std::string& stage, int cur, int total, int clip = 0, int clips = 0) {
      if (progress) progress(Progress{stage, cur, total, clip, clips, seconds_since(t_start)});
    };
    auto check_cancel = [&] {
      if (cancel && cancel->load()) throw CancelledError(req.output + ": cancelled");
    };

    std::unique_ptr<pipeline::StageClock> clock;
    if (req.profile != StageProfile::kOff)
      clock = std::make_unique<pipeline::StageClock>(device_, req.profile >= StageProfile::kTimeAndFlops,
                                                     req.profile == StageProfile::kTimeFlopsAndOps);
    auto t0 = Clock::now();
    report("portrait", 0, 1);
    const bool crop = p.crop || p.paste_back;  // --paste-back pastes a square crop back
    std::shared_ptr<Portrait> portrait;
    {
      pipeline::StageClock::Scope sc(clock.get(), "portrait");
      portrait = get_portrait(req.image, size, p.require_face, crop);
    }
    timings["portrait"] = seconds_since(t0);
    check_cancel();

    t0 = Clock::now();
    report("audio", 0, 1);
    // Hallo's AudioProcessor: vocals first (audio-separator, Kim_Vocal_2) when the model folder has the separator
    const bool separate = p.vocal_separation && !separator_path().empty();
    std::shared_ptr<AudioFeatures> feats;
    {
      pipeline::StageClock::Scope sc(clock.get(), "wav2vec2");  // includes the vocal separation when it runs
      feats = get_audio(req.audio, fps, F, p.max_audio_seconds, separate, [&](int64_t chunk, int64_t chunks) {
        check_cancel();
        report("vocals", static_cast<int>(chunk), static_cast<int>(chunks));
      });
    }
    timings["audio"] = seconds_since(t0);
    if (separate) timings["vocal_separation"] = feats->separation_s;
    check_cancel();

    const int64_t total_frames = feats->audio_length;

    // Output: the animated square, or pasted back into the original portrait.
    int out_w = size, out_h = size;
    const bool paste = p.paste_back && portrait->analysis.crop.cropped();
    if (paste) {
      out_w = portrait->original_rgb.cols & ~1;
      out_h = portrait->original_rgb.rows & ~1;
    }
    nlohmann::json params_json = {{"image", req.image}, {"audio", req.audio}, {"seed", p.seed}, {"steps", steps},
                                  {"sampler", p.sampler},
                                  {"cfg_scale", cfg}, {"fps", fps}, {"size", size}, {"preset", pre.name},
                                  {"clip_frames", F}, {"motion_frames", M},
                                  {"motion_scale", {p.pose_weight, p.face_weight, p.lip_weight}},
                                  {"speed", p.speed}, {"portrait", crop ? "crop" : "resize"},
                                  {"guidance", cfg > 1 ? "cfg" : "none"}, {"emo_version", EMO_VERSION},
                                  {"vocal_separation", separate ? separator_info() : nlohmann::json(false)}};
    video::VideoWriterOptions vopt;
    vopt.fps = fps;
    vopt.crf = p.crf;
    vopt.audio_path = req.audio;
    vopt.metadata = {{"comment", params_json.dump()}, {"encoder_settings", "emo " EMO_VERSION}};
    video::VideoWriter writer(req.output, out_w, out_h, vopt);

    // Per-job inputs cross to the networks' device and dtype here, once (Networks::place); the clip loop keeps
    // everything it computes (motion frames included) on the device.
    pipeline::JobInputs job;
    job.source_pixels = nets_->place(portrait->pixels);                            // [1, 3, S, S]
    {
      pipeline::StageClock::Scope sc(clock.get(), "face_locator");  // + image_proj: once per job, not per clip
      job.face_tokens = pipeline::face_tokens(*nets_, nets_->place(portrait->embedding));         // [2, T, D]
      job.face_locator = pipeline::face_locator_features(*nets_, nets_->place(portrait->face_region), F);
    }
    for (int l = 0; l < 4; ++l) {
      job.full_mask[l] = nets_->place(portrait->full[l]);
      job.face_mask[l] = nets_->place(portrait->face[l]);
      job.lip_mask[l] = nets_->place(portrait->lip[l]);
    }
    job.audio_emb = feats->emb;                                                     // host; windows placed per clip
    job.audio_length = total_frames;
    pipeline::LoopSettings ls;
    ls.clip_frames = F;
    ls.motion_frames = M;
    ls.steps = steps;
    ls.sampler = sampling::parse_sampler(p.sampler);
    ls.guidance_scale = cfg;
    ls.motion_scale = {p.pose_weight, p.face_weight, p.lip_weight};
    if (nets_->unet->config().speed.enabled) ls.speed = p.speed;
    ls.zero_first_motion_frames = pre.zero_first_motion_frames;
    ls.seed = p.seed;
    // VAE decode: one frame per call on the CPU, as Hallo does (measured at 256², 2 threads: 10.2-10.5 s for 4 frames
    // with a 0.04-0.6 s spread, against 11.1-12.2 s with a 1.5-3.5 s spread for 4 per call, and 1 GiB less peak RSS);
    // 4 per call on CUDA, where a larger batch fills the device.
    ls.decode_chunk = device_.is_cuda() ? 4 : 1;
    ls.clock = clock.get();

    // Colour conversion, paste-back and H.264 run on the writer thread while the networks denoise the next clip.
    // Declared after `writer`: destroyed first, so a cancelled job stops the thread before the file goes.
    double t_push = 0;
    pipeline::AsyncFrameWriter frames_out(
        [&](const torch::Tensor& u8) {                                              // [n, S, S, 3] host
          for (int64_t k = 0; k < u8.size(0); ++k) {
            cv::Mat rgb(size, size, CV_8UC3, u8[k].data_ptr());
            if (paste) {
              cv::Mat full = face::paste_back(portrait->original_rgb, rgb, portrait->analysis.crop);
              writer.write(full(cv::Rect(0, 0, out_w, out_h)));
            } else {
              writer.write(rgb);
            }
          }
        },
        2 * F);
    auto stats = pipeline::run_clips(
        *nets_, spec_.scheduler, job, ls,
        [&](int64_t, const torch::Tensor& frames01) {
          auto te = Clock::now();
          frames_out.push(frames01);
          t_push += seconds_since(te);
        },
        [&](const char* stage, int cur, int total, int clip, int nclips) {
          check_cancel();
          if (std::strcmp(stage, "denoise") == 0) {
            at = JobPoint{clip, nclips, cur, total};
            fault.at_step(clip);
          }
          report(stage, cur, total, clip, nclips);
        });
    const int64_t written = stats.frames;
    const double t_denoise = stats.denoise_s, t_decode = stats.decode_s;
    timings["denoise"] = t_denoise;
    timings["decode"] = t_decode - t_push;
    check_cancel();
    auto tf = Clock::now();
    {
      pipeline::StageClock::Scope sc(clock.get(), "finish");  // includes waiting for the writer thread's last frames
      frames_out.finish();
      writer.close();  // complete, but still under its temporary name until the sidecar is written too
    }
    timings["encode"] = frames_out.busy_seconds() + seconds_since(tf);  // mostly overlapped with the denoising

    GenerateResult res;
    res.output = req.output;
    res.frames = static_cast<int>(written);
    res.seconds_of_video = static_cast<double>(written) / fps;
    res.elapsed_s = seconds_since(t_start);
    if (clock)
      for (const auto& [name, st] : clock->stages()) {
        auto& out = res.stages[name];
        out = StageStats{st.seconds, st.flops, st.counted_calls, st.call_flops, {}};
        for (const auto& [op, t] : st.ops) out.ops.push_back(OpStat{op, t.calls, t.self_s, t.total_s});
        std::sort(out.ops.begin(), out.ops.end(), [](const OpStat& a, const OpStat& b) { return a.self_s > b.self_s; });
      }
    std::unique_ptr<util::AtomicFile> sidecar_file;
    if (p.write_sidecar) {
      nlohmann::json side = params_json;
      side["output"] = req.output;
      side["frames"] = written;
      side["audio_seconds"] = feats->seconds;
      side["video_seconds"] = res.seconds_of_video;
      side["device"] = device_.str();
      side["dtype"] = std::string(c10::toString(dtype_));
      side["torch"] = compat::torch_version();
      side["attention"] = compat::effective_attention();
      if (device_.is_cpu()) side["cpu_linear"] = compat::effective_cpu_linear();
      if (device_.is_cuda()) side["cudnn_benchmark"] = at::globalContext().benchmarkCuDNN();
      side["vae_layout"] = nets_->vae->channels_last() ? "nhwc" : "nchw";
      side["video_encoder"] = writer.video_encoder();
      side["face"] = {{"detector", portrait->analysis.detector}, {"masks", portrait->analysis.mask_source},
                      {"has_embedding", portrait->analysis.has_embedding}, {"warnings", portrait->analysis.warnings}};
      side["model"] = model_hashes();
      side["timings_s"] = timings;
      side["timings_s"]["load"] = load_seconds_;
      side["timings_s"]["total"] = res.elapsed_s;
      res.sidecar = pipeline::sidecar_path(req.output);
      sidecar_file = pipeline::write_json_pending(res.sidecar, side);
    }
    // Everything the job promised is written: only now do the final names appear, sidecar first. If either
    // rename fails, nothing is left under the final names (the writer removes its file when destroyed).
    if (sidecar_file) sidecar_file->commit();
    try {
      writer.commit();
    } catch (...) {
      if (sidecar_file) std::remove(res.sidecar.c_str());
      throw;
    }
    report("done", 1, 1);
    return res;
  }

  // crop = false: hallo's ImageProcessor (the whole image analysed as loaded, then resized to SxS: a squash for
  // non-square portraits); crop = true: a square around the face first (kept for paste-back).
  std::shared_ptr<Portrait> get_portrait(const std::string& path, int size, bool require_face, bool crop) {
    const std::string key = file_key(path) + "|" + std::to_string(size) + "|" + (require_face ? "r" : "") +
                            (crop ? "|crop" : "|resize");
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = portraits_.find(key);
      if (it != portraits_.end()) return it->second;
    }
    face::FaceOptions fo;
    fo.model_dir = spec_.paths.face_models_dir;
    fo.face_expand_ratio = spec_.preset.face_expand_ratio;
    fo.img_size = size;
    fo.require_face = require_face;
    fo.square_crop = crop;
    face::FaceAnalyzer analyzer(fo);
    auto pr = std::make_shared<Portrait>();
    cv::Mat rgb;  // decoded once (emo::image): the analysis, its crop and paste-back share these upright pixels
    pr->analysis = analyzer.analyze_file(path, &rgb);
    for (const auto& w : pr->analysis.warnings) log_warn(path + ": " + w);
    if (pr->analysis.crop.cropped()) pr->original_rgb = rgb;
    auto t = face::to_hallo_inputs(pr->analysis);  // exactly hallo's preprocess tensors
    pr->pixels = t.ref_image.unsqueeze(0);                                          // [1, 3, S, S] in [-1, 1]
    pr->face_region = t.face_mask.unsqueeze(0);                                     // [1, 3, S, S] in [0, 1]
    pr->embedding = t.face_emb;                                                     // [512]
    for (int l = 0; l < 4; ++l) {
      pr->full[l] = t.full_mask[l];                                                 // [1, (S/8/2^l)^2]
      pr->face[l] = t.face_masks[l];
      pr->lip[l] = t.lip_masks[l];
    }
    std::lock_guard<std::mutex> lock(mu_);
    remember(portraits_, portrait_order_, key, pr, kCachedPortraits);
    return pr;
  }

  // Hallo's layout: <model folder>/audio_separator/Kim_Vocal_2.onnx ("" when the folder has none).
  std::string separator_path() const {
    const auto f = fs::path(spec_.paths.root) / "audio_separator" / "Kim_Vocal_2.onnx";
    std::error_code ec;
    return fs::is_regular_file(f, ec) ? f.string() : std::string();
  }

  const audio::MdxSeparator& separator() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!separator_) separator_ = std::make_unique<audio::MdxSeparator>(audio::MdxSeparator::load(separator_path(), {}, device_.str()));
    return *separator_;
  }

  nlohmann::json separator_info() {
    std::lock_guard<std::mutex> lock(mu_);
    if (separator_info_.is_null()) {
      const auto path = separator_path();
      hub::Sha256 sha;
      hub::for_each_chunk(path, [&](const char* d, size_t n) { sha.update(d, n); });
      separator_info_ = {{"model", fs::path(path).lexically_relative(spec_.paths.root).string()},
                         {"sha256", sha.hex_digest()}};
    }
    return separator_info_;
  }

  std::shared_ptr<AudioFeatures> get_audio(const std::string& path, int fps, int64_t clip, double max_seconds,
                                           bool separate, const audio::ChunkCallback& on_chunk) {
    const std::string key = file_key(path) + "|" + std::to_string(fps) + "|" + std::to_string(clip) + (separate ? "|vocals" : "");
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = audios_.find(key);
      if (it != audios_.end()) return it->second;
    }
    std::vector<float> speech;
    double separation_s = 0;
    if (separate) {
      // audio-separator: librosa.load(mono=False, sr=44100) -> MDX-Net vocals -> 16-bit WAV; then Hallo resamples
      // that file to 16 kHz with ffmpeg and librosa.load(sr=16000) makes it mono (docs/audio.md)
      const auto ts = Clock::now();
      const auto& sep = separator();
      auto mix = audio::load_mix(path, sep.params().sample_rate, max_seconds);                 // [C, n] at 44.1 kHz
      auto stem = sep.separate(mix, on_chunk);                                                // [2, n] vocals
      if (stem.abs().max().item<float>() < 1e-6f)  // audio-separator writes no file then (Hallo stops)
        throw InputError(path + ": the separated vocals are silent (no voice found); use --no-vocal-separation to animate the audio as it is");
      speech = audio::hallo_vocals_16k(audio::stem_to_int16(stem), sep.params().sample_rate);
      separation_s = seconds_since(ts);
    } else {
      audio::AudioSource src;
      speech = audio::load_speech_16k(path, &src, max_seconds);
    }
    audio::EmbedOptions eo;
    eo.fps = fps;
    eo.clip_length = clip;
    auto emb = wav2vec_->embed(speech, eo);
    auto f = std::make_shared<AudioFeatures>();
    f->emb = emb.emb;                                                               // [seq_len, L, H]
    f->seq_len = emb.seq_len;
    f->audio_length = emb.audio_length;
    f->seconds = static_cast<double>(speech.size()) / 16000.0;
    f->separation_s = separation_s;
    std::lock_guard<std::mutex> lock(mu_);
    remember(audios_, audio_order_, key, f, kCachedAudios);
    return f;
  }

  // Per-job caches are bounded: a batch that shares a portrait or a voice between neighbouring jobs analyses it
  // once, and a long batch keeps no more than the last few (memory stays flat over thousands of jobs).
  static constexpr size_t kCachedPortraits = 8;
  static constexpr size_t kCachedAudios = 2;
  template <class V>
  static void remember(std::map<std::string, V>& cache, std::deque<std::string>& order, const std::string& key,
                       const V& value, size_t capacity) {
    if (cache.emplace(key, value).second) order.push_back(key);
    while (order.size() > capacity) {
      cache.erase(order.front());
      order.pop_front();
    }
  }

  nlohmann::json model_hashes() {
    std::lock_guard<std::mutex> lock(mu_);
    if (hashes_.is_null()) {
      hashes_ = nlohmann::json::object();
      for (const auto& f : {spec_.paths.net, spec_.paths.vae_weights, spec_.paths.wav2vec_weights})
        if (!f.empty()) hashes_[fs::path(f).lexically_relative(spec_.paths.root).string()] = "fnv64:" + pipeline::hash_file(f);
    }
    return hashes_;
  }

  ModelSpec spec_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat;
  std::unique_ptr<pipeline::Networks> nets_;
  std::unique_ptr<audio::Wav2Vec2Embedder> wav2vec_;
  std::unique_ptr<audio::MdxSeparator> separator_;  // loaded on first use
  nlohmann::json separator_info_;
  double load_seconds_ = 0;
  std::atomic<int> jobs_started_{0};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Portrait>> portraits_;
  std::map<std::string, std::shared_ptr<AudioFeatures>> audios_;
  std::deque<std::string> portrait_order_, audio_order_;
  nlohmann::json hashes_;
};

}  // namespace

std::unique_ptr<Pipeline> Pipeline::load(const ModelSpec& spec, const RuntimeOptions& runtime) {
  return std::make_unique<HalloPipeline>(spec, runtime);
}

}  // namespace emo
