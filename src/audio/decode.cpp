// Audio decoding with libavformat/libavcodec/libswresample -> planar float at a chosen rate.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "emo/audio.h"
#include "emo/error.h"
#include "util/av_util.h"

namespace emo::audio {

namespace {

// Decoded audio may be this much shorter than the container's declared length (codec priming, padding and
// rounding) before the file counts as truncated: 0.1 s + 1 %.
constexpr double kTruncationSlackS = 0.1;
constexpr double kTruncationSlackFraction = 0.01;

struct Resampler {
  av::SwrPtr swr;
  int in_rate = 0;
  int in_format = -1;
  AVChannelLayout in_layout{};
  ~Resampler() { av_channel_layout_uninit(&in_layout); }
};

// A RIFF/WAVE file whose "data" chunk declares more bytes than the file holds was cut short (libavformat
// clamps the chunk to the file and reports no error). Returns "" or the problem. Streamed WAVs (size 0 or
// 0xFFFFFFFF: the writer could not seek back) are not judged.
std::string wav_truncation(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[12];
  if (!f.read(reinterpret_cast<char*>(h), 12) || std::memcmp(h, "RIFF", 4) != 0 || std::memcmp(h + 8, "WAVE", 4) != 0)
    return "";
  f.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(f.tellg());
  uint64_t pos = 12;
  for (int guard = 0; guard < 4096 && pos + 8 <= file_size; ++guard) {
    unsigned char c[8];
    f.seekg(static_cast<std::streamoff>(pos));
    if (!f.read(reinterpret_cast<char*>(c), 8)) return "";
    const uint32_t size = uint32_t(c[4]) | (uint32_t(c[5]) << 8) | (uint32_t(c[6]) << 16) | (uint32_t(c[7]) << 24);
    if (std::memcmp(c, "data", 4) == 0) {
      if (size == 0 || size == 0xffffffffu) return "";
      const uint64_t have = file_size - (pos + 8);
      if (have < size)
        return "truncated WAV: its data chunk declares " + std::to_string(size) + " bytes, the file holds " +
               std::to_string(have);
      return "";
    }
    pos += 8 + size + (size & 1);
  }
  return "";
}

// Appends `n` converted samples from `data` (planar float) to `planes`.
void append(std::vector<std::vector<float>>& planes, uint8_t** data, int n) {
  for (size_t c = 0; c < planes.size(); ++c) {
    const float* p = reinterpret_cast<const float*>(data[c]);
    planes[c].insert(planes[c].end(), p, p + n);
  }
}

}  // namespace

DecodedAudio decode_audio(const std::string& path, const DecodeOptions& opt) {
  namespace fs = std::filesystem;
  av::quiet_logs();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": no such file");
  if (fs::is_directory(path, ec)) throw InputError(path + ": is a directory, expected an audio or video file");
  if (opt.sample_rate <= 0) throw UsageError(path + ": invalid output sample rate " + std::to_string(opt.sample_rate));

  if (std::string t = wav_truncation(path); !t.empty()) throw InputError(path + ": " + t);

  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (err < 0) throw InputError(path + ": not a readable audio/video file (" + av::error_string(err) + ")");
  av::InputFormatPtr fmt(raw);
  err = avformat_find_stream_info(fmt.get(), nullptr);
  if (err < 0) throw InputError(path + ": cannot read stream info (" + av::error_string(err) + ")");

  const AVCodec* codec = nullptr;
  int si = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (si == AVERROR_STREAM_NOT_FOUND) throw InputError(path + ": no audio stream");
  if (si < 0 || !codec) throw InputError(path + ": no decoder for its audio stream (" + av::error_string(si) + ")");
  AVStream* st = fmt->streams[si];

  DecodedAudio out;
  out.sample_rate = opt.sample_rate;
  out.source.path = path;
  out.source.stream_index = si;
  out.source.codec = codec->name;
  out.source.sample_rate = st->codecpar->sample_rate;
  out.source.channels = st->codecpar->ch_layout.nb_channels;
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
    out.source.container_duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
  else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
    out.source.container_duration_s = static_cast<double>(fmt->duration) / AV_TIME_BASE;

  char limit[64];
  std::snprintf(limit, sizeof(limit), "%.0f s", opt.max_duration_s);
  if (opt.max_duration_s > 0 && out.source.container_duration_s > opt.max_duration_s)
    throw InputError(path + ": audio is " + std::to_string(static_cast<long long>(out.source.container_duration_s)) +
                     " s long, above the maximum of " + limit);

  av::CodecContextPtr dec(avcodec_alloc_context3(codec));
  if (!dec) throw Error(ExitCode::kFailure, path + ": out of memory allocating the decoder");
  err = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (err >= 0) {
    dec->pkt_timebase = st->time_base;
    // Strict decoding: embedded checksums (FLAC, MP3 CRC) are verified and decoders report damage they would
    // otherwise conceal (docs/audio.md "Damaged files").
    dec->err_recognition |= AV_EF_CRCCHECK | AV_EF_EXPLODE;
    err = avcodec_open2(dec.get(), codec, nullptr);
  }
  if (err < 0) throw InputError(path + ": cannot open the " + codec->name + " decoder (" + av::error_string(err) + ")");

  // Output channel layout: mono averaging is done by hand (librosa's mean), so the resampler then keeps the
  // source layout; other counts go through libswresample's matrix.
  const bool average_to_mono = opt.channels == 1;
  auto packet = av::make_packet();
  auto frame = av::make_frame();
  if (!packet || !frame) throw Error(ExitCode::kFailure, path + ": out of memory");

  Resampler rs;
  int out_channels = 0;
  AVChannelLayout out_layout{};
  struct LayoutGuard {
    AVChannelLayout* l;
    ~LayoutGuard() { av_channel_layout_uninit(l); }
  } guard{&out_layout};
  std::vector<std::vector<float>> planes;
  const int64_t max_samples =
      opt.max_duration_s > 0 ? static_cast<int64_t>(std::ceil(opt.max_duration_s * opt.sample_rate)) + opt.sample_rate : 0;
  int64_t decode_errors = 0, packets = 0;
  std::string last_error;
  std::vector<uint8_t*> out_ptrs;
  std::vector<std::vector<float>> scratch;

  // Runs the current resampler on `in_n` input samples (nullptr/0 = drain its delay line).
  auto run_swr = [&](const uint8_t** in, int in_n) {
    if (!rs.swr) return;
    const int cap = swr_get_out_samples(rs.swr.get(), in_n) + 32;
    if (cap <= 0) return;
    scratch.resize(out_channels);
    out_ptrs.resize(out_channels);
    for (int c = 0; c < out_channels; ++c) {
      scratch[c].resize(cap);
      out_ptrs[c] = reinterpret_cast<uint8_t*>(scratch[c].data());
    }
    int n = swr_convert(rs.swr.get(), out_ptrs.data(), cap, in, in_n);
    if (n < 0) throw InputError(path + ": audio conversion failed (" + av::error_string(n) + ")");
    if (n == 0) return;
    if (average_to_mono) {
      auto& m = planes[0];
      size_t base = m.size();
      m.resize(base + n, 0.0f);
      for (int c = 0; c < out_channels; ++c)
        for (int i = 0; i < n; ++i) m[base + i] += scratch[c][i];
      if (out_channels > 1) {
        const float inv = 1.0f / static_cast<float>(out_channels);
        for (int i = 0; i < n; ++i) m[base + i] *= inv;
      }
    } else {
      append(planes, out_ptrs.data(), n);
    }
    if (max_samples > 0 && static_cast<int64_t>(planes[0].size()) > max_samples)
      throw InputError(path + ": audio is longer than the maximum of " + limit);
  };

  // (Re)configures the resampler on the first frame and whenever the input parameters change.
  auto convert = [&](const AVFrame* f) {
    if (f->ch_layout.nb_channels <= 0 || f->sample_rate <= 0) return;
    AVChannelLayout in_layout{};
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
      av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
    else
      av_channel_layout_copy(&in_layout, &f->ch_layout);
    const bool same = rs.swr && rs.in_rate == f->sample_rate && rs.in_format == f->format &&
                      av_channel_layout_compare(&rs.in_layout, &in_layout) == 0;
    if (!same) {
      if (!rs.swr) {
        if (opt.channels <= 0 || average_to_mono)
          av_channel_layout_copy(&out_layout, &in_layout);
        else
          av_channel_layout_default(&out_layout, opt.channels);
        out_channels = out_layout.nb_channels;
        planes.assign(average_to_mono ? 1 : out_channels, {});
        if (out.source.container_duration_s > 0) {  // avoid the vectors' doubling on long files
          auto expect = static_cast<int64_t>(std::ceil(out.source.container_duration_s * opt.sample_rate)) + 4096;
          if (max_samples > 0) expect = std::min(expect, max_samples);
          for (auto& p : planes) p.reserve(static_cast<size_t>(expect));
        }
      } else {
        run_swr(nullptr, 0);  // drain the old resampler; the output layout stays the first one
      }
      SwrContext* s = nullptr;
      int e = swr_alloc_set_opts2(&s, &out_layout, AV_SAMPLE_FMT_FLTP, opt.sample_rate, &in_layout,
                                  static_cast<AVSampleFormat>(f->format), f->sample_rate, 0, nullptr);
      av::SwrPtr fresh(s);
      if (e >= 0 && !opt.resampler.empty()) e = av_opt_set(fresh.get(), "resampler", opt.resampler.c_str(), 0);
      if (e >= 0) e = swr_init(fresh.get());
      if (e < 0) {
        av_channel_layout_uninit(&in_layout);
        throw InputError(path + ": cannot convert its audio (" + av::error_string(e) + ")");
      }
      rs.swr = std::move(fresh);
      rs.in_rate = f->sample_rate;
      rs.in_format = f->format;
      av_channel_layout_uninit(&rs.in_layout);
      av_channel_layout_copy(&rs.in_layout, &in_layout);
    }
    av_channel_layout_uninit(&in_layout);
    run_swr(const_cast<const uint8_t**>(f->extended_data), f->nb_samples);
  };

  auto receive_all = [&]() {
    while (true) {
      int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) {
        ++decode_errors;
        last_error = av::error_string(r);
        return;
      }
      if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT)) {
        ++decode_errors;
        last_error = "the decoder flagged a corrupt frame";
      }
      convert(frame.get());
      av_frame_unref(frame.get());
    }
  };

  while (true) {
    int r = av_read_frame(fmt.get(), packet.get());
    if (r == AVERROR_EOF) break;
    if (r < 0) {  // truncated / corrupt container
      ++decode_errors;
      last_error = "reading the container failed: " + av::error_string(r);
      break;
    }
    if (packet->stream_index == si) {
      ++packets;
      int s = avcodec_send_packet(dec.get(), packet.get());
      if (s < 0 && s != AVERROR(EAGAIN)) {
        ++decode_errors;
        last_error = av::error_string(s);
      }
      receive_all();
    }
    av_packet_unref(packet.get());
  }
  avcodec_send_packet(dec.get(), nullptr);
  receive_all();
  run_swr(nullptr, 0);  // flush the resampler's delay line

  // Any decoding error refuses the file (ffmpeg would skip the damaged packets and play on; a voice clip with
  // holes or made-up samples drives the lips wrong, so emo does not): docs/audio.md "Damaged files".
  if (decode_errors > 0)
    throw InputError(path + ": undecodable audio data (" + std::to_string(decode_errors) + " error" +
                     (decode_errors == 1 ? "" : "s") + " in " + std::to_string(packets) + " packets; " + last_error +
                     ")");
  if (planes.empty() || planes[0].empty()) {
    throw InputError(path + ": the audio stream is empty (zero samples)");
  }
  // Truncation: the container declares a length (not an estimate from the bit rate) and much less was decoded.
  const double decoded_s = static_cast<double>(planes[0].size()) / opt.sample_rate;
  const double declared_s = out.source.container_duration_s;
  if (declared_s > 0 && fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE &&
      decoded_s < declared_s - (kTruncationSlackS + kTruncationSlackFraction * declared_s)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "truncated audio: the file declares %.2f s but only %.2f s could be decoded",
                  declared_s, decoded_s);
    throw InputError(path + ": " + buf);
  }
  out.planes = std::move(planes);
  return out;
}

std::vector<float> load_speech_16k(const std::string& path, AudioSource* source, double max_duration_s) {
  DecodeOptions o;
  o.sample_rate = 16000;
  o.channels = 1;
  o.max_duration_s = max_duration_s;
  auto d = decode_audio(path, o);
  if (source) *source = d.source;
  return std::move(d.planes[0]);
}

void write_wav_pcm16(const std::string& path, const std::vector<float>& interleaved, int sample_rate, int channels) {
  if (channels <= 0 || sample_rate <= 0 || interleaved.size() % static_cast<size_t>(channels) != 0)
    throw OutputError(path + ": invalid WAV parameters");
  std::ofstream f(path, std::ios::binary);
  if (!f) throw OutputError(path + ": cannot open for writing");
  auto u32 = [&](uint32_t v) { char b[4] = {char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; f.write(b, 4); };
  auto u16 = [&](uint16_t v) { char b[2] = {char(v), char(v >> 8)}; f.write(b, 2); };
  const uint32_t data_bytes = static_cast<uint32_t>(interleaved.size() * 2);
  f.write("RIFF", 4);
  u32(36 + data_bytes);
  f.write("WAVEfmt ", 8);
  u32(16);
  u16(1);  // PCM
  u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(sample_rate));
  u32(static_cast<uint32_t>(sample_rate * channels * 2));
  u16(static_cast<uint16_t>(channels * 2));
  u16(16);
  f.write("data", 4);
  u32(data_bytes);
  std::vector<char> buf(interleaved.size() * 2);
  for (size_t i = 0; i < interleaved.size(); ++i) {
    float v = std::max(-1.0f, std::min(1.0f, interleaved[i]));
    int16_t s = static_cast<int16_t>(std::lrint(v * 32767.0f));
    buf[2 * i] = static_cast<char>(s & 0xff);
    buf[2 * i + 1] = static_cast<char>((s >> 8) & 0xff);
  }
  f.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  if (!f) throw OutputError(path + ": write failed");
}

}  // namespace emo::audio
