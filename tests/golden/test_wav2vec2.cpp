// Golden parity: HF Wav2Vec2Model + hallo's interpolating Wav2VecModel.forward (shared/golden/wav2vec2).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

#include "emo/error.h"
#include "emo/state_dict.h"

#include "audio/wav2vec2_model.h"
#include "emo/audio.h"
#include "emo/key_rename.h"
#include "emo/weight_loader.h"
#include "support/golden.h"

namespace {

using emo::audio::Wav2Vec2Config;
using emo::audio::Wav2Vec2Model;

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

char nn_name(char* buf, size_t n, const char* prefix, size_t i) {
  std::snprintf(buf, n, "%s%02zu", prefix, i);
  return buf[0];
}

Wav2Vec2Model make_model(const emo::test::Fixture& fx) {
  auto cfg = Wav2Vec2Config::from_json(fx.config(), fx.path("config.json"));
  Wav2Vec2Model m(cfg);
  emo::io::LoadOptions lo;
  lo.source = fx.path("weights.safetensors");
  emo::io::load_module(*m, emo::io::rename_keys(fx.weights(), emo::io::KeyScheme::kWav2Vec2), lo);
  m->eval();
  return m;
}

TEST(Wav2Vec2Golden, HuggingFaceForward) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  c10::InferenceMode guard;
  auto m = make_model(fx);
  auto raw = fx.input("raw_waveform");  // [1, N]
  auto iv = emo::audio::normalize_waveform(raw);
  EXPECT_TRUE(emo::test::AllClose(iv, fx.output("input_values"), 1e-5));
  auto o = m->forward(fx.output("input_values"));
  EXPECT_TRUE(emo::test::AllClose(o.conv_features, fx.output("conv_features"), 1e-4));
  EXPECT_TRUE(emo::test::AllClose(o.extract_features, fx.output("extract_features"), 1e-4));
  size_t expected_states = 0;
  char name[64];
  while (nn_name(name, sizeof(name), "output.hidden_states.", expected_states) && fx.has(name)) ++expected_states;
  ASSERT_EQ(o.hidden_states.size(), expected_states);
  for (size_t i = 0; i < expected_states; ++i) {
    nn_name(name, sizeof(name), "hidden_states.", i);
    EXPECT_TRUE(emo::test::AllClose(o.hidden_states[i], fx.output(name), 1e-4)) << name;
  }
  EXPECT_TRUE(emo::test::AllClose(o.hidden_states.back(), fx.output("last_hidden_state"), 1e-4));
  std::printf("[wav2vec2] max|diff| input_values %.3g conv %.3g last_hidden_state %.3g\n",
              max_diff(iv, fx.output("input_values")), max_diff(o.conv_features, fx.output("conv_features")),
              max_diff(o.hidden_states.back(), fx.output("last_hidden_state")));
}

TEST(Wav2Vec2Golden, HalloInterpolatingForward) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  c10::InferenceMode guard;
  auto m = make_model(fx);
  const int64_t seq_len = fx.input("hallo.seq_len").item<int64_t>();
  auto o = m->forward_hallo(fx.output("hallo.input_values_padded"), seq_len);
  EXPECT_TRUE(emo::test::AllClose(o.conv_features, fx.output("hallo.interpolated_features"), 1e-4));
  char name[64];
  for (size_t i = 0; i < o.hidden_states.size(); ++i) {
    nn_name(name, sizeof(name), "hallo.hidden_states.", i);
    EXPECT_TRUE(emo::test::AllClose(o.hidden_states[i], fx.output(name), 1e-4)) << name;
  }
}

// The public path: raw 16 kHz samples -> normalisation -> Hallo padding -> interpolation -> audio_emb.
TEST(Wav2Vec2Golden, EmbedMatchesHalloAudioEmb) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  auto enc = emo::audio::Wav2Vec2Embedder::load_files(fx.path("config.json"), fx.path("weights.safetensors"));
  auto raw = fx.input("raw_waveform").contiguous();
  std::vector<float> speech(raw.data_ptr<float>(), raw.data_ptr<float>() + raw.numel());
  emo::audio::EmbedOptions opt;
  opt.fps = 25;
  opt.clip_length = 4;  // the fixture README: "clip_length = 4 here"
  auto e = enc.embed(speech, opt);
  EXPECT_EQ(e.seq_len, fx.input("hallo.seq_len").item<int64_t>());
  EXPECT_EQ(e.audio_length, fx.input("hallo.audio_length").item<int64_t>());
  EXPECT_TRUE(emo::test::AllClose(e.emb, fx.output("hallo.audio_emb"), 1e-4));
  std::printf("[wav2vec2] embed audio_emb max|diff| %.3g\n", max_diff(e.emb, fx.output("hallo.audio_emb")));

  // The bounded-memory paths on the same input: the chunked CNN is exact; the windowed transformer is not
  // (global attention), its error here is printed for docs/audio.md.
  opt.cnn_chunk_frames = 5;
  auto c = enc.embed(speech, opt);
  EXPECT_TRUE(emo::test::AllClose(c.emb, fx.output("hallo.audio_emb"), 1e-4));
  opt.max_frames_per_pass = 8;  // opt-in approximation
  opt.context_frames = 2;
  auto w = enc.embed(speech, opt);
  std::printf("[wav2vec2] windowed transformer (8 frames, 2 context) vs single pass max|diff| %.3g\n",
              max_diff(w.emb, e.emb));
}

// Windowed transformer vs a single pass on 20 s of audio (500 frames) with the fixture's weights: printed for
// docs/audio.md; the windowed result must still be finite and of the right shape.
TEST(Wav2Vec2Golden, WindowedTransformerError) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  auto enc = emo::audio::Wav2Vec2Embedder::load_files(fx.path("config.json"), fx.path("weights.safetensors"));
  std::vector<float> speech(20 * 16000);
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.f, 0.05f);
  for (size_t i = 0; i < speech.size(); ++i)
    speech[i] = 0.3f * static_cast<float>(std::sin(2.0 * 3.14159265358979 * 180.0 * i / 16000.0)) *
                    (0.6f + 0.4f * static_cast<float>(std::sin(i * 3e-4))) + noise(rng);
  emo::audio::EmbedOptions opt;
  auto single = enc.embed(speech, opt);
  for (auto [win, ctx] : {std::pair<int64_t, int64_t>{250, 50}, {250, 100}, {100, 25}}) {
    opt.max_frames_per_pass = win;
    opt.context_frames = ctx;
    auto w = enc.embed(speech, opt);
    ASSERT_EQ(w.emb.sizes(), single.emb.sizes());
    EXPECT_FALSE(w.emb.isnan().any().item<bool>());
    auto d = (w.emb - single.emb).abs();
    std::printf("[wav2vec2] windowed %lld/%lld ctx vs single pass on 500 frames: max|diff| %.3g mean|diff| %.3g (absmax %.3g)\n",
                static_cast<long long>(win), static_cast<long long>(ctx), d.max().item<double>(), d.mean().item<double>(),
                single.emb.abs().max().item<double>());
  }
}

// Attention in query blocks (the long-audio memory bound) gives the same hidden states.
TEST(Wav2Vec2Golden, BlockedAttentionIsExact) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  c10::InferenceMode guard;
  auto m = make_model(fx);
  for (const auto& layer : *m->encoder->layers) {
    auto* attn = layer->as<emo::audio::Wav2Vec2EncoderLayer>()->attention.get();
    attn->max_score_elements = 5 * attn->heads * 24;  // 5 query rows per block on 24 frames
  }
  auto o = m->forward(fx.output("input_values"));
  EXPECT_TRUE(emo::test::AllClose(o.hidden_states.back(), fx.output("last_hidden_state"), 1e-4));
}

TEST(Wav2Vec2Golden, ChunkedFeatureEncoderIsExact) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  c10::InferenceMode guard;
  auto m = make_model(fx);
  auto x = fx.output("input_values");
  auto full = m->feature_extractor->forward(x);
  for (int64_t chunk : {1, 3, 7, 23}) {
    auto c = m->feature_extractor->forward_chunked(x, chunk);
    EXPECT_TRUE(emo::test::AllClose(c, full, 1e-5)) << "chunk " << chunk;
  }
}

}  // namespace

namespace {

namespace fs = std::filesystem;

// A Wav2Vec2ForCTC-style folder (wav2vec2. prefix, lm_head, torch >= 2.1 parametrization names) loads
// through KeyScheme::kWav2Vec2 and gives the same embedding.
TEST(Wav2Vec2Golden, LoadsCtcStyleFolder) {
  EMO_GOLDEN_FIXTURE(fx, "wav2vec2");
  auto dir = fs::temp_directory_path() / ("emo_w2v_ctc_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fx.path("config.json"), dir / "config.json", fs::copy_options::overwrite_existing);
  emo::io::StateDict sd;
  for (const auto& [k, v] : fx.weights()) {
    std::string key = "wav2vec2." + k;
    const std::string g = ".weight_g", vv = ".weight_v";
    if (key.size() > g.size() && key.compare(key.size() - g.size(), g.size(), g) == 0)
      key = key.substr(0, key.size() - g.size()) + ".parametrizations.weight.original0";
    else if (key.size() > vv.size() && key.compare(key.size() - vv.size(), vv.size(), vv) == 0)
      key = key.substr(0, key.size() - vv.size()) + ".parametrizations.weight.original1";
    sd[key] = v;
  }
  sd["lm_head.weight"] = torch::zeros({5, fx.config()["hidden_size"].get<int64_t>()});
  sd["lm_head.bias"] = torch::zeros({5});
  emo::io::write_safetensors((dir / "model.safetensors").string(), sd);

  auto enc = emo::audio::Wav2Vec2Embedder::load(dir.string());
  auto raw = fx.input("raw_waveform").contiguous();
  std::vector<float> speech(raw.data_ptr<float>(), raw.data_ptr<float>() + raw.numel());
  emo::audio::EmbedOptions opt;
  opt.clip_length = 4;
  EXPECT_TRUE(emo::test::AllClose(enc.embed(speech, opt).emb, fx.output("hallo.audio_emb"), 1e-4));

  // An unknown extra tensor is still an error (strict loading).
  sd["wav2vec2.encoder.extra"] = torch::zeros({1});
  emo::io::write_safetensors((dir / "model.safetensors").string(), sd);
  EXPECT_THROW(emo::audio::Wav2Vec2Embedder::load(dir.string()), emo::ModelError);
  fs::remove_all(dir);
}

}  // namespace
