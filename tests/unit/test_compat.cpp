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
  c::kernel_flops_reset(false);
  c::attention_shapes_take();
  auto q = torch::randn({2, 4, 16, 8}), k = torch::randn({2, 4, 24, 8});
  c::attention(q, k, k);  // not counting: not recorded
  EXPECT_TRUE(c::attention_shapes_take().empty());

  c::kernel_flops_reset(true);
  c::set_attention_backend(c::AttentionBackend::kAuto);
  c::attention(q, k, k);
  c::attention(q, k, k);
  c::set_attention_backend(c::AttentionBackend::kMath);
  c::attention(q, q, q);
  const uint64_t flops = c::kernel_flops_reset(false);
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

// The fp32 CPU linear layers run oneDNN's matmul (mkldnn::_linear_pointwise) under CpuLinear::kAuto. It must give
// torch::linear's result for every input layout the networks hand it, and count its FLOPs for emo bench (the
// profiler cannot see them). The FLOP counter also proves which path ran: torch::linear adds nothing to it.
TEST(Compat, OneDnnLinearEqualsTorchLinearAndCountsItsFlops) {
  namespace c = emo::compat;
  c10::InferenceMode guard;
  ASSERT_STREQ(c::effective_cpu_linear(), "onednn") << "PyPI's x86 libtorch is built with oneDNN";
  torch::manual_seed(3);
  auto w = torch::randn({24, 40}), b = torch::randn({24});
  const std::vector<torch::Tensor> inputs = {
      torch::randn({7, 40}),                    // [M, in]
      torch::randn({2, 40, 9}).transpose(1, 2),  // [B, L, in], not contiguous (a transposed token map)
      torch::randn({2, 3, 5, 40}),              // [B, F, L, in]
  };
  c::kernel_flops_reset(true);
  uint64_t expected = 0;
  for (const auto& x : inputs) {
    const auto want = torch::linear(x, w, b);
    const auto got = c::linear(x, w, b);
    EXPECT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-4f);
    EXPECT_LT((c::linear(x, w, {}) - torch::linear(x, w)).abs().max().item<float>(), 1e-4f);  // no bias
    expected += 2 * 2 * static_cast<uint64_t>(x.numel() / 40) * 40 * 24;
  }
  EXPECT_EQ(c::kernel_flops_reset(false), expected);

  c::set_cpu_linear(c::CpuLinear::kAten);  // torch::linear: bit-identical, and nothing for the counter
  EXPECT_STREQ(c::effective_cpu_linear(), "aten");
  c::kernel_flops_reset(true);
  EXPECT_TRUE(torch::equal(c::linear(inputs[1], w, b), torch::linear(inputs[1], w, b)));
  EXPECT_EQ(c::kernel_flops_reset(false), 0u);
  c::set_cpu_linear(c::CpuLinear::kAuto);
}

// Autograd: the oneDNN op has no derivative, so a call that autograd would record takes torch::linear.
TEST(Compat, LinearKeepsAutogradWhenGradientsAreWanted) {
  namespace c = emo::compat;
  auto w = torch::randn({4, 6}, torch::requires_grad()), x = torch::randn({3, 6});
  auto y = c::linear(x, w, {});
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(w.grad(), x.sum(0).expand({4, 6})));
}

// diffusers' GEGLU, h * gelu(gate) with [h, gate] = linear(x).chunk(2): on oneDNN as two matmuls with the gelu fused
// into the gate's, and on torch::linear as the one matmul it always was.
TEST(Compat, LinearGegluEqualsChunkedGeluOnBothPaths) {
  namespace c = emo::compat;
  c10::InferenceMode guard;
  torch::manual_seed(4);
  auto x = torch::randn({2, 11, 32}), w = torch::randn({2 * 48, 32}) * 0.2, b = torch::randn({2 * 48});
  auto parts = torch::linear(x, w, b).chunk(2, -1);
  const auto want = parts[0] * torch::gelu(parts[1]);  // [2, 11, 48]
  for (auto k : {c::CpuLinear::kAuto, c::CpuLinear::kAten}) {
    c::set_cpu_linear(k);
    const auto got = c::linear_geglu(x, w, b);
    EXPECT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-4f) << c::effective_cpu_linear();
    EXPECT_LT((c::linear_gelu(x, w, b) - torch::gelu(torch::linear(x, w, b))).abs().max().item<float>(), 1e-4f);
  }
  c::set_cpu_linear(c::CpuLinear::kAuto);
}

// FeedForward(GEGLU) + residual: with 2700 rows and n = 1280 the oneDNN path runs three row chunks (1024, 1024,
// 652); every row must get what one unchunked call gives, the residual added once, and the aten path the same.
TEST(Compat, GegluFeedForwardInRowChunksEqualsOneCall) {
  namespace c = emo::compat;
  c10::InferenceMode guard;
  torch::manual_seed(6);
  const int64_t dim = 16, n = 1280;
  auto x = torch::randn({3, 900, dim}), r = torch::randn({3, 900, dim});
  auto w_in = torch::randn({2 * n, dim}) * 0.2, b_in = torch::randn({2 * n});
  auto w_out = torch::randn({dim, n}) * 0.05, b_out = torch::randn({dim});
  auto parts = torch::linear(x, w_in, b_in).chunk(2, -1);
  const auto want = torch::linear(parts[0] * torch::gelu(parts[1]), w_out, b_out);  // [3, 900, dim]
  for (auto k : {c::CpuLinear::kAuto, c::CpuLinear::kAten}) {
    c::set_cpu_linear(k);
    const auto plain = c::geglu_feed_forward(x, w_in, b_in, w_out, b_out);
    const auto with_residual = c::geglu_feed_forward(x, w_in, b_in, w_out, b_out, r);
    ASSERT_EQ(plain.sizes(), want.sizes());
    ASSERT_EQ(with_residual.sizes(), want.sizes());
    EXPECT_LT((plain - want).abs().max().item<float>(), 2e-4f) << c::effective_cpu_linear();
    EXPECT_LT((with_residual - (want + r)).abs().max().item<float>(), 2e-4f) << c::effective_cpu_linear();
    // Rows spread over the chunks (800-899 of each batch: flattened rows 800-899, 1700-1799 and 2600-2699, the last
    // chunk's) get what a call on those rows alone gives. Not bit for bit: a BLAS may pick its kernel by the row
    // count (MKL's sgemm on an AVX-512 Xeon rounds 100 rows differently from 2700), so to fp32 rounding.
    const auto tail = c::geglu_feed_forward(x.narrow(1, 800, 100), w_in, b_in, w_out, b_out);
    EXPECT_LT((plain.narrow(1, 800, 100) - tail).abs().max().item<float>(), 1e-5f) << c::effective_cpu_linear();
  }
  c::set_cpu_linear(c::CpuLinear::kAuto);
}

// Convolutions with at most 256 output pixels run as im2col + one matmul on the oneDNN path: stride 1 and 2, 3x3,
// 2x2 without padding, rectangular kernels and padding, a channels-last input; the results are conv2d's, and
// everything else (more pixels, 1x1, groups, dilation, autograd, --cpu-linear aten) stays conv2d.
TEST(Compat, SmallConvolutionsRunAsOneMatmul) {
  namespace c = emo::compat;
  c10::InferenceMode guard;
  torch::manual_seed(7);
  struct Case {
    std::vector<int64_t> x, w, stride, pad;
  };
  const std::vector<Case> cases = {
      {{8, 24, 4, 4}, {40, 24, 3, 3}, {1, 1}, {1, 1}},  // 128 output pixels
      {{4, 24, 8, 8}, {16, 24, 3, 3}, {1, 1}, {1, 1}},  // 256
      {{8, 24, 8, 8}, {16, 24, 3, 3}, {2, 2}, {1, 1}},  // stride 2: 128
      {{3, 16, 7, 6}, {20, 16, 2, 2}, {1, 1}, {0, 0}},  // 2x2, no padding: 90
      {{2, 8, 5, 9}, {12, 8, 1, 3}, {1, 2}, {0, 1}},    // 1x3 kernel, rectangular stride and padding
  };
  for (const auto& cs : cases) {
    auto x = torch::randn(cs.x), w = torch::randn(cs.w) * 0.1, b = torch::randn({cs.w[0]});
    const auto want = torch::conv2d(x, w, b, cs.stride, cs.pad);
    ASSERT_TRUE(c::conv2d_uses_gemm(x, w, b, cs.stride, cs.pad, {1, 1}, 1)) << c10::IntArrayRef(cs.x) << " " << c10::IntArrayRef(cs.w);
    const auto got = c::conv2d(x, w, b, cs.stride, cs.pad, {1, 1}, 1);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-5f) << c10::IntArrayRef(cs.x) << " " << c10::IntArrayRef(cs.w);
    const auto nb = c::conv2d(x, w, torch::Tensor(), cs.stride, cs.pad, {1, 1}, 1);  // no bias
    EXPECT_LT((nb - torch::conv2d(x, w, {}, cs.stride, cs.pad)).abs().max().item<float>(), 1e-5f);
    const auto xl = x.contiguous(at::MemoryFormat::ChannelsLast);
    const auto gl = c::conv2d(xl, w, b, cs.stride, cs.pad, {1, 1}, 1);
    EXPECT_TRUE(gl.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_LT((gl - want).abs().max().item<float>(), 1e-5f);
  }
  auto x = torch::randn({8, 24, 8, 8}), w3 = torch::randn({16, 24, 3, 3}), b = torch::randn({16});
  EXPECT_FALSE(c::conv2d_uses_gemm(x, w3, b, {1, 1}, {1, 1}, {1, 1}, 1));                     // 512 pixels
  EXPECT_FALSE(c::conv2d_uses_gemm(x.narrow(0, 0, 2), torch::randn({16, 24, 1, 1}), b, {1, 1}, {0, 0}, {1, 1}, 1));
  EXPECT_FALSE(c::conv2d_uses_gemm(x.narrow(0, 0, 2), torch::randn({16, 12, 3, 3}), b, {1, 1}, {1, 1}, {1, 1}, 2));
  EXPECT_FALSE(c::conv2d_uses_gemm(x.narrow(0, 0, 2), w3, b, {1, 1}, {2, 2}, {2, 2}, 1));   // dilation 2
  c::set_cpu_linear(c::CpuLinear::kAten);
  EXPECT_FALSE(c::conv2d_uses_gemm(x.narrow(0, 0, 2), w3, b, {1, 1}, {1, 1}, {1, 1}, 1));
  c::set_cpu_linear(c::CpuLinear::kAuto);
  EXPECT_TRUE(c::conv2d_uses_gemm(x.narrow(0, 0, 2), w3, b, {1, 1}, {1, 1}, {1, 1}, 1));
}

TEST(Compat, SmallConvolutionsKeepAutogradWhenGradientsAreWanted) {
  namespace c = emo::compat;
  torch::manual_seed(8);
  auto x = torch::randn({2, 8, 4, 4}), w = (torch::randn({6, 8, 3, 3}) * 0.1).requires_grad_(), b = torch::randn({6});
  EXPECT_FALSE(c::conv2d_uses_gemm(x, w, b, {1, 1}, {1, 1}, {1, 1}, 1));
  c::conv2d(x, w, b, {1, 1}, {1, 1}, {1, 1}, 1).sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_GT(w.grad().abs().sum().item<float>(), 0.f);
}

// Temporal attention over a clip's frames: a tiny score matrix per head and a huge batch, where the fused CPU
// kernel is several times slower than the formula. Under kAuto such shapes take the formula (recorded as emo_math)
// and give SDPA's result; larger ones keep SDPA.
TEST(Compat, SmallScoreMatricesTakeTheFormulaOnTheCpu) {
  namespace c = emo::compat;
  c10::InferenceMode guard;
  const auto saved = c::attention_backend();
  c::set_attention_backend(c::AttentionBackend::kAuto);
  torch::manual_seed(5);
  auto q = torch::randn({64, 8, 4, 40}), k = torch::randn({64, 8, 6, 40}), v = torch::randn({64, 8, 6, 40});
  EXPECT_TRUE(c::small_attention_uses_math(q, k));
  EXPECT_FALSE(c::small_attention_uses_math(torch::randn({1, 8, 16, 40}), torch::randn({1, 8, 18, 40})));
  c::kernel_flops_reset(true);
  c::attention_shapes_take();
  const auto got = c::attention(q, k, v);
  c::kernel_flops_reset(false);
  const auto want = at::scaled_dot_product_attention(q, k, v);
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-5f);
  const auto shapes = c::attention_shapes_take();
  ASSERT_EQ(shapes.size(), 1u);
  EXPECT_EQ(shapes[0].kernel, "emo_math");
  c::set_attention_backend(saved);
}

// Between clips the heap is trimmed only when fragmentation grew the resident set past the first clip's: a trim
// costs the next clip a page fault for every page it hands back.
TEST(Compat, HeapTrimRuleTrimsOnlyWhenTheResidentSetGrew) {
  const int64_t mib = int64_t{1} << 20;
  emo::compat::HeapTrimRule rule(0.02);
  EXPECT_FALSE(rule.should_trim(1000 * mib));  // the first clip: the baseline
  EXPECT_EQ(rule.baseline(), 1000 * mib);
  EXPECT_FALSE(rule.should_trim(1010 * mib));  // +1 %: its freed pages stay for the next clip
  EXPECT_FALSE(rule.should_trim(1020 * mib));  // +2 %: still within
  EXPECT_TRUE(rule.should_trim(1021 * mib));   // past 2 %: trim
  EXPECT_FALSE(rule.should_trim(1005 * mib));  // the clip after the trim is back within
  EXPECT_TRUE(rule.should_trim(1030 * mib));   // fragmentation again: trim again
  EXPECT_EQ(rule.baseline(), 1000 * mib);
  // A bigger job: over the limit again right after a trim, so the working set itself grew. It becomes the
  // baseline, instead of a trim after every clip.
  EXPECT_FALSE(rule.should_trim(1500 * mib));
  EXPECT_EQ(rule.baseline(), 1500 * mib);
  EXPECT_FALSE(rule.should_trim(1520 * mib));
  EXPECT_TRUE(rule.should_trim(1540 * mib));
  EXPECT_TRUE(emo::compat::HeapTrimRule().should_trim(-1));  // resident set unknown: trim as before
}

TEST(Compat, ResidentBytesReadsThisProcess) {
  const int64_t before = emo::compat::resident_bytes();
  ASSERT_GT(before, 0);
  std::vector<char> block(64 << 20, 1);  // 64 MiB touched
  const int64_t after = emo::compat::resident_bytes();
  EXPECT_GE(after - before, int64_t{48} << 20);
  EXPECT_EQ(block[12345], 1);
}
