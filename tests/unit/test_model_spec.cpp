#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "emo/error.h"
#include "emo/model_spec.h"

namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("emo_spec_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
void touch(const fs::path& p, const std::string& text = "{}") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
void hallo_layout(const fs::path& d) {
  touch(d / "hallo/net.pth", "x");
  touch(d / "sd-vae-ft-mse/config.json", R"({"scaling_factor": 0.18215})");
  touch(d / "sd-vae-ft-mse/diffusion_pytorch_model.safetensors", "x");
  touch(d / "stable-diffusion-v1-5/unet/config.json", R"({"block_out_channels": [320, 640, 1280, 1280]})");
  touch(d / "motion_module/mm_sd_v15_v2.ckpt", "x");
  touch(d / "wav2vec/wav2vec2-base-960h/config.json", R"({"model_type": "wav2vec2"})");
  touch(d / "wav2vec/wav2vec2-base-960h/model.safetensors", "x");
}
}  // namespace

TEST(ModelSpec, ResolvesHalloLayoutWithHalloDefaults) {
  auto d = fresh_dir("hallo");
  hallo_layout(d);
  auto spec = emo::resolve_model(d.string());
  EXPECT_EQ(spec.preset.name, "hallo");
  EXPECT_EQ(spec.preset.clip_frames, 16);
  EXPECT_EQ(spec.preset.motion_frames, 2);
  EXPECT_FALSE(spec.preset.zero_first_motion_frames);
  EXPECT_EQ(spec.scheduler.at("prediction_type"), "v_prediction");
  EXPECT_EQ(spec.scheduler.at("beta_schedule"), "linear");
  EXPECT_EQ(spec.unet_config.at("block_out_channels").size(), 4u);
  EXPECT_NE(spec.paths.net.find("hallo/net.pth"), std::string::npos);
  EXPECT_TRUE(spec.paths.face_models_dir.empty());
}

TEST(ModelSpec, EmoJsonSelectsPresetAndOverrides) {
  auto d = fresh_dir("emo");
  hallo_layout(d);
  touch(d / "emo.json", R"({"preset": "emo", "steps": 30, "scheduler": {"timestep_spacing": "leading"}})");
  auto spec = emo::resolve_model(d.string());
  EXPECT_EQ(spec.preset.name, "emo");
  EXPECT_EQ(spec.preset.clip_frames, 12);
  EXPECT_EQ(spec.preset.motion_frames, 4);
  EXPECT_TRUE(spec.preset.zero_first_motion_frames);
  EXPECT_EQ(spec.preset.steps, 30);
  EXPECT_EQ(spec.scheduler.at("timestep_spacing"), "leading");
  EXPECT_EQ(spec.scheduler.at("prediction_type"), "v_prediction");
}

TEST(ModelSpec, ReportsEveryMissingComponentInOneLine) {
  auto d = fresh_dir("empty");
  try {
    emo::resolve_model(d.string());
    FAIL() << "empty folder accepted";
  } catch (const emo::ModelError& e) {
    std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    for (const char* needle : {"hallo/net.pth", "sd-vae-ft-mse", "stable-diffusion-v1-5/unet/config.json", "wav2vec2-base-960h"})
      EXPECT_NE(w.find(needle), std::string::npos) << needle << " in " << w;
  }
  EXPECT_THROW(emo::resolve_model((d / "nope").string()), emo::ModelError);
}

TEST(ModelSpec, BadEmoJsonIsReported) {
  auto d = fresh_dir("badjson");
  hallo_layout(d);
  touch(d / "emo.json", R"({"preset": "sora"})");
  EXPECT_THROW(emo::resolve_model(d.string()), emo::ModelError);
  touch(d / "emo.json", R"({"steps": "many"})");
  EXPECT_THROW(emo::resolve_model(d.string()), emo::ModelError);
  touch(d / "emo.json", R"({"width": 100})");
  EXPECT_THROW(emo::resolve_model(d.string()), emo::ModelError);
  touch(d / "emo.json", "{not json");
  EXPECT_THROW(emo::resolve_model(d.string()), emo::ModelError);
}

TEST(ModelSpec, ModelDirFromFlagOrEnvironment) {
  EXPECT_EQ(emo::default_model_dir("/a"), "/a");
  ::setenv("EMO_MODEL_DIR", "/from/env", 1);
  EXPECT_EQ(emo::default_model_dir(""), "/from/env");
  ::unsetenv("EMO_MODEL_DIR");
  EXPECT_THROW(emo::default_model_dir(""), emo::UsageError);
}

// Found by fuzz_model_config (tests/fuzz/corpus/model_config/): emo.json values of the wrong JSON type escaped
// resolve_model as nlohmann::json exceptions (exit 1, "internal error") instead of a ModelError listing them (exit 4).
TEST(ModelSpec, WrongTypesInEmoJsonAreModelErrorsNotInternalErrors) {
  auto d = fresh_dir("types");
  hallo_layout(d);
  for (const char* text : {R"({"preset": 3})", R"({"paths": {"net": 5}})", R"({"paths": "hallo"})",
                           R"({"scheduler": [1, 2]})", R"({"unet_additional_kwargs": "x"})", R"([1, 2])",
                           R"({"steps": 1e30})", R"({"fps": 2.5})", R"({"width": 4294967360})",
                           R"({"speed_layers": 1})", R"({"paths": {"net": ""}})"}) {
    touch(d / "emo.json", text);
    try {
      emo::resolve_model(d.string());
      ADD_FAILURE() << text << " was accepted";
    } catch (const emo::ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("emo.json"), std::string::npos) << text << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << text << ": escaped as " << e.what();
    }
  }
  // A path override too long for the file system is "not there", not an exception.
  touch(d / "emo.json", "{\"paths\": {\"motion_module\": \"" + std::string(5000, 'a') + "\"}}");
  EXPECT_NO_THROW(emo::resolve_model(d.string()));
  touch(d / "emo.json", R"({"preset": "emo", "steps": 30, "cfg_scale": 2, "paths": {"net": "hallo/net.pth"}})");
  auto spec = emo::resolve_model(d.string());
  EXPECT_EQ(spec.preset.steps, 30);
  EXPECT_DOUBLE_EQ(spec.preset.cfg_scale, 2.0);
}
