// `emo inspect DIR` recognises a HuggingFace wav2vec2 folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "emo/inspect.h"

namespace fs = std::filesystem;

TEST(InspectWav2Vec2, RecognisesHuggingFaceFolder) {
  auto dir = fs::temp_directory_path() / ("emo_inspect_w2v_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["Wav2Vec2ForCTC"], "hidden_size": 768,
    "num_hidden_layers": 12, "num_attention_heads": 12})";
  auto comps = emo::scan_model_folder(dir.string());
  ASSERT_EQ(comps.size(), 3u);
  EXPECT_EQ(comps[0].name.rfind("wav2vec2 config", 0), 0u) << comps[0].name;
  EXPECT_NE(comps[0].name.find("hidden 768, layers 12, heads 12"), std::string::npos) << comps[0].name;
  EXPECT_FALSE(comps[1].found);  // no weights yet
  std::ofstream(dir / "model.safetensors") << "x";
  comps = emo::scan_model_folder(dir.string());
  EXPECT_TRUE(comps[1].found);
  EXPECT_EQ(fs::path(comps[1].path).filename(), "model.safetensors");

  // Another model type is not taken for wav2vec2 (falls back to the hallo layout scan).
  std::ofstream(dir / "config.json") << R"({"model_type": "bert"})";
  comps = emo::scan_model_folder(dir.string());
  ASSERT_FALSE(comps.empty());
  EXPECT_NE(comps[0].name.rfind("wav2vec2", 0), 0u) << comps[0].name;
  fs::remove_all(dir);
}
