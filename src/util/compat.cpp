#include "emo/compat.h"

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/_fused_sdp_choice.h>

#include <optional>
#include <string_view>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>

#include <cstdio>

namespace emo::compat {

namespace {
std::atomic<AttentionBackend> g_backend{AttentionBackend::kAuto};
std::atomic<CpuLinear> g_cpu_linear{CpuLinear::kAuto};
std::atomic<bool> g_count_flops{false};
std::atomic<uint64_t> g_kernel_flops{0};
std::mutex g_shapes_mu;
std::map<std::string, AttentionShapeStat> g_shapes;

const char* sdp_kernel_name(int64_t choice) {
  switch (choice) {  // at::sdp::SDPBackend
    case 0: return "math";
    case 1: return "flash_attention";
    case 2: return "efficient_attention";
    case 3: return "cudnn_attention";
    case 4: return "overrideable";
    default: return "none";
  }
}

void record_shape(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double s, bool sdpa) {
  std::string kernel = "emo_math";
  if (sdpa) {
    try {
      kernel = sdp_kernel_name(at::_fused_sdp_choice(q, k, v, /*attn_mask=*/{}, 0.0, false, s));
    } catch (...) {
      kernel = "unknown";
    }
  }
  std::string key = kernel;
  for (auto d : q.sizes()) key += "," + std::to_string(d);
  for (auto d : k.sizes()) key += ";" + std::to_string(d);
  key += std::string(c10::toString(q.scalar_type())) + q.device().str();
  std::lock_guard<std::mutex> lock(g_shapes_mu);
  auto& st = g_shapes[key];
  if (st.calls == 0) {
    st.q = q.sizes().vec();
    st.k = k.sizes().vec();
    st.dtype = c10::toString(q.scalar_type());
    st.device = q.device().str();
    st.kernel = kernel;
  }
  ++st.calls;
}
}

std::vector<AttentionShapeStat> attention_shapes_take() {
  std::lock_guard<std::mutex> lock(g_shapes_mu);
  std::vector<AttentionShapeStat> out;
  for (auto& [key, st] : g_shapes) out.push_back(std::move(st));
  g_shapes.clear();
  return out;
}

uint64_t kernel_flops_reset(bool counting) {
  const uint64_t n = g_kernel_flops.exchange(0);
  g_count_flops = counting;
  return n;
}

void set_attention_backend(AttentionBackend b) { g_backend = b; }
AttentionBackend attention_backend() { return g_backend; }

const char* effective_attention() { return g_backend == AttentionBackend::kAuto ? "sdpa" : "math"; }

namespace {
// softmax(q k^T * s) v, in slices of the flattened [B*H] and query axes so that the materialised score matrix stays
// under ~256 MiB (hallo's reference attention at 64x64 latents would need 16 GiB at once). Rows are independent, so
// the result equals the unsliced computation.
torch::Tensor math_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double s) {
  constexpr int64_t kMaxScores = int64_t{1} << 26;  // elements
  const int64_t lq = q.size(-2), lk = k.size(-2);
  const int64_t bh = q.numel() / (lq * q.size(-1));
  if (bh * lq * lk <= kMaxScores) {
    auto scores = torch::matmul(q, k.transpose(-1, -2)) * s;  // [B, H, Lq, Lk]
    return torch::matmul(scores.softmax(-1), v);              // [B, H, Lq, D]
  }
  auto qf = q.reshape({bh, lq, q.size(-1)});
  auto kf = k.expand({q.size(0), q.size(1), lk, k.size(-1)}).reshape({bh, lk, k.size(-1)});
  auto vf = v.expand({q.size(0), q.size(1), lk, v.size(-1)}).reshape({bh, lk, v.size(-1)});
  auto out = torch::empty({bh, lq, v.size(-1)}, q.options());
  const int64_t rows = std::max<int64_t>(1, kMaxScores / lk);  // query rows per slice (over all of B*H)
  const int64_t per_b = std::max<int64_t>(1, rows / lq);       // whole [Lq] blocks per slice
  for (int64_t b0 = 0; b0 < bh; b0 += per_b) {
    const int64_t b1 = std::min(bh, b0 + per_b);
    const int64_t q_step = per_b > 1 ? lq : std::max<int64_t>(1, rows);
    for (int64_t r0 = 0; r0 < lq; r0 += q_step) {
      const int64_t r1 = std::min(lq, r0 + q_step);
      auto qs = qf.slice(0, b0, b1).slice(1, r0, r1);
      auto scores = torch::matmul(qs, kf.slice(0, b0, b1).transpose(-1, -2)) * s;
      out.slice(0, b0, b1).slice(1, r0, r1).copy_(torch::matmul(scores.softmax(-1), vf.slice(0, b0, b1)));
    }
  }
  return out.view({q.size(0), q.size(1), lq, v.size(-1)});
}
}  // namespace

bool small_attention_uses_math(const torch::Tensor& q, const torch::Tensor& k) {
  return q.device().is_cpu() && q.size(-2) * k.size(-2) <= 128;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  if (g_count_flops.load(std::memory_order_relaxed)) {  // q k^T and p v: 2 x multiply-accumulate each
    const int64_t lq = q.size(-2), lk = k.size(-2), bh = q.numel() / (lq * q.size(-1));
    g_kernel_flops += static_cast<uint64_t>(2 * bh * lq * lk * (q.size(-1) + v.size(-1)));
    record_shape(q, k, v, s, g_backend == AttentionBackend::kAuto && !small_attention_uses_math(q, k));
  }
  if (g_backend == AttentionBackend::kAuto && !small_attention_uses_math(q, k))
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false, s);
  return math_attention(q, k, v, s);
}

namespace {
// mkldnn::_linear_pointwise(Tensor X, Tensor W, Tensor? B, str attr, Scalar?[] scalars, str? algorithm): oneDNN's
// matmul with an optional fused eltwise epilogue, registered by libtorch_cpu when built with oneDNN (as PyPI's x86
// wheels are; TorchInductor's CPU backend calls it). Looked up once; null when this libtorch lacks it.
using LinearPointwise = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                   std::string_view, c10::List<std::optional<at::Scalar>>,
                                   std::optional<std::string_view>);
const c10::TypedOperatorHandle<LinearPointwise>* onednn_linear_op() {
  static const auto op = []() -> std::optional<c10::TypedOperatorHandle<LinearPointwise>> {
    try {
      if (!at::hasMKLDNN()) return std::nullopt;
      auto h = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
      if (!h) return std::nullopt;
      return h->typed<LinearPointwise>();
    } catch (...) {  // a schema that does not match this signature: keep torch::linear
      return std::nullopt;
    }
  }();
  return op ? &*op : nullptr;
}

// The oneDNN path: CPU fp32, no autograd to record (the op has no derivative), a non-empty batch.
const c10::TypedOperatorHandle<LinearPointwise>* onednn_for(const torch::Tensor& x, const torch::Tensor& w,
                                                             const torch::Tensor& b) {
  if (g_cpu_linear.load(std::memory_order_relaxed) != CpuLinear::kAuto) return nullptr;
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || x.dim() < 2 ||
      x.numel() == 0 || !w.device().is_cpu())
    return nullptr;
  if (at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad())))
    return nullptr;
  return onednn_linear_op();
}

torch::Tensor onednn_linear(const c10::TypedOperatorHandle<LinearPointwise>& op, const torch::Tensor& x,
                            const torch::Tensor& w, const torch::Tensor& b, std::string_view attr,
                            std::optional<std::string_view> algorithm) {
  if (g_count_flops.load(std::memory_order_relaxed))  // the profiler counts aten::addmm / aten::mm, not this op
    g_kernel_flops += static_cast<uint64_t>(2 * (x.numel() / x.size(-1)) * w.size(1) * w.size(0));
  return op.call(x, w, b.defined() ? std::optional<at::Tensor>(b) : std::nullopt, attr,
                 c10::List<std::optional<at::Scalar>>(), algorithm);
}
}  // namespace

void set_cpu_linear(CpuLinear k) { g_cpu_linear = k; }

const char* effective_cpu_linear() {
  return g_cpu_linear.load() == CpuLinear::kAuto && onednn_linear_op() ? "onednn" : "aten";
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (const auto* op = onednn_for(x, w, b)) return onednn_linear(*op, x, w, b, "none", std::string_view(""));
  return torch::linear(x, w, b);
}

torch::Tensor linear_gelu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (const auto* op = onednn_for(x, w, b)) return onednn_linear(*op, x, w, b, "gelu", std::string_view("none"));
  return torch::gelu(torch::linear(x, w, b));
}

torch::Tensor linear_geglu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t n = w.size(0) / 2;
  if (const auto* op = onednn_for(x, w, b)) {
    auto half = [&](int64_t i) { return b.defined() ? b.narrow(0, i * n, n) : b; };
    auto h = onednn_linear(*op, x, w.narrow(0, 0, n), half(0), "none", std::string_view(""));     // [..., n]
    auto g = onednn_linear(*op, x, w.narrow(0, n, n), half(1), "gelu", std::string_view("none"));  // [..., n]
    return h.mul_(g);
  }
  auto parts = torch::linear(x, w, b).chunk(2, -1);  // h, gate: [..., n] each
  return parts[0] * torch::gelu(parts[1]);
}

torch::Tensor geglu_feed_forward(const torch::Tensor& x, const torch::Tensor& w_in, const torch::Tensor& b_in,
                                 const torch::Tensor& w_out, const torch::Tensor& b_out, const torch::Tensor& residual) {
  const int64_t n = w_in.size(0) / 2, dim = x.size(-1), dout = w_out.size(0);
  const int64_t rows = x.dim() > 0 && dim > 0 ? x.numel() / dim : 0;
  // Rows per chunk: about 5 MiB of [rows, n] intermediate (1024 rows at n = 1280), never fewer than 64.
  constexpr int64_t kChunkBytes = int64_t{5} << 20;
  const int64_t chunk = std::max<int64_t>(64, kChunkBytes / std::max<int64_t>(1, n * x.element_size()));
  auto shape = x.sizes().vec();  // of the output
  if (!shape.empty()) shape.back() = dout;
  const auto* op = onednn_for(x, w_in, b_in) ? onednn_for(x, w_out, b_out) : nullptr;
  if (!op || rows <= chunk || (residual.defined() && residual.sizes() != at::IntArrayRef(shape))) {
    auto y = linear(linear_geglu(x, w_in, b_in), w_out, b_out);
    return residual.defined() ? y + residual : y;
  }
  const auto x2 = x.reshape({rows, dim});                                                  // [rows, dim]
  const auto r2 = residual.defined() ? residual.reshape({rows, dout}) : torch::Tensor();   // [rows, dout]
  auto out = torch::empty({rows, dout}, x.options());                                      // [rows, dout]
  for (int64_t i = 0; i < rows; i += chunk) {
    const int64_t len = std::min(chunk, rows - i);
    auto y = onednn_linear(*op, linear_geglu(x2.narrow(0, i, len), w_in, b_in), w_out, b_out, "none",
                           std::string_view(""));                                          // [len, dout]
    auto o = out.narrow(0, i, len);
    if (r2.defined()) at::add_out(o, y, r2.narrow(0, i, len));
    else o.copy_(y);
  }
  return out.view(shape);                                                                  // [..., dout]
}

bool conv2d_uses_gemm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  if (groups != 1 || x.dim() != 4 || w.dim() != 4 || stride.size() != 2 || padding.size() != 2 ||
      dilation.size() != 2 || dilation[0] != 1 || dilation[1] != 1 || !w.is_contiguous() ||
      w.size(2) * w.size(3) <= 1 || x.size(1) != w.size(1) || stride[0] < 1 || stride[1] < 1)
    return false;
  if (!onednn_for(x, w, b)) return false;
  const int64_t ho = (x.size(2) + 2 * padding[0] - w.size(2)) / stride[0] + 1;
  const int64_t wo = (x.size(3) + 2 * padding[1] - w.size(3)) / stride[1] + 1;
  constexpr int64_t kMaxGemmRows = 256;  // measured crossover: 1.3x faster at 256 output pixels, mixed at 512
  return ho > 0 && wo > 0 && x.size(0) * ho * wo <= kMaxGemmRows;
}

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, at::IntArrayRef stride,
                     at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  if (!conv2d_uses_gemm(x, w, b, stride, padding, dilation, groups))
    return torch::conv2d(x, w, b, stride, padding, dilation, groups);
  const int64_t n = x.size(0), c = x.size(1), kh = w.size(2), kw = w.size(3), co = w.size(0);
  const int64_t ho = (x.size(2) + 2 * padding[0] - kh) / stride[0] + 1;
  const int64_t wo = (x.size(3) + 2 * padding[1] - kw) / stride[1] + 1;
  using torch::indexing::Slice;
  const auto xp = torch::constant_pad_nd(x.permute({0, 2, 3, 1}), {0, 0, padding[1], padding[1], padding[0], padding[0]});
  std::vector<torch::Tensor> taps;  // tap (i, j): [N, Ho, Wo, C]
  taps.reserve(static_cast<size_t>(kh * kw));
  for (int64_t i = 0; i < kh; ++i)
    for (int64_t j = 0; j < kw; ++j)
      taps.push_back(xp.index({Slice(), Slice(i, i + stride[0] * (ho - 1) + 1, stride[0]),
                               Slice(j, j + stride[1] * (wo - 1) + 1, stride[1]), Slice()}));
  // Column c * kh * kw + i * kw + j: the order of w.view([Cout, Cin * kh * kw]).
  const auto cols = torch::stack(taps, -1).view({n * ho * wo, c * kh * kw});   // [N Ho Wo, C kh kw]
  auto y = linear(cols, w.view({co, c * kh * kw}), b);                          // [N Ho Wo, Cout]
  auto nchw = y.view({n, ho, wo, co}).permute({0, 3, 1, 2});                    // [N, Cout, Ho, Wo]
  return x.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? nchw : nchw.contiguous();
}

ExactFp32Scope::ExactFp32Scope()
    : cudnn_(at::globalContext().allowTF32CuDNN()), cublas_(at::globalContext().allowTF32CuBLAS()) {
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
}

ExactFp32Scope::~ExactFp32Scope() {
  at::globalContext().setAllowTF32CuDNN(cudnn_);
  at::globalContext().setAllowTF32CuBLAS(cublas_);
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
}

namespace {
std::mutex g_malloc_mu;
bool g_retain_applied = false;
bool mallopt_state() {
  std::lock_guard<std::mutex> lock(g_malloc_mu);
  return g_retain_applied;
}
}  // namespace

bool set_retain_host_memory(bool retain) {
#if defined(__GLIBC__)
  std::lock_guard<std::mutex> lock(g_malloc_mu);
  bool& applied = g_retain_applied;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && std::string(tunables).find("malloc") != std::string::npos) return false;  // the user's choice
  if (retain == applied) return retain;
  if (retain) {
    mallopt(M_MMAP_MAX, 0);                                        // every block from the heap, reused when freed
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());    // keep freed memory for the next step
  } else {                                                         // glibc's documented defaults
    mallopt(M_MMAP_MAX, 65536);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  }
  applied = retain;
  return retain;
#else
  (void)retain;
  return false;
#endif
}

namespace {
bool user_malloc_tunables() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  return t && std::string(t).find("malloc") != std::string::npos;
}
}  // namespace

bool HeapTrimRule::should_trim(int64_t resident) {
  if (resident < 0) return true;                       // unknown: trim, as every clip did before the rule
  if (baseline_ < 0) {                                 // the first clip: its resident set is the baseline
    baseline_ = resident;
    return false;
  }
  const bool over = static_cast<double>(resident) > static_cast<double>(baseline_) * (1.0 + growth_);
  if (!over) {
    trimmed_last_ = false;
    return false;
  }
  if (trimmed_last_) {                                 // over again right after a trim: the working set grew
    baseline_ = resident;
    trimmed_last_ = false;
    return false;
  }
  trimmed_last_ = true;
  return true;
}

int64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  const long page = sysconf(_SC_PAGESIZE);
  if (n != 2 || page <= 0) return -1;
  return static_cast<int64_t>(resident) * page;
}

bool release_free_host_memory() {
#if defined(__GLIBC__)
  if (user_malloc_tunables()) return false;
  static std::mutex mu;
  static HeapTrimRule rule;
  std::lock_guard<std::mutex> lock(mu);
  if (!rule.should_trim(resident_bytes())) return false;
  malloc_trim(0);
  return true;
#else
  return false;
#endif
}

std::string host_memory_policy() {
  if (user_malloc_tunables()) return "GLIBC_TUNABLES";
#if defined(__GLIBC__)
  return mallopt_state() ? "retain" : "system";
#else
  return "system";
#endif
}

}  // namespace emo::compat
