// emo's ONNX interpreter against onnxruntime on small graphs that use the operators an MDX-Net export may contain
// besides those of the stand-in Kim_Vocal_2 (tests/data/onnx_ops/, scripts/golden/make_onnx_ops_fixture.py).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>
#include <random>

#include "emo/error.h"
#include "emo/state_dict.h"
#include "nn/onnx_interpreter.h"

namespace {

const std::string kDir = std::string(EMO_SOURCE_DIR) + "/tests/data/onnx_ops";

class OnnxInterpreterOps : public ::testing::TestWithParam<int> {};

TEST_P(OnnxInterpreterOps, MatchOnnxRuntime) {
  c10::InferenceMode guard;
  const std::string name = "ops" + std::to_string(GetParam());
  auto net = emo::nn::onnx::Interpreter::load(kDir + "/" + name + ".onnx");
  EXPECT_EQ(net.model().opset, GetParam());
  auto io = emo::io::load_state_dict(kDir + "/" + name + ".safetensors");
  auto outs = net.run({{"x", io.at("input.x")}});
  ASSERT_EQ(outs.size(), net.model().outputs.size());
  for (size_t k = 0; k < outs.size(); ++k) {
    const auto& oname = net.model().outputs[k].name;
    const auto& want = io.at("output." + oname);
    ASSERT_EQ(outs[k].sizes(), want.sizes()) << oname;
    const double err = (outs[k].to(torch::kFloat) - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-5 * std::max(1.0, want.abs().max().item<double>())) << oname;
  }
}

INSTANTIATE_TEST_SUITE_P(Opsets, OnnxInterpreterOps, ::testing::Values(11, 13));

TEST(OnnxInterpreter, UnknownOperatorsAreNamedAtLoad) {
  emo::nn::onnx::Model m;
  emo::nn::onnx::Node n;
  n.op_type = "LSTM";
  n.inputs = {"x"};
  n.outputs = {"y"};
  m.nodes.push_back(n);
  m.inputs.push_back({"x", 1, {1}});
  m.outputs.push_back({"y", 1, {1}});
  try {
    emo::nn::onnx::Interpreter(m, "model.onnx");
    FAIL() << "no error";
  } catch (const emo::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("LSTM"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.onnx"), std::string::npos) << e.what();
  }
}

TEST(OnnxInterpreter, TruncatedFileIsAModelError) {
  std::vector<unsigned char> bytes = {0x3a, 0x40, 0x0a};  // graph field claiming 64 bytes, 1 present
  EXPECT_THROW(emo::nn::onnx::parse_model(bytes, "trunc.onnx"), emo::ModelError);
}

}  // namespace

namespace {

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Damaged files: every truncation and seeded byte corruptions either parse or raise ModelError (never crash or
// allocate what the data does not hold).
TEST(OnnxInterpreter, TruncatedOrCorruptedFilesRaiseModelError) {
  for (const char* name : {"ops11.onnx", "ops13.onnx"}) {
    const auto bytes = read_bytes(kDir + "/" + name);
    ASSERT_GT(bytes.size(), 1000u);
    for (size_t n = 0; n < bytes.size(); n += 7) {
      std::vector<unsigned char> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      try {
        emo::nn::onnx::parse_model(cut, name);
      } catch (const emo::ModelError&) {
      }
    }
    std::mt19937 rng(7);
    for (int k = 0; k < 300; ++k) {
      auto bad = bytes;
      for (int j = 0; j < 4; ++j) bad[rng() % bad.size()] = static_cast<unsigned char>(rng());
      try {
        auto m = emo::nn::onnx::parse_model(bad, name);
        (void)m;
      } catch (const emo::ModelError&) {
      }
    }
  }
}

}  // namespace
