#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/error.h"
#include "emo/key_rename.h"
#include "emo/weight_loader.h"

namespace {
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    lin = register_module("lin", torch::nn::Linear(3, 2));
    seq = register_module("to_out", torch::nn::ModuleList());
    seq->push_back(torch::nn::Linear(2, 2));
    buf = register_buffer("pe", torch::zeros({1, 4}));
  }
  torch::nn::Linear lin{nullptr};
  torch::nn::ModuleList seq{nullptr};
  torch::Tensor buf;
};
TORCH_MODULE(Tiny);

emo::io::StateDict full(const std::string& prefix = "") {
  return {{prefix + "lin.weight", torch::ones({2, 3})},
          {prefix + "lin.bias", torch::full({2}, 2.0)},
          {prefix + "to_out.0.weight", torch::eye(2).to(torch::kHalf)},
          {prefix + "to_out.0.bias", torch::zeros({2})},
          {prefix + "pe", torch::arange(4, torch::kFloat).reshape({1, 4})}};
}
}  // namespace

TEST(WeightLoader, LoadsParametersAndBuffersByStateDictName) {
  Tiny m;
  auto r = emo::io::load_module(*m, full("net."), {"net."});
  EXPECT_EQ(r.loaded, 5u);
  EXPECT_TRUE(torch::equal(m->lin->weight, torch::ones({2, 3})));
  EXPECT_EQ(m->seq[0]->as<torch::nn::Linear>()->weight.scalar_type(), torch::kFloat);  // converted from half
  EXPECT_FLOAT_EQ(m->buf[0][3].item<float>(), 3.f);
}

TEST(WeightLoader, StrictReportsMissingUnexpectedAndMismatched) {
  Tiny m;
  auto sd = full();
  sd.erase("lin.bias");
  sd["extra.weight"] = torch::zeros({1});
  sd["pe"] = torch::zeros({1, 5});
  try {
    emo::io::load_module(*m, sd, {"", true, {}, "tiny.safetensors"});
    FAIL() << "strict load accepted a bad state dict";
  } catch (const emo::ModelError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("tiny.safetensors"), std::string::npos) << w;
    EXPECT_NE(w.find("1 missing (lin.bias)"), std::string::npos) << w;
    EXPECT_NE(w.find("1 unexpected (extra.weight)"), std::string::npos) << w;
    EXPECT_NE(w.find("pe: file [1, 5] vs module [1, 4]"), std::string::npos) << w;
  }
  auto r = emo::io::load_module(*m, sd, {"", false});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.loaded, 3u);
  auto r2 = emo::io::load_module(*m, full(), {"", true, {"extra."}});
  EXPECT_TRUE(r2.ok());
}

TEST(KeyRename, TablesRewriteLegacyNames) {
  using emo::io::KeyScheme;
  EXPECT_EQ(emo::io::rename_key("encoder.mid_block.attentions.0.query.weight", KeyScheme::kVaeLegacyAttention),
            "encoder.mid_block.attentions.0.to_q.weight");
  EXPECT_EQ(emo::io::rename_key("decoder.mid_block.attentions.0.proj_attn.bias", KeyScheme::kVaeLegacyAttention),
            "decoder.mid_block.attentions.0.to_out.0.bias");
  EXPECT_EQ(emo::io::rename_key("encoder.mid_block.attentions.0.to_k.weight", KeyScheme::kVaeLegacyAttention),
            "encoder.mid_block.attentions.0.to_k.weight");
  EXPECT_EQ(emo::io::rename_key("wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0",
                                KeyScheme::kWav2Vec2),
            "encoder.pos_conv_embed.conv.weight_g");
  EXPECT_EQ(emo::io::rename_key("encoder.pos_conv_embed.conv.parametrizations.weight.original1", KeyScheme::kWav2Vec2),
            "encoder.pos_conv_embed.conv.weight_v");
  emo::io::StateDict clash{{"a.attentions.0.query.weight", torch::zeros({1})},
                           {"a.attentions.0.to_q.weight", torch::zeros({1})}};
  EXPECT_THROW(emo::io::rename_keys(clash, KeyScheme::kVaeLegacyAttention), emo::ModelError);
}
