// Golden parity: hallo AudioProjModel + process_audio_emb (shared/golden/audio_proj).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/audio.h"
#include "emo/weight_loader.h"
#include "models/audio_proj.h"
#include "support/golden.h"

namespace {

TEST(AudioProjGolden, WindowsAndContextTokens) {
  EMO_GOLDEN_FIXTURE(fx, "audio_proj");
  c10::InferenceMode guard;
  auto cfg = emo::models::AudioProjConfig::from_json(fx.config());
  emo::models::AudioProjModel m(cfg);
  emo::io::LoadOptions lo;
  lo.source = fx.path("weights.safetensors");
  emo::io::load_module(*m, fx.weights(), lo);
  m->eval();

  auto windows = emo::audio::audio_windows(fx.input("audio_emb"), (cfg.seq_len - 1) / 2);
  EXPECT_TRUE(emo::test::AllClose(windows, fx.output("audio_windows"), 0.0));

  auto tensor = fx.input("audio_tensor");
  EXPECT_TRUE(emo::test::AllClose(windows.narrow(0, 0, tensor.size(1)).unsqueeze(0), tensor, 0.0));
  auto tokens = m->forward(tensor);
  EXPECT_TRUE(emo::test::AllClose(tokens, fx.output("context_tokens"), 1e-4));
  std::printf("[audio_proj] context_tokens max|diff| %.3g\n",
              (tokens - fx.output("context_tokens")).abs().max().item<double>());
}

}  // namespace
