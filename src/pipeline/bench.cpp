#include "emo/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#ifdef EMO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

#include "emo/audio.h"
#include "emo/compat.h"
#include "emo/error.h"
#include "pipeline/runtime.h"

namespace fs = std::filesystem;

namespace emo {

namespace {

std::string dims(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}
double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}
double stddev_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

// A portrait-like synthetic image: skin-toned ellipse with eyes and mouth on a gradient (the face detector may or
// may not accept it; either way the portrait stage runs the code generate runs for such an image).
void write_portrait(const std::string& path, int size) {
  cv::Mat img(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(60 + 80 * y / size), 90, static_cast<uchar>(120 + 60 * x / size));
  const cv::Point c(size / 2, size / 2);
  cv::ellipse(img, c, cv::Size(size / 4, size / 3), 0, 0, 360, cv::Scalar(150, 175, 215), cv::FILLED);
  cv::circle(img, cv::Point(size * 2 / 5, size * 9 / 20), size / 30 + 1, cv::Scalar(40, 40, 40), cv::FILLED);
  cv::circle(img, cv::Point(size * 3 / 5, size * 9 / 20), size / 30 + 1, cv::Scalar(40, 40, 40), cv::FILLED);
  cv::ellipse(img, cv::Point(size / 2, size * 2 / 3), cv::Size(size / 10 + 1, size / 30 + 1), 0, 0, 360, cv::Scalar(60, 60, 170), cv::FILLED);
  if (!cv::imwrite(path, img)) throw OutputError(path + ": cannot write the bench's synthetic portrait");
}

// A voice-like synthetic signal: a 140 Hz fundamental with harmonics, amplitude-modulated at syllable rate.
void write_voice(const std::string& path, double seconds) {
  const int sr = 16000;
  std::vector<float> pcm(static_cast<size_t>(std::ceil(seconds * sr)));
  for (size_t i = 0; i < pcm.size(); ++i) {
    const double t = static_cast<double>(i) / sr;
    const double env = 0.5 + 0.5 * std::sin(2 * M_PI * 4 * t);
    double v = 0;
    for (int h = 1; h <= 5; ++h) v += std::sin(2 * M_PI * 140 * h * t) / h;
    pcm[i] = static_cast<float>(0.2 * env * v);
  }
  audio::write_wav_pcm16(path, pcm, sr, 1);
}

std::string device_name(const std::string& device) {
#ifdef EMO_WITH_CUDA
  if (device.rfind("cuda", 0) == 0) {
    cudaDeviceProp p{};
    const torch::Device d(device);
    if (cudaGetDeviceProperties(&p, d.has_index() ? d.index() : 0) == cudaSuccess) return p.name;
  }
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "cpu";
}

void reset_device_peak(const std::string& device) {
#ifdef EMO_WITH_CUDA
  if (device.rfind("cuda", 0) == 0) {
    const torch::Device d(device);
    c10::cuda::CUDACachingAllocator::resetPeakStats(d.has_index() ? d.index() : 0);
  }
#else
  (void)device;
#endif
}

double device_peak_mib(const std::string& device) {
#ifdef EMO_WITH_CUDA
  if (device.rfind("cuda", 0) == 0) {
    const torch::Device d(device);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.has_index() ? d.index() : 0);
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#else
  (void)device;
#endif
  return -1;
}

// Removes the bench's scratch folder however run_bench ends.
struct ScratchDir {
  fs::path path;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
}  // namespace

double StageTiming::mean() const { return mean_of(seconds); }
double StageTiming::stddev() const { return stddev_of(seconds); }
double StageTiming::tflops() const { return flops_per_call > 0 && mean() > 0 ? flops_per_call / mean() / 1e12 : 0; }
double BenchReport::seconds_per_frame() const { return frames_per_run > 0 ? mean_of(run_seconds) / frames_per_run : 0; }
double BenchReport::seconds_per_frame_stddev() const {
  return frames_per_run > 0 ? stddev_of(run_seconds) / frames_per_run : 0;
}

BenchReport run_bench(const ModelSpec& spec_in, const RuntimeOptions& rt, const BenchOptions& o,
                      const ProgressCallback& progress) {
  if (o.repeat < 1 || o.warmup < 0) throw UsageError("--repeat must be >= 1 and --warmup >= 0");
  if (o.clips < 1) throw UsageError("--clips must be >= 1");
  if (o.frames < 0 || o.size < 0 || o.steps < 0 || o.cfg_scale < 0)
    throw UsageError("--frames, --size, --steps and --cfg must be >= 0 (0 = the model's preset)");
  ModelSpec spec = spec_in;
  if (o.frames > 0) spec.preset.clip_frames = o.frames;

  BenchReport r;
  r.model_dir = spec.paths.root;
  r.device = rt.device;
  r.device_name = device_name(rt.device);
  r.dtype = rt.dtype;
  r.torch_version = compat::torch_version();
  r.frames = static_cast<int>(spec.preset.clip_frames);
  r.clips = o.clips;

  GenerateRequest req;
  req.params.width = o.size;
  req.params.steps = o.steps;
  req.params.sampler = o.sampler;
  req.params.cfg_scale = o.cfg_scale;
  req.params.write_sidecar = false;
  const EffectiveParams eff = validate(req.params, spec.preset);
  r.size = eff.size;
  r.steps = eff.steps;
  r.sampler = o.sampler;
  r.cfg_scale = eff.cfg_scale;

  ScratchDir scratch{fs::temp_directory_path() / ("emo_bench_" + std::to_string(::getpid()))};
  fs::create_directories(scratch.path);
  req.output = (scratch.path / "out.mp4").string();

  auto pipeline = Pipeline::load(spec, rt);
  r.load_seconds = pipeline->load_seconds();
  r.peak_rss_after_load_mib = peak_rss_mib();
  r.attention = compat::effective_attention();
  r.cpu_linear = rt.device == "cpu" && rt.dtype == "fp32" ? compat::effective_cpu_linear() : "aten";
  r.threads = torch::get_num_threads();
  r.host_memory = compat::host_memory_policy();
  r.vae_layout = pipeline::vae_channels_last(rt.vae_layout) ? "nhwc" : "nchw";  // the rule Pipeline::load applied

  // FLOPs are counted by shape in the first run: a warm-up run when there is one (the profiler adds a little host
  // time per op), else the first timed run.
  const int warmups = o.warmup;
  const int total = warmups + o.repeat;
  compat::attention_shapes_take();  // only the counted run's shapes
  // Operators (--ops) in the last warm-up run, whose steps run warm (primitives created, memory faulted in); without
  // warm-up in the first timed run, which the profiler then slows a little.
  const int ops_run = o.ops > 0 ? std::max(0, warmups - 1) : -1;
  std::map<std::string, StageStats> counted, op_profiled;
  std::map<std::string, std::vector<double>> timed;
  for (int i = 0; i < total; ++i) {
    const bool warm = i < warmups;
    if (i == warmups) reset_device_peak(rt.device);
    req.profile = i == ops_run                  ? StageProfile::kTimeFlopsAndOps
                  : (i == 0 && o.count_flops) ? StageProfile::kTimeAndFlops
                                              : StageProfile::kTime;
    // Every run is a new job (new files: generate caches the analysis of a portrait and a voice it has seen).
    // Exactly `clips` clips: the video is as long as the voice (frames = seconds x fps).
    req.image = (scratch.path / ("portrait_" + std::to_string(i) + ".png")).string();
    req.audio = (scratch.path / ("voice_" + std::to_string(i) + ".wav")).string();
    write_portrait(req.image, r.size);
    write_voice(req.audio, static_cast<double>(o.clips * r.frames) / eff.fps);
    auto res = pipeline->generate(req);
    if (i == ops_run) op_profiled = res.stages;
    if (i == 0 && req.profile != StageProfile::kTime) {
      counted = res.stages;
      for (const auto& a : compat::attention_shapes_take())
        r.attention_shapes.push_back({dims(a.q), dims(a.k), a.dtype, a.kernel, a.calls});
    }
    if (!warm) {
      r.run_seconds.push_back(res.elapsed_s);
      r.frames_per_run = res.frames;
      for (const auto& [name, st] : res.stages) timed[name].insert(timed[name].end(), st.seconds.begin(), st.seconds.end());
    }
    if (progress) progress(Progress{warm ? "warm-up run" : "timed run", i + 1, total, 0, 0, 0});
  }
  r.runs = o.repeat;
  if (ops_run >= 0) {
    r.ops_top = o.ops;
    r.ops_run = ops_run < warmups ? "warm-up run " + std::to_string(ops_run + 1) : "timed run 1";
  }
  r.peak_rss_mib = peak_rss_mib();
  r.peak_device_mib = device_peak_mib(rt.device);
  // Stages in the order generate runs them.
  const std::vector<std::string> order = {"portrait", "wav2vec2", "face_locator", "vae_encode", "reference_net", "audio_proj",
                                          "unet3d_step", "guidance_step", "vae_decode", "frames_out", "finish"};
  auto add = [&](const std::string& name) {
    auto it = timed.find(name);
    if (it == timed.end()) return;
    StageTiming t;
    t.stage = name;
    t.seconds = it->second;
    t.calls_per_run = static_cast<int>(t.seconds.size() / std::max(1, o.repeat));
    auto c = counted.find(name);
    if (c != counted.end() && c->second.counted_calls > 0) {
      t.flops_per_call = c->second.flops / c->second.counted_calls;
      r.flops_per_run += c->second.flops;
    }
    if (o.clips > 1 && t.calls_per_run == o.clips) {
      t.split_by_clip = true;
      for (size_t k = 0; k < t.seconds.size(); ++k)
        (k % o.clips == 0 ? t.first_clip_seconds : t.later_clip_seconds).push_back(t.seconds[k]);
      if (c != counted.end() && c->second.call_flops.size() == static_cast<size_t>(o.clips)) {
        const auto& f = c->second.call_flops;
        t.first_clip_flops = f[0];
        t.later_clip_flops = mean_of(std::vector<double>(f.begin() + 1, f.end()));
      }
    }
    auto p = op_profiled.find(name);
    if (p != op_profiled.end()) {
      const auto& ops = p->second.ops;
      t.ops.assign(ops.begin(), ops.begin() + std::min<size_t>(ops.size(), static_cast<size_t>(o.ops)));
    }
    r.stages.push_back(std::move(t));
  };
  for (const auto& n : order) add(n);
  for (const auto& [n, v] : timed)
    if (std::find(order.begin(), order.end(), n) == order.end()) add(n);
  return r;
}

std::string bench_markdown(const BenchReport& r) {
  std::string s;
  char buf[768];
  std::snprintf(buf, sizeof buf,
                "emo bench: %s on %s [%s] (%s), libtorch %s, %s attention, %s linear, %d threads, host memory %s, VAE %s\n"
                "generate path: %d clip(s) of %d frames at %dx%d, %d %s steps, cfg %.2f; %d timed run(s)\n\n",
                r.model_dir.c_str(), r.device.c_str(), r.device_name.c_str(), r.dtype.c_str(), r.torch_version.c_str(),
                r.attention.c_str(), r.cpu_linear.c_str(), r.threads, r.host_memory.c_str(), r.vae_layout.c_str(), r.clips, r.frames, r.size, r.size, r.steps, r.sampler.c_str(), r.cfg_scale, r.runs);
  s += buf;
  s += "| stage | calls/run | mean per call (s) | ± stddev (s) | per run (s) | GFLOP/call | TFLOP/s |\n"
       "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  std::snprintf(buf, sizeof buf, "| load | 1 | %.3f | | | | |\n", r.load_seconds);
  s += buf;
  for (const auto& st : r.stages) {
    if (st.split_by_clip) {  // one row for the first clip, one for the later ones: their work differs
      const std::string later = r.clips == 2 ? "clip 2" : "clips 2-" + std::to_string(r.clips);
      for (int part = 0; part < 2; ++part) {
        const auto& v = part == 0 ? st.first_clip_seconds : st.later_clip_seconds;
        const double f = part == 0 ? st.first_clip_flops : st.later_clip_flops, m = mean_of(v);
        const int calls = part == 0 ? 1 : r.clips - 1;
        std::snprintf(buf, sizeof buf, "| %s, %s | %d | %.4f | %.4f | %.3f | %.4g | %.3f |\n", st.stage.c_str(),
                      part == 0 ? "clip 1" : later.c_str(), calls, m, stddev_of(v), m * calls, f / 1e9,
                      m > 0 ? f / m / 1e12 : 0.0);
        s += buf;
      }
      continue;
    }
    std::snprintf(buf, sizeof buf, "| %s | %d | %.4f | %.4f | %.3f | %.4g | %.3f |\n", st.stage.c_str(), st.calls_per_run,
                  st.mean(), st.stddev(), st.mean() * st.calls_per_run, st.flops_per_call / 1e9, st.tflops());
    s += buf;
  }
  const double run = r.frames_per_run > 0 ? r.seconds_per_frame() * r.frames_per_run : 0;
  std::snprintf(buf, sizeof buf,
                "\nwhole run %.3f s for %d frames: %.4f ± %.4f s per output frame; %.2f TFLOP per run (%.3f TFLOP/s)\n"
                "peak host RSS %.0f MiB (%.0f MiB after loading in %.2f s)",
                run, r.frames_per_run, r.seconds_per_frame(), r.seconds_per_frame_stddev(), r.flops_per_run / 1e12,
                run > 0 ? r.flops_per_run / run / 1e12 : 0.0, r.peak_rss_mib, r.peak_rss_after_load_mib, r.load_seconds);
  s += buf;
  if (r.peak_device_mib >= 0) {
    std::snprintf(buf, sizeof buf, "; peak device memory %.0f MiB", r.peak_device_mib);
    s += buf;
  }
  s += "\n";
  if (!r.attention_shapes.empty()) {
    s += "\nattention kernels (counted run; sdpa: libtorch's choice for these inputs)\n\n"
         "| q [B, H, Lq, D] | k [B, H, Lk, D] | dtype | kernel | calls |\n| --- | --- | --- | --- | ---: |\n";
    for (const auto& a : r.attention_shapes)
      s += "| " + a.q + " | " + a.k + " | " + a.dtype + " | " + a.kernel + " | " + std::to_string(a.calls) + " |\n";
  }
  if (r.ops_top > 0) {
    s += "\noperators of each stage's last call in " + r.ops_run + " (libtorch's profiler; CPU time on the "
         "dispatching thread; self excludes the operators it called)\n";
    for (const auto& st : r.stages) {
      if (st.ops.empty()) continue;
      std::snprintf(buf, sizeof buf, "\n%s: top %zu operators by self time\n\n", st.stage.c_str(), st.ops.size());
      s += buf;
      s += "| operator | calls | self (s) | total (s) |\n| --- | ---: | ---: | ---: |\n";
      for (const auto& op : st.ops) {
        std::snprintf(buf, sizeof buf, "| %s | %lld | %.4f | %.4f |\n", op.name.c_str(), static_cast<long long>(op.calls),
                      op.self_s, op.total_s);
        s += buf;
      }
    }
  }
  return s;
}

std::string bench_json(const BenchReport& r) {
  nlohmann::json j = {{"model", r.model_dir}, {"device", r.device}, {"device_name", r.device_name}, {"dtype", r.dtype},
                      {"torch", r.torch_version}, {"attention", r.attention}, {"cpu_linear", r.cpu_linear}, {"threads", r.threads}, {"host_memory", r.host_memory}, {"vae_layout", r.vae_layout},
                      {"frames", r.frames}, {"size", r.size}, {"steps", r.steps}, {"sampler", r.sampler}, {"cfg_scale", r.cfg_scale},
                      {"clips", r.clips}, {"runs", r.runs}, {"load_s", r.load_seconds},
                      {"run_seconds", r.run_seconds}, {"frames_per_run", r.frames_per_run},
                      {"seconds_per_frame", r.seconds_per_frame()}, {"seconds_per_frame_stddev", r.seconds_per_frame_stddev()},
                      {"flops_per_run", r.flops_per_run},
                      {"peak_rss_mib", r.peak_rss_mib}, {"peak_rss_after_load_mib", r.peak_rss_after_load_mib},
                      {"peak_device_mib", r.peak_device_mib >= 0 ? nlohmann::json(r.peak_device_mib) : nlohmann::json(nullptr)}};
  j["attention_shapes"] = nlohmann::json::array();
  for (const auto& a : r.attention_shapes)
    j["attention_shapes"].push_back({{"q", a.q}, {"k", a.k}, {"dtype", a.dtype}, {"kernel", a.kernel}, {"calls", a.calls}});
  j["stages"] = nlohmann::json::array();
  if (r.ops_top > 0) j["ops_run"] = r.ops_run;
  for (const auto& st : r.stages) {
    nlohmann::json e = {{"stage", st.stage}, {"calls_per_run", st.calls_per_run}, {"mean_s", st.mean()},
                        {"stddev_s", st.stddev()}, {"per_run_s", st.mean() * st.calls_per_run},
                        {"flops_per_call", st.flops_per_call}, {"tflops", st.tflops()}, {"runs", st.seconds}};
    if (st.split_by_clip) {
      e["first_clip"] = {{"mean_s", mean_of(st.first_clip_seconds)}, {"flops_per_call", st.first_clip_flops},
                         {"runs", st.first_clip_seconds}};
      e["later_clips"] = {{"mean_s", mean_of(st.later_clip_seconds)}, {"flops_per_call", st.later_clip_flops},
                          {"runs", st.later_clip_seconds}};
    }
    if (!st.ops.empty()) {
      e["ops"] = nlohmann::json::array();
      for (const auto& op : st.ops)
        e["ops"].push_back({{"name", op.name}, {"calls", op.calls}, {"self_s", op.self_s}, {"total_s", op.total_s}});
    }
    j["stages"].push_back(std::move(e));
  }
  return j.dump(2);
}

}  // namespace emo
