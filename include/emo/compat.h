// Process-wide runtime switches around libtorch: the attention kernel (fused SDPA or the reference formula),
// exact-fp32 scopes, thread count, and what the build and the machine offer (torch/CUDA/cuDNN versions, devices).
// emo supports one libtorch line, 2.x (scripts/setup.sh pins the release).
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#include <string>
#include <vector>

#if TORCH_VERSION_MAJOR < 2
#error "emo needs libtorch 2.x (scripts/setup.sh installs the pinned release)"
#endif

namespace emo::compat {

enum class AttentionBackend {
  kAuto,  // fused scaled_dot_product_attention (flash / memory-efficient / math, chosen by libtorch per shape)
  kMath,  // softmax(q k^T * scale) v, the reference formula (parity checks)
};

// Process-wide choice (set once at load time; tests flip it to cover both paths).
void set_attention_backend(AttentionBackend b);
AttentionBackend attention_backend();
// What attention() runs now: "sdpa" (kAuto) or "math".
const char* effective_attention();

// q [B, H, Lq, D], k/v [B, H, Lk, D] -> [B, H, Lq, D]; scale = 1/sqrt(D) unless given.
// The math path is computed in slices that bound the materialised score matrix (~256 MiB).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale = -1.0);

// Under kAuto on the CPU, attention() takes the reference formula instead of the fused kernel when each head's
// score matrix is small (Lq * Lk <= 128: the temporal attentions over up to 10 frames plus the motion frames),
// where libtorch's flash kernel spends more time setting up its blocks than computing (2-6x slower at
// [2048, 8, 4..6, 40], docs/performance.md). True when (q, k) take that path.
bool small_attention_uses_math(const torch::Tensor& q, const torch::Tensor& k);

// Which kernel runs the linear layers of fp32 models on the CPU (set once at load time).
enum class CpuLinear {
  kAuto,  // oneDNN's matmul (mkldnn::_linear_pointwise) when libtorch has it, else kAten
  kAten,  // torch::linear (the BLAS libtorch was built with: MKL's sgemm in PyPI's x86 wheels)
};
void set_cpu_linear(CpuLinear k);
// What linear() runs now on a CPU fp32 input: "onednn" or "aten".
const char* effective_cpu_linear();

// torch.nn.functional.linear: x [..., in], w [out, in], b [out] or undefined -> [..., out].
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
// gelu(linear(x, w, b)) (erf form); on the oneDNN path the gelu is fused into the matmul's epilogue.
torch::Tensor linear_gelu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
// diffusers' GEGLU: h, gate = linear(x, w, b).chunk(2, -1); h * gelu(gate). w [2n, in]. On the oneDNN path the
// two halves are two matmuls (the gate's with its gelu fused) and no [..., 2n] intermediate is materialised.
torch::Tensor linear_geglu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
// diffusers' FeedForward with GEGLU, plus an optional residual: linear(linear_geglu(x, w_in, b_in), w_out, b_out)
// (+ residual). On the oneDNN path, when the [rows, n] intermediate outgrows a few MiB, the rows run in chunks of
// about 5 MiB of intermediate each, so it is consumed from the cache by the second matmul (the rows are
// independent: the same values as one call). The residual is added into the output as each chunk is done.
torch::Tensor geglu_feed_forward(const torch::Tensor& x, const torch::Tensor& w_in, const torch::Tensor& b_in,
                                 const torch::Tensor& w_out, const torch::Tensor& b_out,
                                 const torch::Tensor& residual = {});
// torch.nn.functional.conv2d (zero padding). On the oneDNN path (CPU fp32, no autograd, groups 1, dilation 1, a
// kernel larger than 1x1, weights contiguous) a convolution with at most 256 output pixels in the whole batch
// (the UNets' 4x4 and 8x8 levels at small batches) runs as im2col and one oneDNN matmul: oneDNN's direct
// convolution reaches half the FMA rate there (1.3-2.5x slower at [4-8, 1280, 4..8, 4..8], docs/performance.md).
torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);
// True when conv2d() takes the im2col + matmul path for these arguments.
bool conv2d_uses_gemm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

// Benchmarks: the FLOPs the profiler cannot see, counted by shape while counting is on: attention (2 x
// multiply-accumulate of q k^T and p v) and the oneDNN linear layers (2 x M x in x out).
// Returns the count so far, zeroes it and switches counting on or off.
uint64_t kernel_flops_reset(bool counting);

// Benchmarks: while counting is on, every attention call's shape and the kernel it gets: for sdpa, libtorch's own
// choice for those inputs (at::_fused_sdp_choice: "flash_attention", "efficient_attention", "cudnn_attention" or
// "math"), for the math backend "emo_math". Returned (and cleared) by attention_shapes_take().
struct AttentionShapeStat {
  std::vector<int64_t> q, k;  // [B, H, Lq, D], [B, H, Lk, D]
  std::string dtype, device, kernel;
  int64_t calls = 0;
};
std::vector<AttentionShapeStat> attention_shapes_take();

// Version string such as "2.11.0".
std::string torch_version();

// What libtorch was built with and what this process sees: for `emo --version` and the sidecar.
struct BuildInfo {
  std::string torch;          // "2.11.0"
  bool cuda_built = false;    // libtorch has CUDA support compiled in
  std::string cuda;           // CUDA runtime version libtorch was built against, e.g. "13.0" ("" without CUDA)
  std::string cudnn;          // cuDNN version libtorch was built against, e.g. "9.19.0" ("" without cuDNN)
  struct Device {
    int index = 0;
    std::string name;
    int64_t total_memory = 0;  // bytes
    int major = 0, minor = 0;  // compute capability
  };
  std::vector<Device> devices;  // CUDA devices visible now (empty: none, or no driver)
};
BuildInfo build_info();
// Multi-line report for `emo --version`.
std::string version_report(const std::string& emo_version);

// Intra-op threads: n <= 0 means "all cores" (libtorch defaults to 1 on Debian's build).
void set_num_threads(int n);

// Host allocator policy, process-wide. retain = true: large CPU tensors come from the heap instead of a fresh
// mmap each (glibc M_MMAP_MAX = 0) and freed memory is not trimmed back to the system (M_TRIM_THRESHOLD), so
// the activations of every step reuse the same pages instead of faulting in and zeroing new ones. Left alone when
// the user set GLIBC_TUNABLES or when the C library is not glibc. Returns whether the policy is in effect.
bool set_retain_host_memory(bool retain);
// "retain", "system", or "GLIBC_TUNABLES" (the user's malloc tunables win): for reports.
std::string host_memory_policy();
// When to hand the heap's free pages back between clips. Trimming costs the next clip its page faults (every
// freed page is faulted in and zeroed again: about 0.5-1 s of a first UNet step at 256² on two cores), so it is
// worth doing only when heap fragmentation has grown the resident set. The first clip's resident set (taken after
// it, untrimmed: about its peak) is the baseline; a later clip trims only when it ends more than `growth` above
// it, so the peak stays within about `growth` plus one clip's fragmentation of the first clip's. When the resident
// set is still above the limit after the clip that follows a trim, the working set itself grew (a bigger job in
// `emo batch`): that becomes the baseline.
class HeapTrimRule {
 public:
  explicit HeapTrimRule(double growth = 0.02) : growth_(growth) {}
  // resident_bytes: the process's resident set after a clip. True: trim now.
  bool should_trim(int64_t resident_bytes);
  int64_t baseline() const { return baseline_; }

 private:
  double growth_;
  int64_t baseline_ = -1;
  bool trimmed_last_ = false;
};
// The process's resident set in bytes (/proc/self/statm), or -1 where it cannot be read.
int64_t resident_bytes();
// Between clips: hands the heap's free pages back to the system (glibc malloc_trim) when the process-wide
// HeapTrimRule says so, so heap fragmentation cannot ratchet the peak up with the audio's length (under retain,
// and under system too: glibc's sliding mmap threshold puts large blocks on the heap after the first frees).
// Per clip, never per step. Does nothing when the user's GLIBC_TUNABLES set malloc, or without glibc. Returns
// whether it trimmed.
bool release_free_host_memory();

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
