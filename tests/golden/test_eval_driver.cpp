// Weight-file tolerance of the metric networks (published files may lack num_batches_tracked, FID's file has
// the unused fc.* classifier) and the Evaluator's Sync-C/D path (RGB clips -> BGR SyncNet input).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "emo/error.h"
#include "emo/eval.h"
#include "support/golden.h"

namespace fs = std::filesystem;
namespace ev = emo::eval;

TEST(GoldenEvalWeights, SyncNetWithoutNumBatchesTracked) {
  EMO_GOLDEN_FIXTURE(fx, "eval/syncnet");
  emo::io::StateDict sd;
  for (const auto& [k, v] : fx.weights())
    if (k.find("num_batches_tracked") == std::string::npos) sd[k] = v;
  ASSERT_LT(sd.size(), fx.weights().size());
  EXPECT_NO_THROW(ev::SyncNet::from_state_dict(sd));
  sd.erase(sd.begin());  // a genuinely missing tensor is still an error
  EXPECT_THROW(ev::SyncNet::from_state_dict(sd), emo::ModelError);
}

TEST(GoldenEvalWeights, FidInceptionIgnoresFcAndMissingNumBatchesTracked) {
  EMO_GOLDEN_FIXTURE(fx, "eval/fid_inception");
  emo::io::StateDict sd;
  for (const auto& [k, v] : fx.weights())
    if (k.find("num_batches_tracked") == std::string::npos) sd[k] = v;
  sd["fc.weight"] = torch::zeros({1008, 2048});
  sd["fc.bias"] = torch::zeros({1008});
  EXPECT_NO_THROW(ev::FidInception::from_state_dict(sd));
  sd["Mixed_7c.unexpected.weight"] = torch::zeros({1});
  EXPECT_THROW(ev::FidInception::from_state_dict(sd), emo::ModelError);
}

TEST(GoldenEvalDriver, EvaluatorSyncMatchesSyncNetOnRgbClip) {
  EMO_GOLDEN_FIXTURE(fx, "eval/syncnet");
  const auto dir = fs::temp_directory_path() / ("emo_eval_drv_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  emo::io::write_safetensors((dir / ev::kSyncWeightsFile).string(), fx.weights());
  const int64_t t = 8;  // 3 windows: keeps the test short
  auto bgr = fx.input("frames_bgr_u8").narrow(0, 0, t);
  auto audio = fx.input("audio_s16").narrow(0, 0, t * 640);

  ev::EvalOptions opt;
  opt.metrics = {"sync", "fid"};
  opt.weights_dir = dir.string();
  ev::Evaluator e(opt);
  ev::Clip clip;
  clip.name = "c";
  clip.frames_rgb = bgr.flip(3).contiguous();  // the evaluator takes RGB
  clip.audio_s16 = audio;
  e.add(clip, nullptr);
  auto rep = e.finish();
  fs::remove_all(dir);

  auto direct = ev::SyncNet::from_state_dict(fx.weights()).evaluate(bgr, audio);
  ASSERT_NE(rep.find("sync_c"), nullptr);
  ASSERT_TRUE(rep.find("sync_c")->available) << rep.to_json();
  EXPECT_FLOAT_EQ(static_cast<float>(rep.find("sync_c")->value), direct.conf);
  EXPECT_FLOAT_EQ(static_cast<float>(rep.find("sync_d")->value), direct.min_dist);
  ASSERT_NE(rep.find("fid"), nullptr);
  EXPECT_FALSE(rep.find("fid")->available);
  EXPECT_NE(rep.find("fid")->reason.find(ev::kFidWeightsFile), std::string::npos) << rep.find("fid")->reason;
}
