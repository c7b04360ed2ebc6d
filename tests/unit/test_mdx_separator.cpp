// MDX separator mechanics with an Identity network (tests/data/mdx/identity.onnx: separation = STFT -> iSTFT) and
// the ONNX interpreter's operators against libtorch's modules.
#include <gtest/gtest.h>
// emo-test: needs-libav

#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "emo/audio.h"
#include "emo/error.h"
#include "emo/separator.h"
#include "nn/onnx_interpreter.h"

namespace fs = std::filesystem;
using emo::audio::MdxSeparator;

namespace {

const std::string kDir = std::string(EMO_SOURCE_DIR) + "/tests/data/mdx";

const MdxSeparator& identity() {
  static MdxSeparator s = MdxSeparator::load(kDir + "/identity.onnx");
  return s;
}

// Band-limited test signal (well inside the 3 zeroed bins .. dim_f band: ~17 Hz .. 17.6 kHz).
at::Tensor tones(int64_t n, int rate = 44100, int channels = 2) {
  auto t = torch::arange(n, torch::kDouble) / rate;
  std::vector<at::Tensor> ch;
  for (int c = 0; c < channels; ++c)
    ch.push_back(0.3 * torch::sin(2 * M_PI * (330 + 110 * c) * t) + 0.2 * torch::sin(2 * M_PI * 2500 * t + c));
  // faded in and out over 2048 samples: a step at the ends would ring above dim_f's 17.6 kHz cut (as it does in
  // audio-separator), which is not what these tests are about
  auto fade = torch::ones({n}, torch::kDouble);
  const int64_t f = std::min<int64_t>(2048, n / 2);
  auto ramp = 0.5 - 0.5 * torch::cos(M_PI * torch::arange(f, torch::kDouble) / f);
  fade.slice(0, 0, f).copy_(ramp);
  fade.slice(0, n - f, n).copy_(ramp.flip({0}));
  return (torch::stack(ch) * fade).to(torch::kFloat);  // [C, n]
}

TEST(MdxSeparator, StftRoundTripIsExactInsideTheBand) {
  c10::InferenceMode guard;
  const auto& p = identity().params();
  const int64_t chunk = p.hop_length * (p.segment_size - 1);
  auto x = tones(chunk).unsqueeze(0);            // [1, 2, chunk]
  auto spec = identity().stft(x);                // [1, 4, dim_f, 256]
  ASSERT_EQ(spec.sizes(), (std::vector<int64_t>{1, 4, p.dim_f, p.segment_size}));
  auto y = identity().istft(spec);               // [1, 2, chunk]
  ASSERT_EQ(y.sizes(), x.sizes());
  EXPECT_LT((y - x).abs().max().item<double>(), 1e-4);
}

// With an identity network demix returns the mix times the compensation (bins 0..2 are zeroed, which removes
// only DC and < 17 Hz content), whatever the length: shorter than a chunk, exactly a chunk, several chunks.
TEST(MdxSeparator, IdentityNetworkGivesTheCompensatedMixAtAnyLength) {
  const auto& p = identity().params();
  const int64_t chunk = p.hop_length * (p.segment_size - 1), gen = chunk - p.n_fft;
  for (int64_t n : {int64_t{5000}, gen - 1, gen, gen + 1, chunk, int64_t{3 * 195840 + 17}}) {
    auto mix = tones(n);
    auto out = identity().demix(mix);
    ASSERT_EQ(out.sizes(), mix.sizes()) << n;
    ASSERT_TRUE(torch::isfinite(out).all().item<bool>()) << n;
    const double err = (out - mix * static_cast<float>(p.compensate)).abs().max().item<double>();
    EXPECT_LT(err, 2e-3) << "n = " << n;  // the zeroed low bins leak a little of the 330 Hz tone's window
  }
}

TEST(MdxSeparator, MonoIsDuplicatedAndOutputIsNormalised) {
  auto mono = tones(20000, 44100, 1) * 2.0;  // peak ~1.0: normalised to 0.9 before and after demixing
  auto out = identity().separate(mono);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 20000}));
  EXPECT_TRUE(torch::equal(out[0], out[1]));
  EXPECT_LE(out.abs().max().item<float>(), 0.9f + 1e-6f);
  EXPECT_GT(out.abs().max().item<float>(), 0.85f);
}

TEST(MdxSeparator, SilentMixIsRefused) {
  EXPECT_THROW(identity().separate(torch::zeros({2, 1000})), emo::InputError);
}

TEST(MdxSeparator, FortyEightKilohertzFileIsResampledTo44100) {
  const auto path = (fs::temp_directory_path() / ("emo_mdx_48k_" + std::to_string(::getpid()) + ".wav")).string();
  auto x = tones(48000, 48000);  // 1 s stereo
  auto inter = x.t().contiguous();
  emo::audio::write_wav_pcm16(path, std::vector<float>(inter.data_ptr<float>(), inter.data_ptr<float>() + inter.numel()), 48000, 2);
  auto mix = emo::audio::load_mix(path);
  fs::remove(path);
  ASSERT_EQ(mix.size(0), 2);
  EXPECT_NEAR(mix.size(1), 44100, 2);
  auto out = identity().separate(mix);
  EXPECT_EQ(out.sizes(), mix.sizes());
  // the resampled tones survive: compare with the same tones generated at 44.1 kHz, away from the (fade) edges
  auto ref = tones(mix.size(1));
  const double err = (out.slice(1, 3000, -3000) - ref.slice(1, 3000, -3000) * 1.009f).abs().max().item<double>();
  EXPECT_LT(err, 5e-3);
}

TEST(MdxSeparator, StemToInt16TruncatesLikeNumpy) {
  auto stem = torch::tensor({0.5f, -0.5f, 0.9f, -1e-5f}).reshape({2, 2});  // [2, n=2]
  auto pcm = emo::audio::stem_to_int16(stem);
  ASSERT_EQ(pcm.size(), 4u);
  EXPECT_EQ(pcm[0], 16383);   // 0.5 * 32767 = 16383.5 -> 16383
  EXPECT_EQ(pcm[1], 29490);   // 0.9 * 32767 = 29490.3
  EXPECT_EQ(pcm[2], -16383);
  EXPECT_EQ(pcm[3], 0);
}

TEST(MdxSeparator, WrongInputShapeIsAModelError) {
  emo::audio::MdxParams p;
  p.dim_f = 2048;
  EXPECT_THROW(MdxSeparator::load(kDir + "/identity.onnx", p), emo::ModelError);
  EXPECT_THROW(MdxSeparator::load(kDir + "/missing.onnx"), emo::ModelError);
}

TEST(MdxSeparator, FindsHallosLayout) {
  const auto d = fs::temp_directory_path() / ("emo_mdx_find_" + std::to_string(::getpid()));
  fs::create_directories(d / "audio_separator");
  EXPECT_EQ(emo::audio::find_separator_model(d.string()), "");
  fs::copy_file(kDir + "/identity.onnx", d / "audio_separator" / "Kim_Vocal_2.onnx");
  EXPECT_EQ(emo::audio::find_separator_model(d.string()), (d / "audio_separator" / "Kim_Vocal_2.onnx").string());
  fs::remove_all(d);
}

TEST(MdxSeparator, HalloResamplingTo16kKeepsLengthAndLevel) {
  std::vector<int16_t> pcm(44100 * 2);
  for (size_t i = 0; i < pcm.size() / 2; ++i) {
    pcm[2 * i] = static_cast<int16_t>(10000 * std::sin(2 * M_PI * 440 * i / 44100.0));
    pcm[2 * i + 1] = 0;
  }
  auto mono = emo::audio::hallo_vocals_16k(pcm, 44100);
  EXPECT_NEAR(static_cast<double>(mono.size()), 16000, 1);
  float peak = 0;
  for (float v : mono) peak = std::max(peak, std::abs(v));
  EXPECT_NEAR(peak, 10000.0 / 32768 / 2, 2e-3);  // mean of the two channels
}

}  // namespace
