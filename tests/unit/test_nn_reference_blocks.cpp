// BasicTransformerBlock reference-bank hook, hallo's write-mode context pairing, bank order, attention backends.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/compat.h"
#include "emo/error.h"
#include "models/unet_2d_condition.h"
#include "nn/basic_transformer_block.h"

TEST(NnReferenceBlocks, AttentionBackendsAgree) {
  torch::manual_seed(3);
  auto q = torch::randn({2, 3, 5, 8}), k = torch::randn({2, 3, 7, 8}), v = torch::randn({2, 3, 7, 8});
  const auto saved = emo::compat::attention_backend();
  emo::compat::set_attention_backend(emo::compat::AttentionBackend::kMath);
  auto a = emo::compat::attention(q, k, v);
  emo::compat::set_attention_backend(emo::compat::AttentionBackend::kAuto);
  auto b = emo::compat::attention(q, k, v);
  emo::compat::set_attention_backend(saved);
  auto ref = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(8.0), -1).matmul(v);
  EXPECT_LT((a - ref).abs().max().item<double>(), 1e-5);
  EXPECT_LT((b - ref).abs().max().item<double>(), 1e-5);
}

TEST(NnReferenceBlocks, RepeatContextPairsRowWithModulo) {
  auto ehs = torch::arange(2).to(torch::kFloat).view({2, 1, 1});
  auto r = emo::nn::repeat_context(ehs, 6);
  ASSERT_EQ(r.size(0), 6);
  for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(r[j][0][0].item<float>(), static_cast<float>(j % 2));
  EXPECT_THROW(emo::nn::repeat_context(ehs, 5), emo::ModelError);
}

TEST(NnReferenceBlocks, WriteModeStoresNorm1AndRepeatsContext) {
  torch::manual_seed(4);
  emo::nn::BasicTransformerBlockConfig c;
  c.dim = 16;
  c.num_attention_heads = 2;
  c.attention_head_dim = 8;
  c.cross_attention_dim = 12;
  emo::nn::BasicTransformerBlock blk(c);
  c10::InferenceMode mode;
  auto x = torch::randn({4, 5, 16}), ehs = torch::randn({2, 3, 12});
  auto plain = blk->forward(x, ehs.repeat({2, 1, 1}));
  EXPECT_FALSE(blk->bank().defined());
  blk->set_reference_mode(emo::nn::ReferenceMode::kWrite);
  auto written = blk->forward(x, ehs);
  ASSERT_TRUE(blk->bank().defined());
  EXPECT_TRUE(torch::allclose(blk->bank(), blk->norm1->forward(x)));
  EXPECT_TRUE(torch::allclose(written, plain, 1e-5, 1e-6));
  // Reference tokens extend attn1's keys/values, so the output changes.
  blk->set_reference_mode(emo::nn::ReferenceMode::kOff);
  auto with_ref = blk->forward(x, ehs.repeat({2, 1, 1}), torch::randn({4, 3, 16}));
  EXPECT_FALSE(torch::allclose(with_ref, plain, 1e-4, 1e-5));
}

TEST(NnReferenceBlocks, BankOrderIsDfsUpBeforeMidThenByChannels) {
  nlohmann::json j = {{"block_out_channels", {8, 8, 16, 16}},  {"layers_per_block", 1},
                      {"attention_head_dim", 2},               {"cross_attention_dim", 6},
                      {"norm_num_groups", 4}};
  auto cfg = emo::models::UNet2DConditionConfig::from_json(j, "test");
  cfg.reference_net = true;
  emo::models::UNet2DConditionModel unet(cfg);
  auto blocks = unet->transformer_blocks_in_bank_order();
  // down 0,1,2 (1 each) + up 1,2,3 (2 each) + mid (1) = 10; 16-channel ones first: d2, u1.0, u1.1, mid.
  ASSERT_EQ(blocks.size(), 10u);
  std::vector<int64_t> dims;
  for (auto& b : blocks) dims.push_back(b->dim());
  EXPECT_EQ(dims, (std::vector<int64_t>{16, 16, 16, 16, 8, 8, 8, 8, 8, 8}));
  auto d2 = unet->down_blocks[2]->as<emo::nn::DownBlock2DImpl>()->transformers()[0]->blocks()[0];
  auto u1 = unet->up_blocks[1]->as<emo::nn::UpBlock2DImpl>()->transformers()[0]->blocks()[0];
  auto mid = unet->mid_block->transformers()[0]->blocks()[0];
  EXPECT_EQ(blocks[0].get(), d2.get());
  EXPECT_EQ(blocks[1].get(), u1.get());
  EXPECT_EQ(blocks[3].get(), mid.get());
  // A plain UNet has conv_out; the ReferenceNet variant has none.
  EXPECT_TRUE(unet->conv_out.is_empty());
}
