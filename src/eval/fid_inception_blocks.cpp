// torchvision.models.inception.{BasicConv2d, InceptionB, InceptionD} and
// pytorch_fid.inception.{FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2}
#include "eval/fid_inception_blocks.h"

namespace emo::eval {

namespace F = torch::nn::functional;

namespace {
BasicConv2dConfig bc(int64_t in, int64_t out, std::array<int64_t, 2> k, std::array<int64_t, 2> s = {1, 1},
                     std::array<int64_t, 2> p = {0, 0}) {
  return BasicConv2dConfig{in, out, k, s, p};
}
torch::Tensor pool_branch_input(const torch::Tensor& x, PoolBranch pool) {
  if (pool == PoolBranch::kMax) return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(1).padding(1));
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}
torch::Tensor max_pool_3s2(const torch::Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2)); }
}  // namespace

// ---- BasicConv2d
BasicConv2dImpl::BasicConv2dImpl(const BasicConv2dConfig& c) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in, c.out, torch::IntArrayRef(c.kernel))
                                                        .stride(torch::IntArrayRef(c.stride))
                                                        .padding(torch::IntArrayRef(c.padding))
                                                        .bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(c.out).eps(0.001)));
}
torch::Tensor BasicConv2dImpl::forward(const torch::Tensor& x) { return torch::relu(bn->forward(conv->forward(x))); }

// ---- FIDInceptionA
InceptionAImpl::InceptionAImpl(int64_t in, int64_t pool_features) {
  branch1x1 = register_module("branch1x1", BasicConv2d(bc(in, 64, {1, 1})));
  branch5x5_1 = register_module("branch5x5_1", BasicConv2d(bc(in, 48, {1, 1})));
  branch5x5_2 = register_module("branch5x5_2", BasicConv2d(bc(48, 64, {5, 5}, {1, 1}, {2, 2})));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(bc(in, 64, {1, 1})));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(bc(64, 96, {3, 3}, {1, 1}, {1, 1})));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(bc(96, 96, {3, 3}, {1, 1}, {1, 1})));
  branch_pool = register_module("branch_pool", BasicConv2d(bc(in, pool_features, {1, 1})));
}
torch::Tensor InceptionAImpl::forward(const torch::Tensor& x) {
  auto b1 = branch1x1->forward(x);
  auto b5 = branch5x5_2->forward(branch5x5_1->forward(x));
  auto b3 = branch3x3dbl_3->forward(branch3x3dbl_2->forward(branch3x3dbl_1->forward(x)));
  auto bp = branch_pool->forward(pool_branch_input(x, PoolBranch::kAvgExcludePad));
  return torch::cat({b1, b5, b3, bp}, 1);
}

// ---- InceptionB
InceptionBImpl::InceptionBImpl(int64_t in) {
  branch3x3 = register_module("branch3x3", BasicConv2d(bc(in, 384, {3, 3}, {2, 2})));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(bc(in, 64, {1, 1})));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(bc(64, 96, {3, 3}, {1, 1}, {1, 1})));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(bc(96, 96, {3, 3}, {2, 2})));
}
torch::Tensor InceptionBImpl::forward(const torch::Tensor& x) {
  auto b3 = branch3x3->forward(x);
  auto bd = branch3x3dbl_3->forward(branch3x3dbl_2->forward(branch3x3dbl_1->forward(x)));
  return torch::cat({b3, bd, max_pool_3s2(x)}, 1);
}

// ---- FIDInceptionC
InceptionCImpl::InceptionCImpl(int64_t in, int64_t c7) {
  branch1x1 = register_module("branch1x1", BasicConv2d(bc(in, 192, {1, 1})));
  branch7x7_1 = register_module("branch7x7_1", BasicConv2d(bc(in, c7, {1, 1})));
  branch7x7_2 = register_module("branch7x7_2", BasicConv2d(bc(c7, c7, {1, 7}, {1, 1}, {0, 3})));
  branch7x7_3 = register_module("branch7x7_3", BasicConv2d(bc(c7, 192, {7, 1}, {1, 1}, {3, 0})));
  branch7x7dbl_1 = register_module("branch7x7dbl_1", BasicConv2d(bc(in, c7, {1, 1})));
  branch7x7dbl_2 = register_module("branch7x7dbl_2", BasicConv2d(bc(c7, c7, {7, 1}, {1, 1}, {3, 0})));
  branch7x7dbl_3 = register_module("branch7x7dbl_3", BasicConv2d(bc(c7, c7, {1, 7}, {1, 1}, {0, 3})));
  branch7x7dbl_4 = register_module("branch7x7dbl_4", BasicConv2d(bc(c7, c7, {7, 1}, {1, 1}, {3, 0})));
  branch7x7dbl_5 = register_module("branch7x7dbl_5", BasicConv2d(bc(c7, 192, {1, 7}, {1, 1}, {0, 3})));
  branch_pool = register_module("branch_pool", BasicConv2d(bc(in, 192, {1, 1})));
}
torch::Tensor InceptionCImpl::forward(const torch::Tensor& x) {
  auto b1 = branch1x1->forward(x);
  auto b7 = branch7x7_3->forward(branch7x7_2->forward(branch7x7_1->forward(x)));
  auto bd = branch7x7dbl_1->forward(x);
  bd = branch7x7dbl_5->forward(branch7x7dbl_4->forward(branch7x7dbl_3->forward(branch7x7dbl_2->forward(bd))));
  auto bp = branch_pool->forward(pool_branch_input(x, PoolBranch::kAvgExcludePad));
  return torch::cat({b1, b7, bd, bp}, 1);
}

// ---- InceptionD
InceptionDImpl::InceptionDImpl(int64_t in) {
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(bc(in, 192, {1, 1})));
  branch3x3_2 = register_module("branch3x3_2", BasicConv2d(bc(192, 320, {3, 3}, {2, 2})));
  branch7x7x3_1 = register_module("branch7x7x3_1", BasicConv2d(bc(in, 192, {1, 1})));
  branch7x7x3_2 = register_module("branch7x7x3_2", BasicConv2d(bc(192, 192, {1, 7}, {1, 1}, {0, 3})));
  branch7x7x3_3 = register_module("branch7x7x3_3", BasicConv2d(bc(192, 192, {7, 1}, {1, 1}, {3, 0})));
  branch7x7x3_4 = register_module("branch7x7x3_4", BasicConv2d(bc(192, 192, {3, 3}, {2, 2})));
}
torch::Tensor InceptionDImpl::forward(const torch::Tensor& x) {
  auto b3 = branch3x3_2->forward(branch3x3_1->forward(x));
  auto b7 = branch7x7x3_4->forward(branch7x7x3_3->forward(branch7x7x3_2->forward(branch7x7x3_1->forward(x))));
  return torch::cat({b3, b7, max_pool_3s2(x)}, 1);
}

// ---- FIDInceptionE_1 / FIDInceptionE_2
InceptionEImpl::InceptionEImpl(int64_t in, PoolBranch pool_kind) : pool(pool_kind) {
  branch1x1 = register_module("branch1x1", BasicConv2d(bc(in, 320, {1, 1})));
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(bc(in, 384, {1, 1})));
  branch3x3_2a = register_module("branch3x3_2a", BasicConv2d(bc(384, 384, {1, 3}, {1, 1}, {0, 1})));
  branch3x3_2b = register_module("branch3x3_2b", BasicConv2d(bc(384, 384, {3, 1}, {1, 1}, {1, 0})));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(bc(in, 448, {1, 1})));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(bc(448, 384, {3, 3}, {1, 1}, {1, 1})));
  branch3x3dbl_3a = register_module("branch3x3dbl_3a", BasicConv2d(bc(384, 384, {1, 3}, {1, 1}, {0, 1})));
  branch3x3dbl_3b = register_module("branch3x3dbl_3b", BasicConv2d(bc(384, 384, {3, 1}, {1, 1}, {1, 0})));
  branch_pool = register_module("branch_pool", BasicConv2d(bc(in, 192, {1, 1})));
}
torch::Tensor InceptionEImpl::forward(const torch::Tensor& x) {
  auto b1 = branch1x1->forward(x);
  auto b3 = branch3x3_1->forward(x);
  b3 = torch::cat({branch3x3_2a->forward(b3), branch3x3_2b->forward(b3)}, 1);
  auto bd = branch3x3dbl_2->forward(branch3x3dbl_1->forward(x));
  bd = torch::cat({branch3x3dbl_3a->forward(bd), branch3x3dbl_3b->forward(bd)}, 1);
  auto bp = branch_pool->forward(pool_branch_input(x, pool));
  return torch::cat({b1, b3, bd, bp}, 1);
}

}  // namespace emo::eval
