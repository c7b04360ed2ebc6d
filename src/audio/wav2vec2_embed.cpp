// hallo.datasets.audio_processor.AudioProcessor.preprocess (wav2vec2 part) and scripts/inference.py
// process_audio_emb, with bounded memory for long audio (docs/audio.md).
#include <cmath>
#include <filesystem>
#include <fstream>

#include "audio/wav2vec2_model.h"
#include "emo/audio.h"
#include "emo/error.h"
#include "nn/layers.h"
#include "emo/key_rename.h"
#include "emo/state_dict.h"
#include "emo/weight_loader.h"

namespace emo::audio {

namespace fs = std::filesystem;

struct Wav2Vec2Embedder::Impl {
  Wav2Vec2Model model{nullptr};
  torch::Device device{torch::kCPU};
};

Wav2Vec2Embedder::Wav2Vec2Embedder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Wav2Vec2Embedder::Wav2Vec2Embedder(Wav2Vec2Embedder&&) noexcept = default;
Wav2Vec2Embedder& Wav2Vec2Embedder::operator=(Wav2Vec2Embedder&&) noexcept = default;
Wav2Vec2Embedder::~Wav2Vec2Embedder() = default;

namespace {
nlohmann::json read_json_file(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw ModelError(p.string() + ": cannot open");
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw ModelError(p.string() + ": invalid JSON (" + e.what() + ")");
  }
}
}  // namespace

Wav2Vec2Embedder Wav2Vec2Embedder::load(const std::string& dir, const std::string& device) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw ModelError(dir + ": wav2vec2 folder not found");
  const fs::path cfg_path = d / "config.json";
  if (!fs::exists(cfg_path)) throw ModelError(cfg_path.string() + ": missing (wav2vec2 config)");
  fs::path weights;
  for (const char* name : {"model.safetensors", "pytorch_model.bin"})
    if (fs::exists(d / name)) { weights = d / name; break; }
  if (weights.empty()) throw ModelError(dir + ": no model.safetensors or pytorch_model.bin");
  return load_files(cfg_path.string(), weights.string(), device);
}

Wav2Vec2Embedder Wav2Vec2Embedder::load_files(const std::string& config_json, const std::string& weights,
                                            const std::string& device) {
  const fs::path cfg_path(config_json);
  auto j = read_json_file(cfg_path);
  const fs::path pre = cfg_path.parent_path() / "preprocessor_config.json";
  if (!j.contains("feature_extractor") && fs::exists(pre)) j["feature_extractor"] = read_json_file(pre);
  auto cfg = Wav2Vec2Config::from_json(j, cfg_path.string());

  auto impl = std::make_unique<Impl>();
  {
    // Filled below by the strict loader: skip the default initialisation (see nn/layers.h).
    nn::UninitializedParameters uninitialized(torch::TensorOptions().dtype(torch::kFloat).device(torch::Device(device)));
    impl->model = Wav2Vec2Model(cfg);
  }
  auto sd = io::rename_keys(io::load_state_dict(weights), io::KeyScheme::kWav2Vec2);
  io::LoadOptions lo;
  lo.source = weights;
  // Heads of Wav2Vec2ForCTC / Wav2Vec2ForPreTraining that Wav2Vec2Model does not have.
  lo.ignore_unexpected = {"lm_head.", "quantizer.", "project_q.", "project_hid."};
  io::load_module(*impl->model, sd, lo);
  impl->device = torch::Device(device);
  impl->model->to(impl->device);
  impl->model->eval();
  return Wav2Vec2Embedder(std::move(impl));
}

AudioEmbedding Wav2Vec2Embedder::embed(const std::vector<float>& speech, const EmbedOptions& o) const {
  c10::InferenceMode guard;
  auto& m = *impl_->model;
  const auto& cfg = m.config;
  if (speech.empty()) throw InputError("audio has no samples");
  if (o.fps <= 0 || o.clip_length <= 0) throw UsageError("invalid fps / clip length for audio embedding");

  const auto n = static_cast<int64_t>(speech.size());
  auto x = torch::from_blob(const_cast<float*>(speech.data()), {n}, torch::kFloat).to(impl_->device);
  AudioEmbedding out;
  int64_t seq_len = static_cast<int64_t>(std::ceil(static_cast<double>(n) / static_cast<double>(cfg.sampling_rate) * o.fps));
  out.audio_length = seq_len;
  int64_t pad = 0;
  if (seq_len % o.clip_length != 0) {
    const int64_t pad_frames = o.clip_length - seq_len % o.clip_length;
    pad = pad_frames * static_cast<int64_t>(static_cast<double>(cfg.sampling_rate) / o.fps);
    seq_len += pad_frames;
  }
  out.seq_len = seq_len;
  {
    // Normalise (over the real samples only, as Hallo) straight into the zero-padded buffer.
    auto padded = torch::zeros({n + pad}, x.options());
    padded.narrow(0, 0, n).copy_(cfg.do_normalize ? normalize_waveform(x) : x);
    x = padded;  // never aliases the caller's buffer
  }
  if (cfg.num_frames(x.size(0)) < 1) throw InputError("audio is too short for wav2vec2 (" + std::to_string(n) + " samples)");

  auto conv = m.feature_extractor->forward_chunked(x.unsqueeze(0), o.cnn_chunk_frames);  // [1, C, T']
  auto feats = interpolate_frames(conv.transpose(1, 2), seq_len);                        // [1, seq_len, C]
  conv = torch::Tensor();
  const int64_t layers = cfg.num_hidden_layers, hidden = cfg.hidden_size;

  auto encode = [&](const torch::Tensor& f) {  // [1, T, C] -> [T, L, D]
    auto states = m.encoder(m.feature_projection(f).first);
    std::vector<torch::Tensor> kept(states.begin() + 1, states.end());
    return torch::stack(kept, 2).squeeze(0);  // [T, L, D]
  };

  if (o.max_frames_per_pass <= 0 || seq_len <= o.max_frames_per_pass) {
    out.emb = encode(feats).contiguous().to(torch::kCPU);
    return out;
  }
  // Long audio: windows of at most max_frames_per_pass frames; each keeps its core and drops
  // context_frames of context on each side (clamped at the clip ends).
  const int64_t ctx = std::max<int64_t>(0, std::min(o.context_frames, (o.max_frames_per_pass - 1) / 2));
  const int64_t core = o.max_frames_per_pass - 2 * ctx;
  out.emb = torch::empty({seq_len, layers, hidden}, torch::kFloat);
  for (int64_t s = 0; s < seq_len; s += core) {
    const int64_t e = std::min(seq_len, s + core);
    const int64_t a = std::max<int64_t>(0, s - ctx), b = std::min(seq_len, e + ctx);
    auto y = encode(feats.narrow(1, a, b - a));  // [b-a, L, D]
    out.emb.narrow(0, s, e - s).copy_(y.narrow(0, s - a, e - s));
  }
  return out;
}

at::Tensor audio_windows(const at::Tensor& audio_emb, int64_t radius) {
  return audio_windows(audio_emb, radius, 0, audio_emb.size(0));
}

at::Tensor audio_windows(const at::Tensor& audio_emb, int64_t radius, int64_t begin, int64_t end) {
  const int64_t f = audio_emb.size(0);
  if (begin < 0 || end > f || begin > end)
    throw InputError("audio_windows: frames [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") outside the " + std::to_string(f) + " frames of the features");
  std::vector<torch::Tensor> cols;
  auto base = torch::arange(begin, end, torch::TensorOptions().dtype(torch::kLong).device(audio_emb.device()));
  for (int64_t j = -radius; j <= radius; ++j) cols.push_back(audio_emb.index_select(0, (base + j).clamp(0, f - 1)));
  return torch::stack(cols, 1);  // [end - begin, 2r+1, L, D]
}

}  // namespace emo::audio
