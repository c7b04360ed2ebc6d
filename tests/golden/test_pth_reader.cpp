// Readers against files written by the reference tools (torch.save 1.13, Python safetensors).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "emo/error.h"
#include "emo/state_dict.h"
#include "support/golden.h"

namespace fs = std::filesystem;

namespace {
void expect_matches_expected(const emo::test::Fixture& fx, const emo::io::StateDict& sd) {
  auto expected = emo::io::SafetensorsFile::open(fx.path("expected.safetensors"));
  ASSERT_EQ(sd.size(), expected.entries().size());
  for (const auto& e : expected.entries()) {
    auto it = sd.find(e.name);
    ASSERT_NE(it, sd.end()) << "missing " << e.name;
    auto want = expected.tensor(e.name);
    EXPECT_EQ(it->second.sizes(), want.sizes()) << e.name;
    EXPECT_TRUE(torch::equal(it->second.to(want.scalar_type()), want)) << e.name;
  }
}
}  // namespace

TEST(GoldenPth, ZipStateDict) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  EXPECT_EQ(emo::io::detect_format(fx.path("state_dict.pth")), emo::io::WeightFormat::kTorchZip);
  expect_matches_expected(fx, emo::io::load_state_dict(fx.path("state_dict.pth")));
}

TEST(GoldenPth, LegacyStateDict) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  EXPECT_EQ(emo::io::detect_format(fx.path("state_dict_legacy.pth")), emo::io::WeightFormat::kTorchLegacy);
  expect_matches_expected(fx, emo::io::load_state_dict(fx.path("state_dict_legacy.pth")));
}

TEST(GoldenPth, NestedLightningCheckpoint) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  expect_matches_expected(fx, emo::io::load_state_dict(fx.path("nested.ckpt")));
}

TEST(GoldenPth, PlainDictBin) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  expect_matches_expected(fx, emo::io::load_state_dict(fx.path("plain_dict.bin")));
}

TEST(GoldenPth, StoredDtypesArePreserved) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  auto expected = emo::io::SafetensorsFile::open(fx.path("expected.safetensors"));
  // metadata "dtypes" = "name=float32;name2=float16;..."
  std::string spec = expected.metadata().at("dtypes");
  auto sd = emo::io::load_state_dict(fx.path("state_dict.pth"));
  static const std::map<std::string, std::string> names = {
      {"float32", "Float"}, {"float16", "Half"}, {"bfloat16", "BFloat16"}, {"int64", "Long"},
      {"bool", "Bool"},     {"float64", "Double"}, {"int32", "Int"},     {"uint8", "Byte"}};
  size_t checked = 0, pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(';', pos);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(pos, end - pos);
    pos = end + 1;
    auto eq = item.find('=');
    ASSERT_NE(eq, std::string::npos) << item;
    auto n = names.find(item.substr(eq + 1));
    ASSERT_NE(n, names.end()) << "unknown dtype in metadata: " << item;
    EXPECT_EQ(std::string(c10::toString(sd.at(item.substr(0, eq)).scalar_type())), n->second) << item;
    ++checked;
  }
  EXPECT_EQ(checked, sd.size());
}

TEST(GoldenPth, MaliciousPickleIsRefusedAndNotExecuted) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  fs::remove("/tmp/emo_pwned");
  try {
    emo::io::load_state_dict(fx.path("malicious.pth"));
    FAIL() << "malicious.pth was accepted";
  } catch (const emo::ModelError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("malicious.pth"), std::string::npos) << w;
    EXPECT_NE(w.find("system"), std::string::npos) << w;
  }
  EXPECT_FALSE(fs::exists("/tmp/emo_pwned"));
}

TEST(GoldenPth, TruncatedFileFailsCleanly) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  EXPECT_THROW(emo::io::load_state_dict(fx.path("truncated.pth")), emo::ModelError);
}

TEST(GoldenPth, EveryTruncationOfEveryCheckpointFailsCleanly) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  auto dir = fs::temp_directory_path() / ("emo_trunc_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* name : {"state_dict.pth", "state_dict_legacy.pth", "nested.ckpt"}) {
    auto size = fs::file_size(fx.path(name));
    for (uintmax_t cut = 0; cut < size; cut += std::max<uintmax_t>(1, size / 97)) {
      auto p = dir / "cut.pth";
      fs::copy_file(fx.path(name), p, fs::copy_options::overwrite_existing);
      fs::resize_file(p, cut);
      try {
        emo::io::load_state_dict(p.string());
        // A cut inside trailing zip padding may still hold every byte; reaching here is fine.
      } catch (const emo::ModelError&) {
      }
    }
  }
  fs::remove_all(dir);
}

TEST(GoldenSafetensors, EveryFixtureWeightFileReads) {
  if (!emo::test::golden_root_present()) GTEST_SKIP() << "golden root absent: NOT RUN";
  int files = 0;
  for (auto& e : fs::recursive_directory_iterator(emo::test::golden_root())) {
    if (e.path().extension() != ".safetensors") continue;
    auto f = emo::io::SafetensorsFile::open(e.path().string());
    for (const auto& t : f.entries()) (void)f.tensor(t.name);
    ++files;
  }
  EXPECT_GT(files, 20);
}
