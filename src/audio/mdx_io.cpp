// The file ends of Hallo's separation chain (see include/emo/separator.h): the mix as audio-separator loads it,
// and the 16 kHz mono speech Hallo makes of the written stem (ffmpeg -ar 16000, then librosa.load).
#include <torch/torch.h>

#include <cstring>

#include "emo/audio.h"
#include "emo/error.h"
#include "emo/separator.h"
#include "util/atomic_file.h"
#include "util/av_util.h"

namespace emo::audio {

at::Tensor load_mix(const std::string& path, int sample_rate, double max_duration_s) {
  // librosa.load(path, mono=False, sr=44100): the file's channels, resampled with soxr_hq when the rate differs.
  DecodeOptions o;
  o.sample_rate = sample_rate;
  o.channels = 0;  // keep the source channels; mono is duplicated by MdxSeparator::separate (prepare_mix)
  o.max_duration_s = max_duration_s;
  o.resampler = "soxr";
  auto d = decode_audio(path, o);
  if (d.channels() > 2) {  // audio-separator only takes stereo; emo downmixes with libswresample's matrix
    o.channels = 2;
    d = decode_audio(path, o);
  }
  const int64_t n = d.num_samples();
  auto mix = torch::empty({static_cast<int64_t>(d.channels()), n}, torch::kFloat);  // [C, n]
  for (int c = 0; c < d.channels(); ++c) std::memcpy(mix[c].data_ptr<float>(), d.planes[c].data(), n * sizeof(float));
  return mix;
}

std::vector<float> hallo_vocals_16k(const std::vector<int16_t>& stem, int sample_rate) {
  // ffmpeg -i vocals.wav -ar 16000 vocals-16k.wav: the CLI's aresample with libswresample's defaults, s16 in and out
  if (stem.size() % 2) throw Error(ExitCode::kFailure, "hallo_vocals_16k: interleaved stereo expected");
  const int in_n = static_cast<int>(stem.size() / 2);
  AVChannelLayout stereo{};
  av_channel_layout_default(&stereo, 2);
  SwrContext* s = nullptr;
  int e = swr_alloc_set_opts2(&s, &stereo, AV_SAMPLE_FMT_S16, 16000, &stereo, AV_SAMPLE_FMT_S16, sample_rate, 0, nullptr);
  av::SwrPtr swr(s);
  if (e >= 0) e = swr_init(swr.get());
  if (e < 0) throw Error(ExitCode::kFailure, "vocal separation: cannot resample to 16 kHz (" + av::error_string(e) + ")");
  std::vector<int16_t> out;
  auto run = [&](const uint8_t* in, int n) {
    const int cap = swr_get_out_samples(swr.get(), n) + 32;
    std::vector<int16_t> buf(static_cast<size_t>(cap) * 2);
    uint8_t* o = reinterpret_cast<uint8_t*>(buf.data());
    const uint8_t* i = in;
    const int got = swr_convert(swr.get(), &o, cap, in ? &i : nullptr, n);
    if (got < 0) throw Error(ExitCode::kFailure, "vocal separation: resampling failed (" + av::error_string(got) + ")");
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<size_t>(got) * 2);
  };
  const int block = 1 << 16;  // as a stream of frames, like the CLI
  for (int at = 0; at < in_n; at += block)
    run(reinterpret_cast<const uint8_t*>(stem.data() + static_cast<size_t>(at) * 2), std::min(block, in_n - at));
  run(nullptr, 0);  // flush
  // librosa.load(sr=16000): int16 / 32768 as float32, mono = mean over the channels (float32)
  std::vector<float> mono(out.size() / 2);
  for (size_t k = 0; k < mono.size(); ++k) {
    const float l = static_cast<float>(out[2 * k]) / 32768.0f, r = static_cast<float>(out[2 * k + 1]) / 32768.0f;
    mono[k] = (l + r) / 2.0f;
  }
  return mono;
}

void write_stem_wav(const std::string& path, const std::vector<int16_t>& pcm, int sample_rate) {
  if (pcm.size() % 2 || sample_rate <= 0) throw OutputError(path + ": invalid stereo WAV data");
  if (pcm.size() * 2 > 0xFFFFFFF0ull) throw OutputError(path + ": too long for a WAV file");
  util::AtomicFile f(path);
  auto u32 = [&](uint32_t v) { const unsigned char b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; f.write(b, 4); };
  auto u16 = [&](uint16_t v) { const unsigned char b[2] = {uint8_t(v), uint8_t(v >> 8)}; f.write(b, 2); };
  const auto data_bytes = static_cast<uint32_t>(pcm.size() * 2);
  f.write("RIFF", 4);
  u32(36 + data_bytes);
  f.write("WAVEfmt ", 8);
  u32(16);
  u16(1);  // PCM
  u16(2);
  u32(static_cast<uint32_t>(sample_rate));
  u32(static_cast<uint32_t>(sample_rate) * 4);
  u16(4);
  u16(16);
  f.write("data", 4);
  u32(data_bytes);
  f.write(pcm.data(), pcm.size() * 2);  // little-endian host
  f.commit();
}

}  // namespace emo::audio
