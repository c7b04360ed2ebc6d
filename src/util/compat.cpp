#include "emo/compat.h"

#include <atomic>
#include <cmath>
#include <thread>

namespace emo::compat {

namespace {
std::atomic<AttentionBackend> g_backend{AttentionBackend::kAuto};
}

void set_attention_backend(AttentionBackend b) { g_backend = b; }
AttentionBackend attention_backend() { return g_backend; }

bool has_fused_attention() {
#if EMO_TORCH_AT_LEAST(2, 0)
  return true;
#else
  return false;
#endif
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
#if EMO_TORCH_AT_LEAST(2, 1)
  if (g_backend == AttentionBackend::kAuto)
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false, s);
#elif EMO_TORCH_AT_LEAST(2, 0)
  if (g_backend == AttentionBackend::kAuto) {
    // 2.0 has no scale argument: pre-scale q so that q' k^T / sqrt(D) == q k^T * s.
    const double pre = s * std::sqrt(static_cast<double>(q.size(-1)));
    return at::scaled_dot_product_attention(q * pre, k, v, {}, 0.0, false);
  }
#endif
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * s;  // [B, H, Lq, Lk]
  auto probs = scores.softmax(-1);
  return torch::matmul(probs, v);  // [B, H, Lq, D]
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
}

}  // namespace emo::compat
