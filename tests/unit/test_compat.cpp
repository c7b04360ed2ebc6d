// include/emo/compat.h: the version-gated helpers that do not need a network to test.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "emo/compat.h"

TEST(Compat, ExactFp32ScopeTurnsTf32OffAndRestoresIt) {
  auto& ctx = at::globalContext();
  const bool cudnn0 = ctx.allowTF32CuDNN(), cublas0 = ctx.allowTF32CuBLAS();
  ctx.setAllowTF32CuDNN(true);
  ctx.setAllowTF32CuBLAS(true);
  {
    emo::compat::ExactFp32Scope exact;
    EXPECT_FALSE(ctx.allowTF32CuDNN());
    EXPECT_FALSE(ctx.allowTF32CuBLAS());
  }
  EXPECT_TRUE(ctx.allowTF32CuDNN());
  EXPECT_TRUE(ctx.allowTF32CuBLAS());
  ctx.setAllowTF32CuDNN(cudnn0);
  ctx.setAllowTF32CuBLAS(cublas0);
}

TEST(Compat, EffectiveAttentionFollowsBackend) {
  const auto saved = emo::compat::attention_backend();
  emo::compat::set_attention_backend(emo::compat::AttentionBackend::kMath);
  EXPECT_STREQ(emo::compat::effective_attention(), "math");
  emo::compat::set_attention_backend(emo::compat::AttentionBackend::kAuto);
  EXPECT_STREQ(emo::compat::effective_attention(), "sdpa");
  emo::compat::set_attention_backend(saved);
}

// emo bench's "attention kernels" table: one row per shape and kernel, only while counting is on.
TEST(Compat, AttentionShapesAreRecordedPerShapeWhileCounting) {
  namespace c = emo::compat;
  const auto saved = c::attention_backend();
  c::attention_flops_reset(false);
  c::attention_shapes_take();
  auto q = torch::randn({2, 4, 16, 8}), k = torch::randn({2, 4, 24, 8});
  c::attention(q, k, k);  // not counting: not recorded
  EXPECT_TRUE(c::attention_shapes_take().empty());

  c::attention_flops_reset(true);
  c::set_attention_backend(c::AttentionBackend::kAuto);
  c::attention(q, k, k);
  c::attention(q, k, k);
  c::set_attention_backend(c::AttentionBackend::kMath);
  c::attention(q, q, q);
  const uint64_t flops = c::attention_flops_reset(false);
  c::set_attention_backend(saved);
  EXPECT_EQ(flops, 2u * (2 * 2 * 4 * 16 * 24 * 16) + 2 * 4 * 2 * 16 * 16 * 16);

  auto shapes = c::attention_shapes_take();
  ASSERT_EQ(shapes.size(), 2u);
  std::sort(shapes.begin(), shapes.end(), [](const auto& a, const auto& b) { return a.calls > b.calls; });
  EXPECT_EQ(shapes[0].calls, 2);
  EXPECT_EQ(shapes[0].q, (std::vector<int64_t>{2, 4, 16, 8}));
  EXPECT_EQ(shapes[0].k, (std::vector<int64_t>{2, 4, 24, 8}));
  EXPECT_EQ(shapes[0].dtype, "Float");
  EXPECT_EQ(shapes[0].device, "cpu");
  // libtorch's own choice for these CPU inputs: one of its SDPA backends, never our fallback label
  EXPECT_TRUE(shapes[0].kernel == "flash_attention" || shapes[0].kernel == "math") << shapes[0].kernel;
  EXPECT_EQ(shapes[1].calls, 1);
  EXPECT_EQ(shapes[1].kernel, "emo_math");
  EXPECT_TRUE(c::attention_shapes_take().empty());  // taken means cleared
}
