// python_speech_features.mfcc (v0.6) with its defaults, as SyncNet's evaluation calls it:
// mfcc(signal, 16000): winlen 0.025, winstep 0.01, numcep 13, nfilt 26, nfft 512, lowfreq 0,
// highfreq sr/2, preemph 0.97, ceplifter 22, appendEnergy, rectangular window. float64 throughout.
#include <torch/torch.h>

#include <cfloat>
#include <algorithm>
#include <cmath>
#include <vector>

#include "emo/error.h"
#include "emo/eval.h"

namespace emo::eval {

namespace {
double hz2mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double mel2hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }
// sigproc.round_half_up
int64_t round_half_up(double x) { return static_cast<int64_t>(std::floor(x + 0.5)); }

// get_filterbanks(nfilt, nfft, samplerate, lowfreq, highfreq) -> [nfilt, nfft/2 + 1]
at::Tensor filterbanks(int nfilt, int nfft, int sr, double lowfreq, double highfreq) {
  const double lowmel = hz2mel(lowfreq), highmel = hz2mel(highfreq);
  // numpy.linspace(lowmel, highmel, nfilt + 2): start + i * step, last point exactly `stop`.
  const int n = nfilt + 2;
  const double step = (highmel - lowmel) / (n - 1);
  std::vector<double> bin(n);
  for (int i = 0; i < n; ++i) {
    const double mel = (i == n - 1) ? highmel : lowmel + i * step;
    bin[i] = std::floor((nfft + 1) * mel2hz(mel) / sr);
  }
  auto fb = torch::zeros({nfilt, nfft / 2 + 1}, torch::kFloat64);
  auto a = fb.accessor<double, 2>();
  for (int j = 0; j < nfilt; ++j) {
    for (int i = static_cast<int>(bin[j]); i < static_cast<int>(bin[j + 1]); ++i)
      a[j][i] = (i - bin[j]) / (bin[j + 1] - bin[j]);
    for (int i = static_cast<int>(bin[j + 1]); i < static_cast<int>(bin[j + 2]); ++i)
      a[j][i] = (bin[j + 2] - i) / (bin[j + 2] - bin[j + 1]);
  }
  return fb;
}
}  // namespace

at::Tensor mfcc(const at::Tensor& signal_in, int sample_rate) {
  if (signal_in.dim() != 1 || signal_in.numel() < 1) throw InputError("mfcc: expected a non-empty 1-D signal");
  const double winlen = 0.025, winstep = 0.01, preemph = 0.97, lowfreq = 0, ceplifter = 22;
  const int numcep = 13, nfilt = 26, nfft = 512;
  const double highfreq = sample_rate / 2.0;
  auto sig = signal_in.to(torch::kFloat64).contiguous();
  const int64_t slen = sig.numel();

  // preemphasis: append(signal[0], signal[1:] - coeff * signal[:-1])
  auto pre = torch::empty_like(sig);
  {
    const double* s = sig.data_ptr<double>();
    double* p = pre.data_ptr<double>();
    p[0] = s[0];
    for (int64_t i = 1; i < slen; ++i) p[i] = s[i] - preemph * s[i - 1];
  }

  // framesig: numframes = 1 + ceil((slen - frame_len) / frame_step), zero-padded tail, rectangular window.
  const int64_t frame_len = round_half_up(winlen * sample_rate), frame_step = round_half_up(winstep * sample_rate);
  const int64_t numframes =
      slen <= frame_len ? 1
                        : 1 + static_cast<int64_t>(std::ceil((1.0 * slen - frame_len) / static_cast<double>(frame_step)));
  const int64_t padlen = (numframes - 1) * frame_step + frame_len;
  auto padded = torch::cat({pre, torch::zeros({padlen - slen}, pre.options())});
  auto frames = padded.unfold(0, frame_len, frame_step);  // [numframes, frame_len]
  if (frames.size(1) > nfft) frames = frames.narrow(1, 0, nfft);  // magspec truncates (with a warning)

  // powspec: 1/NFFT * |rfft(frames, NFFT)|^2
  auto spec = at::fft_rfft(frames, nfft, /*dim=*/1);  // [numframes, nfft/2+1] complex128
  auto pspec = (at::real(spec).square() + at::imag(spec).square()) / static_cast<double>(nfft);
  auto energy = pspec.sum(1);
  energy = torch::where(energy == 0, torch::full_like(energy, DBL_EPSILON), energy);
  auto fb = filterbanks(nfilt, nfft, sample_rate, lowfreq, highfreq);
  auto feat = pspec.matmul(fb.t());  // [numframes, nfilt]
  feat = torch::where(feat == 0, torch::full_like(feat, DBL_EPSILON), feat);
  feat = feat.log();

  // dct(type=2, norm='ortho')[:, :numcep]
  auto dct = torch::empty({nfilt, numcep}, torch::kFloat64);
  {
    auto d = dct.accessor<double, 2>();
    for (int k = 0; k < numcep; ++k) {
      const double scale = k == 0 ? std::sqrt(1.0 / nfilt) : std::sqrt(2.0 / nfilt);
      for (int n = 0; n < nfilt; ++n) d[n][k] = scale * std::cos(M_PI * k * (2 * n + 1) / (2.0 * nfilt));
    }
  }
  auto cep = feat.matmul(dct);  // [numframes, numcep]
  // lifter: 1 + (L/2) sin(pi n / L)
  auto lift = torch::empty({numcep}, torch::kFloat64);
  for (int n = 0; n < numcep; ++n) lift[n] = 1.0 + (ceplifter / 2.0) * std::sin(M_PI * n / ceplifter);
  cep = cep * lift;
  cep.select(1, 0).copy_(energy.log());  // appendEnergy
  return cep;
}

at::Tensor pcm_float_to_s16(const at::Tensor& samples) {
  if (samples.dim() != 1) throw InputError("pcm_float_to_s16: expected 1-D samples");
  auto in = samples.to(torch::kFloat32).contiguous();
  auto out = torch::empty({in.numel()}, torch::kInt16);
  const float* a = in.data_ptr<float>();
  int16_t* o = out.data_ptr<int16_t>();
  for (int64_t i = 0; i < in.numel(); ++i) {
    const long v = std::lrintf(a[i] * 32768.0f);
    o[i] = static_cast<int16_t>(std::min(32767L, std::max(-32768L, v)));
  }
  return out;
}

}  // namespace emo::eval
