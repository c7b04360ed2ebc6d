// Audio decoding round trips: the test writes its own wav/mp3/m4a/flac/opus files (libav encoders) and checks
// rate, length and frequency of what emo::audio::decode_audio returns, plus the error cases.
#include <gtest/gtest.h>

#include "support/audio_encode.h"

#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "emo/audio.h"
#include "emo/error.h"
#include "util/av_util.h"

namespace fs = std::filesystem;
using emo::audio::decode_audio;
using emo::audio::DecodeOptions;

namespace {

constexpr double kPi = 3.14159265358979323846;

fs::path temp_dir() {
  auto d = fs::temp_directory_path() / ("emo_audio_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::vector<float> sine(double freq, int rate, int channels, double seconds, float amp = 0.5f) {
  const auto n = static_cast<size_t>(std::llround(seconds * rate));
  std::vector<float> v(n * channels);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < channels; ++c) v[i * channels + c] = amp * static_cast<float>(std::sin(2 * kPi * freq * i / rate));
  return v;
}

// Frequency from the zero crossings of the middle 80% of the signal.
double zero_crossing_freq(const std::vector<float>& x, int rate) {
  const size_t a = x.size() / 10, b = x.size() - x.size() / 10;
  size_t crossings = 0;
  for (size_t i = a + 1; i < b; ++i)
    if ((x[i - 1] < 0) != (x[i] < 0)) ++crossings;
  return crossings / 2.0 / (static_cast<double>(b - a) / rate);
}

// Encodes interleaved float samples with a libav encoder (tests/support/audio_encode.h).
bool encode_with_libav(const std::string& path, const char* encoder, const std::vector<float>& pcm, int rate,
                       int channels) {
  return emo::test::encode_audio(path, encoder, pcm, rate, channels);
}

struct Case {
  const char* encoder;
  const char* ext;
  int rate, channels;
  double freq, seconds;
  double len_tol_s;  // allowed length error (codec padding / priming)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.encoder << " ." << c.ext << " " << c.rate << " Hz"; }

class AudioRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(AudioRoundTrip, SineComesBackAtRateLengthAndFrequency) {
  const Case c = GetParam();
  auto pcm = sine(c.freq, c.rate, c.channels, c.seconds);
  const auto path = (temp_dir() / (std::string("sine_") + c.encoder + "." + c.ext)).string();
  if (std::string(c.encoder) == "wav") {
    emo::audio::write_wav_pcm16(path, pcm, c.rate, c.channels);
  } else if (!encode_with_libav(path, c.encoder, pcm, c.rate, c.channels)) {
    GTEST_SKIP() << "encoder " << c.encoder << " not available in this libavcodec";
  }
  emo::audio::AudioSource src;
  auto mono = emo::audio::load_speech_16k(path, &src);
  EXPECT_EQ(src.sample_rate, c.rate);
  EXPECT_EQ(src.channels, c.channels);
  EXPECT_EQ(src.path, path);
  EXPECT_GE(src.stream_index, 0);
  const double seconds = static_cast<double>(mono.size()) / 16000.0;
  EXPECT_NEAR(seconds, c.seconds, c.len_tol_s) << c.encoder << ": " << mono.size() << " samples";
  EXPECT_NEAR(zero_crossing_freq(mono, 16000), c.freq, 0.01 * c.freq) << c.encoder;
  float peak = 0;
  for (float v : mono) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 0.5f, 0.08f) << "mono is the channel mean, not a sum";

  // The muxer's path: 48 kHz stereo planar.
  DecodeOptions o;
  o.sample_rate = 48000;
  o.channels = 2;
  auto st = decode_audio(path, o);
  ASSERT_EQ(st.channels(), 2);
  EXPECT_EQ(st.sample_rate, 48000);
  EXPECT_NEAR(st.duration_s(), c.seconds, c.len_tol_s);
  EXPECT_NEAR(zero_crossing_freq(st.planes[1], 48000), c.freq, 0.01 * c.freq);
  fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Codecs, AudioRoundTrip,
                         ::testing::Values(Case{"wav", "wav", 44100, 2, 440.0, 1.5, 0.002},
                                           Case{"wav", "wav", 16000, 1, 1000.0, 1.0, 0.001},
                                           Case{"libmp3lame", "mp3", 44100, 1, 440.0, 2.0, 0.06},
                                           Case{"aac", "m4a", 48000, 2, 880.0, 2.0, 0.06},
                                           Case{"flac", "flac", 22050, 1, 300.0, 1.0, 0.002},
                                           Case{"libopus", "ogg", 48000, 2, 500.0, 1.0, 0.03}),
                         [](const auto& info) { return std::string(info.param.encoder) + "_" + std::to_string(info.param.rate) + "Hz"; });

// An mp4 with an mpeg4 video stream first and an aac audio stream second (a "talking head" input file).
bool write_video_with_audio(const std::string& path, const std::vector<float>& mono, int rate) {
  const AVCodec* vc = avcodec_find_encoder_by_name("mpeg4");
  const AVCodec* ac = avcodec_find_encoder_by_name("aac");
  if (!vc || !ac) return false;
  AVFormatContext* raw = nullptr;
  if (avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()) < 0) return false;
  emo::av::OutputFormatPtr fmt(raw);
  const bool global = fmt->oformat->flags & AVFMT_GLOBALHEADER;
  emo::av::CodecContextPtr v(avcodec_alloc_context3(vc)), a(avcodec_alloc_context3(ac));
  v->width = 64;
  v->height = 48;
  v->pix_fmt = AV_PIX_FMT_YUV420P;
  v->time_base = AVRational{1, 25};
  v->framerate = AVRational{25, 1};
  a->sample_rate = rate;
  av_channel_layout_default(&a->ch_layout, 1);
  a->sample_fmt = AV_SAMPLE_FMT_FLTP;
  a->bit_rate = 96000;
  a->time_base = AVRational{1, rate};
  if (global) {
    v->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    a->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  if (avcodec_open2(v.get(), vc, nullptr) < 0 || avcodec_open2(a.get(), ac, nullptr) < 0) return false;
  AVStream* vs = avformat_new_stream(fmt.get(), nullptr);
  AVStream* as = avformat_new_stream(fmt.get(), nullptr);
  avcodec_parameters_from_context(vs->codecpar, v.get());
  avcodec_parameters_from_context(as->codecpar, a.get());
  vs->time_base = v->time_base;
  as->time_base = a->time_base;
  if (avio_open(&fmt->pb, path.c_str(), AVIO_FLAG_WRITE) < 0 || avformat_write_header(fmt.get(), nullptr) < 0) return false;
  auto pkt = emo::av::make_packet();
  auto drain = [&](AVCodecContext* c, AVStream* st) {
    while (avcodec_receive_packet(c, pkt.get()) == 0) {
      av_packet_rescale_ts(pkt.get(), c->time_base, st->time_base);
      pkt->stream_index = st->index;
      av_interleaved_write_frame(fmt.get(), pkt.get());
    }
  };
  const int64_t total = static_cast<int64_t>(mono.size());
  const int64_t frames = total * 25 / rate;
  int64_t apos = 0;
  for (int64_t f = 0; f < frames; ++f) {
    auto vf = emo::av::make_frame();
    vf->format = v->pix_fmt;
    vf->width = v->width;
    vf->height = v->height;
    if (av_frame_get_buffer(vf.get(), 0) < 0) return false;
    for (int p = 0; p < 3; ++p)
      for (int y = 0; y < (p ? v->height / 2 : v->height); ++y)
        std::memset(vf->data[p] + y * vf->linesize[p], static_cast<int>(f * 7 + p * 40) & 0xff, p ? v->width / 2 : v->width);
    vf->pts = f;
    avcodec_send_frame(v.get(), vf.get());
    drain(v.get(), vs);
    for (; apos < std::min(total, (f + 1) * rate / 25); apos += a->frame_size) {
      auto af = emo::av::make_frame();
      af->nb_samples = static_cast<int>(std::min<int64_t>(a->frame_size, total - apos));
      af->format = a->sample_fmt;
      af->sample_rate = rate;
      av_channel_layout_copy(&af->ch_layout, &a->ch_layout);
      if (av_frame_get_buffer(af.get(), 0) < 0) return false;
      std::memcpy(af->extended_data[0], mono.data() + apos, sizeof(float) * af->nb_samples);
      af->pts = apos;
      avcodec_send_frame(a.get(), af.get());
      drain(a.get(), as);
    }
  }
  avcodec_send_frame(v.get(), nullptr);
  drain(v.get(), vs);
  avcodec_send_frame(a.get(), nullptr);
  drain(a.get(), as);
  return av_write_trailer(fmt.get()) >= 0;
}

TEST(AudioDecode, AudioTrackOfAVideoFile) {
  const int rate = 44100;
  auto pcm = sine(660.0, rate, 1, 2.0);
  const auto path = (temp_dir() / "talking.mp4").string();
  if (!write_video_with_audio(path, pcm, rate)) GTEST_SKIP() << "mpeg4/aac encoders not available";
  emo::audio::AudioSource src;
  auto mono = emo::audio::load_speech_16k(path, &src);
  EXPECT_EQ(src.stream_index, 1) << "the audio stream, not the video stream";
  EXPECT_EQ(src.codec, "aac");
  EXPECT_EQ(src.sample_rate, rate);
  EXPECT_NEAR(mono.size() / 16000.0, 2.0, 0.06);
  EXPECT_NEAR(zero_crossing_freq(mono, 16000), 660.0, 6.6);
  fs::remove(path);
}

TEST(AudioDecode, WavSamplesAreExactAt16k) {
  auto pcm = sine(123.0, 16000, 1, 0.5);
  const auto path = (temp_dir() / "exact.wav").string();
  emo::audio::write_wav_pcm16(path, pcm, 16000, 1);
  auto mono = emo::audio::load_speech_16k(path);
  ASSERT_EQ(mono.size(), pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) ASSERT_NEAR(mono[i], pcm[i], 1.0 / 32000) << i;
  fs::remove(path);
}

void expect_input_error(const std::string& path, const std::string& needle, const DecodeOptions& o = {}) {
  try {
    decode_audio(path, o);
    ADD_FAILURE() << path << ": expected InputError containing '" << needle << "'";
  } catch (const emo::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one-line message: " << msg;
  }
}

TEST(AudioDecode, MissingFile) { expect_input_error((temp_dir() / "nope.wav").string(), "no such file"); }

TEST(AudioDecode, NotAMediaFile) {
  const auto path = (temp_dir() / "garbage.mp3").string();
  std::ofstream(path) << "this is not audio at all, just some text\n";
  expect_input_error(path, "not a readable audio/video file");
}

TEST(AudioDecode, NoAudioStream) {
  const auto path = (temp_dir() / "still.png").string();
  cv::imwrite(path, cv::Mat(16, 16, CV_8UC3, cv::Scalar(10, 20, 30)));
  expect_input_error(path, "no audio stream");
  fs::remove(path);
}

TEST(AudioDecode, ZeroLength) {
  const auto path = (temp_dir() / "empty.wav").string();
  emo::audio::write_wav_pcm16(path, {}, 16000, 1);
  expect_input_error(path, "empty");
  fs::remove(path);
}

TEST(AudioDecode, UndecodableData) {
  // A valid MP4 container whose AAC payload is overwritten with noise.
  auto pcm = sine(440, 48000, 1, 1.0);
  const auto path = (temp_dir() / "broken.m4a").string();
  if (!encode_with_libav(path, "aac", pcm, 48000, 1)) GTEST_SKIP() << "no aac encoder";
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  const auto mdat = bytes.find("mdat");
  ASSERT_NE(mdat, std::string::npos);
  const auto moov = bytes.find("moov");
  const size_t end = moov != std::string::npos && moov > mdat ? moov - 4 : bytes.size();
  std::mt19937 rng(1);
  for (size_t i = mdat + 4; i < end; ++i) bytes[i] = static_cast<char>(rng() & 0xff);
  f.seekp(0);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  expect_input_error(path, "undecodable");
  fs::remove(path);
}

TEST(AudioDecode, TooLong) {
  auto pcm = sine(440, 8000, 1, 3.0);
  const auto path = (temp_dir() / "long.wav").string();
  emo::audio::write_wav_pcm16(path, pcm, 8000, 1);
  DecodeOptions o;
  o.max_duration_s = 1.0;
  expect_input_error(path, "maximum", o);
  o.max_duration_s = 0;  // disabled
  EXPECT_NO_THROW(decode_audio(path, o));
  fs::remove(path);
}

}  // namespace

// Issue 16: a file whose decoding reports errors is refused (it used to be accepted while fewer than half of
// its packets failed), and so is a WAV cut short (libavformat clamps its data chunk to the file, silently).
TEST(AudioDecode, TruncatedWavIsRefused) {
  auto pcm = sine(440, 16000, 1, 2.0);
  const auto path = (temp_dir() / "cut.wav").string();
  emo::audio::write_wav_pcm16(path, pcm, 16000, 1);
  const auto full = fs::file_size(path);
  fs::resize_file(path, full / 2);
  expect_input_error(path, "truncated");
  fs::remove(path);
}

TEST(AudioDecode, AFewDamagedPacketsAreEnoughToRefuse) {
  // FLAC carries a CRC per frame; damage a few bytes in the middle of a 3 s file (~1 packet in 30).
  auto pcm = sine(440, 44100, 1, 3.0);
  const auto path = (temp_dir() / "damaged.flac").string();
  if (!encode_with_libav(path, "flac", pcm, 44100, 1)) GTEST_SKIP() << "no flac encoder";
  EXPECT_NO_THROW(decode_audio(path));  // intact, it decodes
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 8; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  f.seekp(0);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  expect_input_error(path, "undecodable");
  fs::remove(path);
}

TEST(AudioDecode, AStreamedWavWithoutSizesIsNotJudgedTruncated) {
  // A WAV written to a pipe keeps 0xFFFFFFFF sizes: not a truncated file.
  auto pcm = sine(440, 16000, 1, 1.0);
  const auto path = (temp_dir() / "streamed.wav").string();
  emo::audio::write_wav_pcm16(path, pcm, 16000, 1);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(40);
  f.write("\xff\xff\xff\xff", 4);
  f.close();
  EXPECT_NO_THROW(decode_audio(path));
  fs::remove(path);
}
