// The one place where libtorch version differences are handled.
// Debian 12 ships libtorch 1.13 (CPU); GPU machines use libtorch 2.x. Everything version-specific
// is gated here on TORCH_VERSION_MAJOR/MINOR so the rest of the code is version-agnostic.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define EMO_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace emo::compat {

enum class AttentionBackend {
  kAuto,  // fused scaled_dot_product_attention where libtorch has it (>= 2.0), math otherwise
  kMath,  // softmax(q k^T * scale) v, always available
};

// Process-wide choice (set once at load time; tests flip it to cover both paths).
void set_attention_backend(AttentionBackend b);
AttentionBackend attention_backend();
bool has_fused_attention();  // true when compiled against libtorch >= 2.0
// What attention() runs now: "sdpa" (fused, libtorch >= 2.0 with kAuto) or "math".
const char* effective_attention();

// q [B, H, Lq, D], k/v [B, H, Lk, D] -> [B, H, Lq, D]; scale = 1/sqrt(D) unless given.
// The math path avoids baddbmm into an uninitialised buffer: libtorch 1.13's CPU baddbmm with beta=0
// reads that buffer and can yield NaN rows (see shared/golden/README.md).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale = -1.0);

// Version string such as "1.13.1".
std::string torch_version();

// Intra-op threads: n <= 0 means "all cores" (libtorch defaults to 1 on Debian's build).
void set_num_threads(int n);

inline bool cuda_available() { return torch::cuda::is_available(); }

// While alive, fp32 on CUDA is exact fp32: TF32 is off for cuDNN convolutions (PyTorch's default is on) and for
// cuBLAS matmuls. For parity checks; the previous settings come back on destruction. No effect on CPU.
class ExactFp32Scope {
 public:
  ExactFp32Scope();
  ~ExactFp32Scope();
  ExactFp32Scope(const ExactFp32Scope&) = delete;
  ExactFp32Scope& operator=(const ExactFp32Scope&) = delete;

 private:
  bool cudnn_, cublas_;
};

}  // namespace emo::compat
