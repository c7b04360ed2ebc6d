// include/emo/compat.h: the version-gated helpers that do not need a network to test.
#include <gtest/gtest.h>
#include <torch/torch.h>

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
