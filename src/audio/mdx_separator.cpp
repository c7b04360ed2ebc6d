// MDX-Net vocal separation, step for step as audio-separator 0.17.2's MDXSeparator (separate -> demix -> run_model
// -> STFT / net / iSTFT) with Separator's defaults; see include/emo/separator.h and docs/audio.md.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "emo/error.h"
#include "emo/separator.h"
#include "nn/onnx_interpreter.h"

namespace emo::audio {

namespace fs = std::filesystem;

struct MdxSeparator::Impl {
  MdxParams p;
  std::string path;
  torch::Device device = torch::kCPU;
  std::unique_ptr<nn::onnx::Interpreter> net;
  at::Tensor window;  // torch.hann_window(n_fft, periodic=True)
};

MdxSeparator::MdxSeparator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MdxSeparator::MdxSeparator(MdxSeparator&&) noexcept = default;
MdxSeparator& MdxSeparator::operator=(MdxSeparator&&) noexcept = default;
MdxSeparator::~MdxSeparator() = default;

const MdxParams& MdxSeparator::params() const { return impl_->p; }
const std::string& MdxSeparator::path() const { return impl_->path; }

MdxSeparator MdxSeparator::load(const std::string& onnx_path, const MdxParams& params, const std::string& device) {
  if (!fs::is_regular_file(onnx_path)) throw ModelError(onnx_path + ": vocal separator model not found");
  if (params.n_fft <= 0 || params.hop_length <= 0 || params.dim_f <= 0 || params.dim_f > params.n_fft / 2 + 1 ||
      params.segment_size < 2 || params.overlap < 0 || params.overlap >= 1 || params.sample_rate <= 0)
    throw ModelError(onnx_path + ": invalid MDX parameters");
  if (params.hop_length * (params.segment_size - 1) <= params.n_fft)
    throw ModelError(onnx_path + ": MDX chunk (hop_length * (segment_size - 1)) must exceed n_fft");
  auto impl = std::make_unique<Impl>();
  impl->p = params;
  impl->path = onnx_path;
  impl->device = torch::Device(device);
  impl->net = std::make_unique<nn::onnx::Interpreter>(nn::onnx::Interpreter::load(onnx_path, device));
  const auto& inputs = impl->net->model().inputs;
  if (inputs.size() != 1) throw ModelError(onnx_path + ": an MDX-Net model has one input, this one has " + std::to_string(inputs.size()));
  const auto& d = inputs[0].dims;  // [batch, 4, dim_f, dim_t]
  if (d.size() != 4 || (d[1] > 0 && d[1] != 4) || (d[2] > 0 && d[2] != params.dim_f) ||
      (d[3] > 0 && d[3] != params.segment_size)) {
    std::string s;
    for (auto v : d) s += (s.empty() ? "" : ", ") + (v < 0 ? std::string("?") : std::to_string(v));
    throw ModelError(onnx_path + ": input '" + inputs[0].name + "' is [" + s + "], expected [batch, 4, " +
                     std::to_string(params.dim_f) + ", " + std::to_string(params.segment_size) + "] (MDX-Net dim_f, segment_size)");
  }
  impl->window = torch::hann_window(params.n_fft, torch::TensorOptions().dtype(torch::kFloat)).to(impl->device);
  return MdxSeparator(std::move(impl));
}

at::Tensor MdxSeparator::stft(const at::Tensor& chunks) const {
  const auto& p = impl_->p;
  const int64_t b = chunks.size(0), c = chunks.size(1), t = chunks.size(2);
  auto x = chunks.reshape({-1, t});                                                       // [B*2, T]
  auto z = torch::stft(x, p.n_fft, p.hop_length, p.n_fft, impl_->window, /*center=*/true, "reflect",
                       /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);  // [B*2, F, frames]
  auto ri = torch::view_as_real(z).permute({0, 3, 1, 2});                                 // [B*2, 2, F, frames]
  auto spec = ri.reshape({b, c * 2, ri.size(2), ri.size(3)});                              // [B, 4, F, frames]: L re, L im, R re, R im
  return spec.narrow(2, 0, p.dim_f);                                                      // [B, 4, dim_f, frames]
}

at::Tensor MdxSeparator::istft(const at::Tensor& spec) const {
  const auto& p = impl_->p;
  const int64_t b = spec.size(0), c = spec.size(1), f = spec.size(2), t = spec.size(3);
  const int64_t bins = p.n_fft / 2 + 1;
  auto padded = torch::cat({spec, torch::zeros({b, c, bins - f, t}, spec.options())}, 2);  // [B, 4, bins, frames]
  auto ri = padded.reshape({b, c / 2, 2, bins, t}).reshape({-1, 2, bins, t}).permute({0, 2, 3, 1});  // [B*2, bins, frames, 2]
  auto z = torch::complex(ri.select(3, 0).contiguous(), ri.select(3, 1).contiguous());   // [B*2, bins, frames]
  auto wave = torch::istft(z, p.n_fft, p.hop_length, p.n_fft, impl_->window, /*center=*/true);  // [B*2, hop*(frames-1)]
  return wave.reshape({b, 2, -1});                                                        // [B, 2, T]
}

at::Tensor MdxSeparator::net(const at::Tensor& spec) const { return impl_->net->run(spec.contiguous()); }

at::Tensor MdxSeparator::run_model(const at::Tensor& chunks) const {
  auto spek = stft(chunks.to(impl_->device));                                             // [B, 4, dim_f, frames]
  spek.narrow(2, 0, 3).zero_();                                                           // spek[:, :, :3, :] *= 0
  at::Tensor pred;
  if (impl_->p.enable_denoise)
    pred = net(-spek) * -0.5 + net(spek) * 0.5;
  else
    pred = net(spek);                                                                     // [B, 4, dim_f, frames]
  return istft(pred);                                                                     // [B, 2, chunk]
}

namespace {
// numpy.hanning(m): symmetric, float64.
at::Tensor np_hanning(int64_t m) {
  if (m == 1) return torch::ones({1}, torch::kDouble);
  auto k = torch::arange(m, torch::kDouble);
  return 0.5 - 0.5 * torch::cos(2.0 * M_PI * k / static_cast<double>(m - 1));
}
}  // namespace

at::Tensor MdxSeparator::demix(const at::Tensor& mix_in, const ChunkCallback& on_chunk) const {
  c10::InferenceMode guard;
  const auto& p = impl_->p;
  auto mix = mix_in.to(torch::kCPU, torch::kFloat).contiguous();                          // [2, n]
  const int64_t n = mix.size(1);
  const int64_t trim = p.n_fft / 2;
  const int64_t chunk = p.hop_length * (p.segment_size - 1);
  const int64_t gen = chunk - 2 * trim;
  const int64_t pad = gen + trim - n % gen;
  // mixture = [zeros(trim), mix, zeros(pad)] is never materialised: each chunk copies its part of `mix`
  const int64_t len = trim + n + pad;                                                     // mixture length L
  const int64_t step = static_cast<int64_t>((1.0 - p.overlap) * static_cast<double>(chunk));  // python int()
  auto result = torch::zeros({2, len});                                                   // float32, as numpy's
  auto divider = torch::zeros({2, len});
  const int64_t chunks = (len + step - 1) / step;
  for (int64_t i = 0; i < len; i += step) {
    if (on_chunk) on_chunk(i / step, chunks);
    const int64_t end = std::min(i + chunk, len), actual = end - i;
    auto part = torch::zeros({2, chunk});                                                 // mixture[:, i:end], zero-padded
    const int64_t a = std::max(i, trim), b = std::min(end, trim + n);                     // the mix's samples in it
    if (b > a) part.slice(1, a - i, b - i).copy_(mix.slice(1, a - trim, b - trim));
    auto tar = run_model(part.unsqueeze(0)).to(torch::kCPU).squeeze(0);                   // [2, chunk]
    auto win = p.overlap != 0 ? np_hanning(actual) : torch::ones({actual}, torch::kDouble); // [actual] float64
    auto head = (tar.slice(1, 0, actual).to(torch::kDouble) * win).to(torch::kFloat);    // tar[..., :actual] *= window
    auto div = divider.slice(1, i, end);
    div.copy_((div.to(torch::kDouble) + win).to(torch::kFloat));                          // divider += window
    result.slice(1, i, end).add_(head);                                                   // result += tar[..., :end-start]
  }
  result.div_(divider);                                                                   // tar_waves = result / divider
  divider = at::Tensor();
  auto source = result.slice(1, trim, trim + n);                                          // [2, n] (a view: no copy)
  source.mul_(static_cast<float>(p.compensate));
  return source;
}

namespace {
// spec_utils.normalize: scale down to max_peak when the peak exceeds it (float32 array *= float32(max_peak / peak)).
void normalize(at::Tensor& wave, double max_peak) {
  const float peak = wave.abs().max().item<float>();
  if (peak > max_peak) wave.mul_(static_cast<float>(max_peak / static_cast<double>(peak)));
}
}  // namespace

at::Tensor MdxSeparator::separate(const at::Tensor& mix_in, const ChunkCallback& on_chunk) const {
  c10::InferenceMode guard;
  auto mix = mix_in.to(torch::kCPU, torch::kFloat).clone();
  if (mix.dim() == 1) mix = mix.unsqueeze(0);
  if (mix.dim() != 2 || mix.size(1) == 0) throw InputError("vocal separation: expected [channels, samples] audio");
  if (mix.size(0) == 1) mix = torch::cat({mix, mix}, 0);                                  // prepare_mix: mono -> [mix, mix]
  if (mix.size(0) != 2) throw InputError("vocal separation: expected stereo audio, got " + std::to_string(mix.size(0)) + " channels");
  if (!mix.any().item<bool>()) throw InputError("vocal separation: the audio is empty (all samples are zero)");
  normalize(mix, impl_->p.normalization_threshold);                                       // before demixing
  auto source = demix(mix, on_chunk);                                                     // [2, n]
  normalize(source, impl_->p.normalization_threshold);                                    // primary_source
  normalize(source, impl_->p.normalization_threshold);                                    // again in write_audio
  return source;
}

std::vector<int16_t> stem_to_int16(const at::Tensor& stem) {
  auto s = stem.to(torch::kCPU, torch::kFloat).contiguous();                              // [2, n]
  auto scaled = (s * 32767).t().contiguous();                                             // [n, 2] float32
  auto q = scaled.to(torch::kShort);                                                      // astype(int16): toward zero
  return std::vector<int16_t>(q.data_ptr<int16_t>(), q.data_ptr<int16_t>() + q.numel());
}

std::string find_separator_model(const std::string& dir_or_file) {
  const fs::path p(dir_or_file);
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p.string();
  for (const auto& c : {p / "audio_separator" / "Kim_Vocal_2.onnx", p / "Kim_Vocal_2.onnx"})
    if (fs::is_regular_file(c, ec)) return c.string();
  return "";
}

}  // namespace emo::audio
