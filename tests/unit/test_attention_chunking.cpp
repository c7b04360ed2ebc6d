// emo::compat::attention math path: large score matrices are computed in slices with the same result.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/compat.h"

namespace {
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
  return torch::matmul(scores.softmax(-1), v);
}
}  // namespace

TEST(AttentionChunking, SlicedMathPathEqualsFullComputation) {
  c10::InferenceMode guard;
  const auto saved = emo::compat::attention_backend();
  emo::compat::set_attention_backend(emo::compat::AttentionBackend::kMath);
  torch::manual_seed(0);
  {  // slices over the flattened batch*heads axis
    auto q = torch::randn({2, 2, 2048, 8}), k = torch::randn({2, 2, 8300, 8}), v = torch::randn({2, 2, 8300, 8});
    EXPECT_TRUE(torch::allclose(emo::compat::attention(q, k, v), reference(q, k, v), 1e-5, 1e-6));
  }
  {  // one batch row too large: slices over the query axis
    auto q = torch::randn({1, 1, 9000, 8}), k = torch::randn({1, 1, 8000, 8}), v = torch::randn({1, 1, 8000, 4});
    auto out = emo::compat::attention(q, k, v);
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 9000, 4}));
    EXPECT_TRUE(torch::allclose(out, reference(q, k, v), 1e-5, 1e-6));
  }
  emo::compat::set_attention_backend(saved);
}
