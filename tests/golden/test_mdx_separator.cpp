// Golden parity of the MDX-Net vocal separator with audio-separator 0.17.2 (Hallo's pin) on the stand-in
// Kim_Vocal_2 model: tests/data/mdx/ (project data, made by scripts/golden/make_mdx_fixture.py).
#include <gtest/gtest.h>
// emo-test: needs-libav

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>

#include "emo/audio.h"
#include "emo/separator.h"
#include "emo/state_dict.h"
#include "support/golden.h"

namespace {

// The project's own test data: $EMO_TEST_DATA_DIR/mdx, else the source tree's tests/data/mdx, else ./tests/data/mdx
// (scripts/gpu_check.sh runs the golden binary from a bundle, possibly in a checkout at another path).
std::string data_dir() {
  namespace fs = std::filesystem;
  if (const char* e = std::getenv("EMO_TEST_DATA_DIR"); e && *e) return std::string(e) + "/mdx";
  const std::string src = std::string(EMO_SOURCE_DIR) + "/tests/data/mdx";
  if (fs::is_directory(src) || !fs::is_directory("tests/data/mdx")) return src;
  return "tests/data/mdx";
}
const std::string kDir = data_dir();

struct MdxFixture {
  emo::io::StateDict expected;
  nlohmann::json config;
  at::Tensor mix;  // [2, n] as librosa loads mix.wav
  std::unique_ptr<emo::audio::MdxSeparator> sep;
};

const MdxFixture& fixture() {
  static MdxFixture f = [] {
    MdxFixture x;
    x.expected = emo::io::load_state_dict(kDir + "/expected.safetensors");
    x.config = emo::test::read_json(kDir + "/config.json");
    x.mix = emo::audio::load_mix(kDir + "/mix.wav");
    x.sep = std::make_unique<emo::audio::MdxSeparator>(emo::audio::MdxSeparator::load(kDir + "/model.onnx"));
    return x;
  }();
  return f;
}

// The mix as MDXSeparator.separate hands it to demix: normalised to the 0.9 peak.
at::Tensor normalised_mix() {
  auto m = fixture().mix.clone();
  const float peak = m.abs().max().item<float>();
  if (peak > 0.9f) m.mul_(static_cast<float>(0.9 / static_cast<double>(peak)));
  return m;
}

// The first chunk's spectrum as run_model gives it to the network.
at::Tensor first_chunk_spec() {
  const auto& p = fixture().sep->params();
  const int64_t trim = p.n_fft / 2, chunk = p.hop_length * (p.segment_size - 1);
  auto m = normalised_mix();
  auto mixture = torch::cat({torch::zeros({2, trim}), m}, 1).slice(1, 0, chunk);  // [2, chunk]
  auto spec = fixture().sep->stft(mixture.unsqueeze(0));                          // [1, 4, dim_f, 256]
  spec.narrow(2, 0, 3).zero_();
  return spec;
}

at::Tensor crop(const at::Tensor& spec) { return spec.slice(2, 1024, 1088).slice(3, 100, 116); }

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(GoldenMdx, MixLoadsAsLibrosaDoes) {
  const auto& f = fixture();
  ASSERT_EQ(f.mix.size(0), 2);
  ASSERT_EQ(f.mix.size(1), f.config["num_samples"].get<int64_t>());
  EXPECT_NEAR(normalised_mix().abs().max().item<double>(), f.expected.at("mix_absmax").item<double>(), 1e-7);
}

TEST(GoldenMdx, StftMatchesTorchStftOfAudioSeparator) {
  c10::InferenceMode guard;
  auto spec = first_chunk_spec();
  ASSERT_EQ(spec.sizes(), (std::vector<int64_t>{1, 4, 3072, 256}));
  const auto& want = fixture().expected.at("spec_in_crop");
  std::cout << "[ mdx ] stft crop max|diff| " << max_abs(crop(spec), want) << " (absmax " << want.abs().max().item<double>() << ")\n";
  EXPECT_TRUE(emo::test::AllClose(crop(spec), want, 1e-5));
}

TEST(GoldenMdx, NetworkMatchesOnnxRuntime) {
  c10::InferenceMode guard;
  auto out = fixture().sep->net(first_chunk_spec());  // [1, 4, 3072, 256]
  const auto& want = fixture().expected.at("spec_out_crop");
  const double err = max_abs(crop(out), want), scale = want.abs().max().item<double>();
  std::cout << "[ mdx ] network crop max|diff| " << err << " (output absmax " << scale << ")\n";
  EXPECT_TRUE(emo::test::AllClose(crop(out), want, 1e-4));
}

TEST(GoldenMdx, DemixMatchesAudioSeparator) {
  const auto& f = fixture();
  auto demix = f.sep->demix(normalised_mix());  // [2, n]
  ASSERT_EQ(demix.size(1), f.mix.size(1));
  EXPECT_NEAR(demix.abs().max().item<double>(), f.expected.at("demix_absmax").item<double>(), 1e-4);
  double worst = 0;
  for (int64_t s : f.config["crop_starts"].get<std::vector<int64_t>>()) {
    const auto& want = f.expected.at("demix_crop." + std::to_string(s));
    auto got = demix.slice(1, s, s + want.size(1));
    worst = std::max(worst, max_abs(got, want));
    // measured 1.4e-6; 1e-5 (not the usual 1e-4) so that a symmetric STFT window (4.9e-5 here) fails too
    EXPECT_TRUE(emo::test::AllClose(got, want, 1e-5)) << "crop at sample " << s;
  }
  std::cout << "[ mdx ] demix crops max|diff| " << worst << " (absmax " << f.expected.at("demix_absmax").item<double>() << ")\n";
}

TEST(GoldenMdx, VocalsStemMatchesTheWrittenFile) {
  const auto& f = fixture();
  auto stem = f.sep->separate(f.mix);  // [2, n]
  double worst = 0;
  for (int64_t s : f.config["crop_starts"].get<std::vector<int64_t>>()) {
    const auto& want = f.expected.at("vocals_float_crop." + std::to_string(s));  // [4096, 2]
    auto got = stem.slice(1, s, s + want.size(0)).t();
    worst = std::max(worst, max_abs(got, want));
    EXPECT_TRUE(emo::test::AllClose(got, want, 1e-5)) << "crop at sample " << s;
  }
  // the whole file, as 16-bit samples: audio-separator's (x * 32767).astype(int16)
  auto pcm = emo::audio::stem_to_int16(stem);
  emo::audio::DecodeOptions o;
  o.sample_rate = 44100;
  o.channels = 0;
  auto wav = emo::audio::decode_audio(kDir + "/vocals.wav", o);
  ASSERT_EQ(wav.channels(), 2);
  ASSERT_EQ(static_cast<size_t>(wav.num_samples()) * 2, pcm.size());
  int64_t max_lsb = 0, off = 0;
  for (int64_t i = 0; i < wav.num_samples(); ++i)
    for (int c = 0; c < 2; ++c) {
      const auto want = static_cast<int64_t>(std::lround(wav.planes[c][i] * 32768.0));
      const int64_t d = std::abs(want - pcm[2 * i + c]);
      max_lsb = std::max(max_lsb, d);
      off += d != 0;
    }
  std::cout << "[ mdx ] stem float crops max|diff| " << worst << "; 16-bit file: max " << max_lsb << " LSB, "
            << off << " of " << pcm.size() << " samples differ\n";
  EXPECT_LE(max_lsb, 1);
}

// Hallo's step after the separator, from the very file audio-separator wrote: ffmpeg -ar 16000, librosa.load.
TEST(GoldenMdx, SixteenKilohertzSpeechMatchesFfmpegAndLibrosa) {
  const auto& f = fixture();
  emo::audio::DecodeOptions o;
  o.sample_rate = 44100;
  o.channels = 0;
  auto wav = emo::audio::decode_audio(kDir + "/vocals.wav", o);
  std::vector<int16_t> pcm(static_cast<size_t>(wav.num_samples()) * 2);
  for (int64_t i = 0; i < wav.num_samples(); ++i)
    for (int c = 0; c < 2; ++c) pcm[2 * i + c] = static_cast<int16_t>(std::lround(wav.planes[c][i] * 32768.0));
  auto speech = emo::audio::hallo_vocals_16k(pcm, 44100);
  ASSERT_EQ(static_cast<int64_t>(speech.size()), f.expected.at("speech_16k_len").item<int64_t>());
  auto got_all = torch::from_blob(speech.data(), {static_cast<int64_t>(speech.size())}, torch::kFloat).clone();
  double worst = 0;
  for (int64_t s : f.config["speech_starts"].get<std::vector<int64_t>>()) {
    const auto& want = f.expected.at("speech_16k_crop." + std::to_string(s));
    auto got = got_all.slice(0, s, s + want.size(0));
    worst = std::max(worst, max_abs(got, want));
    // libswresample's s16 -> s16 path is what the ffmpeg CLI runs here: bit-exact (a float internal format would
    // already be 1 LSB off), so the tolerance is half an LSB
    EXPECT_LT(max_abs(got, want), 0.5 / 32768) << "crop at sample " << s;
  }
  std::cout << "[ mdx ] 16 kHz speech max|diff| " << worst << " (1 LSB = " << 1.0 / 32768 << ")\n";
}

}  // namespace
