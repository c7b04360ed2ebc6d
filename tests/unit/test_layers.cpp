// emo::nn::Linear / Conv2d (src/nn/layers.h): the default initialisation reproduces libtorch's modules draw for
// draw (the tiny test models depend on it), and under UninitializedParameters parameters are allocated in the
// scope's dtype without drawing, then filled by the strict loader, which still refuses a missing key.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/compat.h"

#include "emo/error.h"
#include "emo/weight_loader.h"
#include "nn/layers.h"
#include "nn/resnet.h"
#include "nn/sampling_layers.h"

namespace {

TEST(Layers, LinearDefaultInitMatchesLibtorchDrawForDraw) {
  for (bool bias : {true, false}) {
    torch::manual_seed(1234);
    torch::nn::Linear ref(torch::nn::LinearOptions(7, 5).bias(bias));
    const auto after_ref = torch::rand({3});
    torch::manual_seed(1234);
    emo::nn::Linear ours(torch::nn::LinearOptions(7, 5).bias(bias));
    const auto after_ours = torch::rand({3});
    EXPECT_TRUE(torch::equal(ref->weight, ours->weight));
    EXPECT_EQ(ref->bias.defined(), ours->bias.defined());
    if (bias) EXPECT_TRUE(torch::equal(ref->bias, ours->bias));
    EXPECT_TRUE(torch::equal(after_ref, after_ours)) << "the generator must be left where libtorch leaves it";
    const auto x = torch::randn({2, 4, 7});
    EXPECT_TRUE(torch::allclose(ref->forward(x), ours->forward(x)));
  }
}

TEST(Layers, Conv2dDefaultInitAndForwardMatchLibtorch) {
  const auto opts = torch::nn::Conv2dOptions(6, 4, 3).stride(2).padding(1).groups(2);
  torch::manual_seed(99);
  torch::nn::Conv2d ref(opts);
  torch::manual_seed(99);
  emo::nn::Conv2d ours(opts);
  EXPECT_TRUE(torch::equal(ref->weight, ours->weight));
  EXPECT_TRUE(torch::equal(ref->bias, ours->bias));
  const auto x = torch::randn({2, 6, 9, 8});
  EXPECT_TRUE(torch::allclose(ref->forward(x), ours->forward(x), 1e-5, 1e-6));
  // Names and order as PyTorch registers them: the state-dict keys of the checkpoints.
  std::vector<std::string> names;
  for (const auto& p : ours->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
}

TEST(Layers, UninitializedScopeAllocatesInItsDtypeWithoutDrawing) {
  torch::manual_seed(7);
  const auto expected_next = torch::rand({4});
  torch::manual_seed(7);
  {
    emo::nn::UninitializedParameters scope(torch::TensorOptions().dtype(torch::kBFloat16));
    ASSERT_TRUE(emo::nn::UninitializedParameters::active().has_value());
    emo::nn::Linear lin(16, 8);
    emo::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3).padding(1));
    EXPECT_EQ(lin->weight.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(lin->bias.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(conv->weight.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(conv->weight.sizes(), (std::vector<int64_t>{4, 3, 3, 3}));
  }
  EXPECT_FALSE(emo::nn::UninitializedParameters::active().has_value()) << "the scope must restore the default";
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected_next)) << "no random draws inside the scope";
  emo::nn::Linear after(4, 4);
  EXPECT_EQ(after->weight.scalar_type(), torch::kFloat);
}

struct TwoLayersImpl : torch::nn::Module {
  TwoLayersImpl() {
    a = register_module("a", emo::nn::Linear(3, 2));
    b = register_module("b", emo::nn::Conv2d(torch::nn::Conv2dOptions(2, 2, 1).bias(false)));
  }
  emo::nn::Linear a{nullptr};
  emo::nn::Conv2d b{nullptr};
};
TORCH_MODULE(TwoLayers);

TEST(Layers, UninitializedModuleIsFilledByTheStrictLoaderOrRefused) {
  emo::nn::UninitializedParameters scope(torch::TensorOptions().dtype(torch::kHalf));
  emo::io::StateDict sd{{"a.weight", torch::ones({2, 3})},
                        {"a.bias", torch::full({2}, 0.5)},
                        {"b.weight", torch::eye(2).reshape({2, 2, 1, 1}).to(torch::kHalf)}};
  TwoLayers m;
  emo::io::load_module(*m, sd, {"", true, {}, "two.safetensors"});
  EXPECT_EQ(m->a->weight.scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(m->a->weight, torch::ones({2, 3}, torch::kHalf)));
  EXPECT_TRUE(torch::equal(m->a->bias, torch::full({2}, 0.5, torch::kHalf)));

  sd.erase("a.bias");
  TwoLayers partial;
  EXPECT_THROW(emo::io::load_module(*partial, sd, {"", true, {}, "two.safetensors"}), emo::ModelError);
}

}  // namespace

namespace {

// Upsample2D's phase-decomposed path (src/nn/sampling_layers.h) against the formula it replaces.
torch::Tensor reference_upsample(emo::nn::Upsample2DImpl& up, const torch::Tensor& x, std::vector<int64_t> size) {
  namespace F = torch::nn::functional;
  return torch::conv2d(F::interpolate(x, F::InterpolateFuncOptions().mode(torch::kNearest).size(size)),
                       up.conv->weight, up.conv->bias, 1, 1);
}

TEST(Layers, Upsample2DPhaseConvEqualsNearestThenConv3x3) {
  torch::manual_seed(3);
  emo::nn::Upsample2D up(6, 5);
  torch::NoGradGuard no_grad;
  for (auto hw : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {4, 7}, {9, 6}}) {
    const auto x = torch::randn({3, 6, hw.first, hw.second});
    const auto got = up->forward(x);
    const auto want = reference_upsample(*up, x, {2 * hw.first, 2 * hw.second});
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-5) << hw.first << "x" << hw.second;
  }
  EXPECT_TRUE(up->has_phase_kernels()) << "exact 2x must take the phase-kernel path";
  // A size that is not exactly 2x (diffusers' upsample_size for odd latents) takes the reference path.
  const auto x = torch::randn({1, 6, 5, 5});
  // (Its 99 output pixels per channel run as one matmul on the CPU, compat::conv2d: float rounding apart.)
  EXPECT_LT((up->forward(x, std::vector<int64_t>{9, 11}) - reference_upsample(*up, x, {9, 11})).abs().max().item<float>(),
            1e-5);
  // The derived kernels follow the conv's weight when it changes (a later load).
  up->conv->weight.mul_(-2);
  EXPECT_LT((up->forward(x) - reference_upsample(*up, x, {10, 10})).abs().max().item<float>(), 1e-5);
}

TEST(Layers, Upsample2DPhaseConvInHalfPrecisionStaysCloseToTheFloatFormula) {
  torch::manual_seed(4);
  emo::nn::Upsample2D up(8, 8);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 8, 6, 6});
  const auto want = reference_upsample(*up, x, {12, 12});
  up->to(torch::kBFloat16);
  const auto got = up->forward(x.to(torch::kBFloat16)).to(torch::kFloat);
  EXPECT_LT((got - want).abs().max().item<float>(), 0.05 * want.abs().max().item<float>());
}

}  // namespace

// ResnetBlock2D's inference path (in-place activations and sums) gives the autograd path's values bit for bit.
TEST(Layers, ResnetInPlaceInferencePathEqualsTheAutogradPath) {
  torch::manual_seed(3);
  emo::nn::ResnetBlock2DConfig c;
  c.in_channels = 8;
  c.out_channels = 16;  // conv_shortcut
  c.temb_channels = 12;
  c.groups = 4;
  c.output_scale_factor = 2.0;
  emo::nn::ResnetBlock2D block(c);
  auto x = torch::randn({2, 8, 6, 5}), temb = torch::randn({2, 12});
  // Both paths on torch::linear: under InferenceMode the default CPU linear is oneDNN's, which autograd never takes.
  emo::compat::set_cpu_linear(emo::compat::CpuLinear::kAten);
  auto with_grad = block->forward(x, temb);  // GradMode on: the out-of-place path
  ASSERT_TRUE(with_grad.requires_grad());
  torch::Tensor inplace;
  {
    c10::InferenceMode guard;
    inplace = block->forward(x, temb);
  }
  emo::compat::set_cpu_linear(emo::compat::CpuLinear::kAuto);
  EXPECT_TRUE(torch::equal(inplace, with_grad.detach()));
  EXPECT_FALSE(inplace.requires_grad());
}
