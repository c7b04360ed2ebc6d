// VideoWriter / VideoReader / probe: round trips through H.264 + AAC in MP4 and MKV, and the error paths
// (nothing may be left under the final name, nor a temporary file, after a failure).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>

#include "emo/error.h"
#include "emo/video.h"

namespace fs = std::filesystem;
using emo::video::probe;
using emo::video::VideoReader;
using emo::video::VideoWriter;
using emo::video::VideoWriterOptions;

namespace {

constexpr int kW = 64, kH = 48, kFrames = 25;
constexpr double kFps = 25.0;

class VideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("emo_video_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { if (!getenv("KEEP")) fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  // Every file in the test folder except the inputs the test wrote.
  std::vector<std::string> outputs() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() != ".wav" && e.path().extension() != ".txt") v.push_back(e.path().filename().string());
    return v;
  }
  fs::path dir_;
};

// 16-bit PCM WAV with a 440 Hz sine.
void write_sine_wav(const std::string& path, double seconds, int rate = 16000, int channels = 1) {
  const uint32_t n = static_cast<uint32_t>(std::lround(seconds * rate));
  const uint32_t data_bytes = n * channels * 2;
  std::ofstream o(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { o.write(reinterpret_cast<const char*>(&v), 2); };
  o.write("RIFF", 4);
  u32(36 + data_bytes);
  o.write("WAVEfmt ", 8);
  u32(16);
  u16(1);
  u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(rate));
  u32(static_cast<uint32_t>(rate * channels * 2));
  u16(static_cast<uint16_t>(channels * 2));
  u16(16);
  o.write("data", 4);
  u32(data_bytes);
  for (uint32_t i = 0; i < n; ++i) {
    const auto s = static_cast<int16_t>(std::lround(12000.0 * std::sin(2 * M_PI * 440.0 * i / rate)));
    for (int c = 0; c < channels; ++c) u16(static_cast<uint16_t>(s));
  }
}

// Smooth moving colour pattern (compresses well, so PSNR measures the pipeline rather than x264).
cv::Mat pattern(int t, int w = kW, int h = kH) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      auto& p = m.at<cv::Vec3b>(y, x);
      p[0] = cv::saturate_cast<uint8_t>(128 + 90 * std::sin(2 * M_PI * (x / 64.0 + t / 25.0)));
      p[1] = cv::saturate_cast<uint8_t>(128 + 90 * std::cos(2 * M_PI * (y / 48.0 - t / 50.0)));
      p[2] = cv::saturate_cast<uint8_t>(40 + 2 * x + y + 3 * t);
    }
  return m;
}

// mkv: Matroska has no edit list, so the AAC track's measured duration includes the encoder's 1024 priming
// samples (the muxer delays every stream by them instead): allow one more AAC frame there, and check that the
// streams end together in both containers.
void expect_round_trip(const std::string& out, const std::string& container_substr, double audio_seconds, bool mkv) {
  const auto r = probe(out);
  EXPECT_NE(r.format.find(container_substr), std::string::npos) << r.format;
  ASSERT_EQ(r.streams.size(), 2u);
  const auto* v = r.first("video");
  const auto* a = r.first("audio");
  ASSERT_TRUE(v && a);
  EXPECT_EQ(v->codec, "h264");
  EXPECT_EQ(a->codec, "aac");
  EXPECT_EQ(v->pix_fmt, "yuv420p");
  EXPECT_EQ(v->width, kW);
  EXPECT_EQ(v->height, kH);
  EXPECT_EQ(v->frames, kFrames);
  EXPECT_NEAR(v->fps, kFps, 1e-9);
  EXPECT_NEAR(v->duration, kFrames / kFps, 1e-3);
  ASSERT_GT(a->sample_rate, 0);
  const double aac_frame = 1024.0 / a->sample_rate;
  EXPECT_NEAR(a->duration, kFrames / kFps, (mkv ? 2 : 1) * aac_frame) << "audio source was " << audio_seconds << " s";
  EXPECT_NEAR(a->end_time(), v->end_time(), aac_frame) << "streams must end together";
  ASSERT_TRUE(r.metadata.count("comment")) << "container tags lost";
  EXPECT_EQ(r.metadata.at("comment"), "{\"seed\": 42, \"steps\": 40}");
  ASSERT_TRUE(r.metadata.count("emo_version")) << "arbitrary keys must survive";
  EXPECT_EQ(r.metadata.at("emo_version"), "test");

  VideoReader reader(out);
  EXPECT_EQ(reader.width(), kW);
  EXPECT_EQ(reader.height(), kH);
  EXPECT_NEAR(reader.fps(), kFps, 1e-9);
  EXPECT_EQ(reader.frame_count(), kFrames);
  EXPECT_NEAR(reader.duration(), kFrames / kFps, 0.05);
  EXPECT_TRUE(reader.has_audio());
  EXPECT_EQ(reader.audio_stream_index(), a->index);
  EXPECT_EQ(reader.video_codec(), "h264");
  const auto frames = reader.read_all();
  ASSERT_EQ(frames.size(), static_cast<size_t>(kFrames));
  double worst = 1e9;
  for (int t = 0; t < kFrames; ++t) {
    ASSERT_EQ(frames[t].type(), CV_8UC3);
    ASSERT_EQ(frames[t].size(), cv::Size(kW, kH));
    worst = std::min(worst, cv::PSNR(frames[t], pattern(t)));
  }
  EXPECT_GT(worst, 35.0) << "worst frame PSNR " << worst << " dB";
  ::testing::Test::RecordProperty("worst_psnr_db", std::to_string(worst));
  EXPECT_NEAR(reader.timestamp(), (kFrames - 1) / kFps, 1e-3);
}

VideoWriterOptions options_with_audio(const std::string& wav) {
  VideoWriterOptions o;
  o.fps = kFps;
  o.crf = 18;  // default preset (medium): worst frame ~39.6 dB here; 49 dB at crf 0 (colour pipeline ceiling)
  o.audio_path = wav;
  o.metadata = {{"comment", "{\"seed\": 42, \"steps\": 40}"}, {"emo_version", "test"}};
  return o;
}

}  // namespace

TEST_F(VideoTest, Mp4RoundTripAudioTrimmed) {
  const std::string wav = file("sine.wav"), out = file("out.mp4");
  write_sine_wav(wav, 1.7);  // longer than the video: trimmed
  {
    VideoWriter w(out, kW, kH, options_with_audio(wav));
    EXPECT_TRUE(w.has_audio());
    for (int t = 0; t < kFrames; ++t) {
      w.write(pattern(t));
      EXPECT_FALSE(fs::exists(out)) << "final name must not appear before finish()";
    }
    EXPECT_TRUE(fs::exists(w.temp_path()));
    w.finish();
    EXPECT_EQ(w.frames_written(), kFrames);
    EXPECT_FALSE(w.video_encoder().empty());
  }
  EXPECT_EQ(outputs(), std::vector<std::string>{"out.mp4"});
  expect_round_trip(out, "mp4", 1.7, false);
}

TEST_F(VideoTest, MkvRoundTripAudioPadded) {
  const std::string wav = file("short.wav"), out = file("out.mkv");
  write_sine_wav(wav, 0.4, 44100, 2);  // shorter than the video: padded with silence; stereo 44.1 kHz
  VideoWriter w(out, kW, kH, options_with_audio(wav));
  for (int t = 0; t < kFrames; ++t) w.write(pattern(t));
  w.finish();
  EXPECT_EQ(outputs(), std::vector<std::string>{"out.mkv"});
  expect_round_trip(out, "matroska", 0.4, true);
  const auto r = probe(out);
  EXPECT_EQ(r.first("audio")->channels, 2);
  EXPECT_EQ(r.first("audio")->sample_rate, 44100);
}

TEST_F(VideoTest, RawBufferWithoutAudio) {
  const std::string out = file("raw.mp4");
  VideoWriterOptions o;
  o.fps = 30;
  VideoWriter w(out, 32, 16, o);
  EXPECT_FALSE(w.has_audio());
  std::vector<uint8_t> buf(40 * 3 * 16, 0);  // stride 40 px > width 32
  for (int t = 0; t < 7; ++t) {
    std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(30 * t));
    w.write(buf.data(), 32, 16, 40 * 3);
  }
  w.finish();
  const auto r = probe(out);
  ASSERT_EQ(r.streams.size(), 1u);
  EXPECT_EQ(r.streams[0].frames, 7);
  EXPECT_NEAR(r.streams[0].duration, 7 / 30.0, 1e-3);
  VideoReader reader(out);
  EXPECT_FALSE(reader.has_audio());
  EXPECT_EQ(reader.audio_stream_index(), -1);
  cv::Mat m;
  int n = 0;
  while (reader.read(m)) {
    EXPECT_NEAR(cv::mean(m)[0], 30.0 * n, 2.0) << "frame " << n;
    ++n;
  }
  EXPECT_EQ(n, 7);
}

TEST_F(VideoTest, ForcedMpeg4Encoder) {
  // The last-resort fallback encoder, forced: the rest of the pipeline (audio, muxing) is unchanged.
  const std::string wav = file("sine.wav"), out = file("mpeg4.mp4");
  write_sine_wav(wav, 1.0);
  auto o = options_with_audio(wav);
  o.video_encoder = "mpeg4";
  VideoWriter w(out, kW, kH, o);
  EXPECT_EQ(w.video_encoder(), "mpeg4");
  for (int t = 0; t < kFrames; ++t) w.write(pattern(t));
  w.finish();
  const auto r = probe(out);
  ASSERT_TRUE(r.first("video") && r.first("audio"));
  EXPECT_EQ(r.first("video")->codec, "mpeg4");
  EXPECT_EQ(r.first("video")->frames, kFrames);
  EXPECT_EQ(r.first("audio")->codec, "aac");
  VideoReader reader(out);
  EXPECT_EQ(reader.read_all().size(), static_cast<size_t>(kFrames));

  o.video_encoder = "no_such_encoder";
  EXPECT_THROW(VideoWriter(file("x.mp4"), kW, kH, o), emo::OutputError);
  EXPECT_EQ(outputs(), std::vector<std::string>{"mpeg4.mp4"});
}

TEST_F(VideoTest, NtscRateWithAudioTakenFromAVideo) {
  // 29.97 fps (30000/1001): samples per frame are not whole; the audio source is another video's audio track.
  const std::string wav = file("sine.wav"), first = file("first.mp4"), out = file("ntsc.mkv");
  write_sine_wav(wav, 2.0, 22050);
  {
    VideoWriter w(first, kW, kH, options_with_audio(wav));
    for (int t = 0; t < kFrames; ++t) w.write(pattern(t));
    w.finish();
  }
  VideoReader src(first);
  ASSERT_TRUE(src.has_audio());
  VideoWriterOptions o;
  o.fps = 30000.0 / 1001.0;
  o.audio_path = first;
  o.audio_stream = src.audio_stream_index();
  const int n = 13;
  {
    VideoWriter w(out, kW, kH, o);
    for (int t = 0; t < n; ++t) w.write(pattern(t));
    w.finish();
  }
  const auto r = probe(out);
  const auto* v = r.first("video");
  const auto* a = r.first("audio");
  ASSERT_TRUE(v && a);
  EXPECT_EQ(v->frames, n);
  EXPECT_NEAR(v->fps, 30000.0 / 1001.0, 1e-6);
  EXPECT_NEAR(v->duration, n * 1001.0 / 30000.0, 2e-3);  // Matroska stores milliseconds
  EXPECT_EQ(a->sample_rate, 22050);
  EXPECT_NEAR(a->end_time(), v->end_time(), 1024.0 / a->sample_rate);

  o.audio_stream = src.video_stream_index();  // not an audio stream
  EXPECT_THROW(VideoWriter(file("bad.mkv"), kW, kH, o), emo::InputError);
}

TEST_F(VideoTest, OddDimensionsRejected) {
  const std::string out = file("odd.mp4");
  try {
    VideoWriter w(out, 63, 48);
    FAIL() << "expected OutputError";
  } catch (const emo::OutputError& e) {
    EXPECT_NE(std::string(e.what()).find("even"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(out), std::string::npos) << e.what();
  }
  EXPECT_THROW(VideoWriter(out, 64, 47), emo::OutputError);
  EXPECT_THROW(VideoWriter(out, 0, 48), emo::OutputError);
  EXPECT_TRUE(outputs().empty());
}

TEST_F(VideoTest, UnwritableDirectory) {
  const std::string out = file("no/such/dir/out.mp4");
  try {
    VideoWriter w(out, kW, kH);
    FAIL() << "expected OutputError";
  } catch (const emo::OutputError& e) {
    EXPECT_NE(std::string(e.what()).find(out), std::string::npos) << e.what();
  }
  EXPECT_TRUE(outputs().empty());
}

TEST_F(VideoTest, MissingOrInvalidAudio) {
  const std::string out = file("out.mp4");
  auto o = options_with_audio(file("missing.wav"));
  try {
    VideoWriter w(out, kW, kH, o);
    FAIL() << "expected InputError";
  } catch (const emo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.wav"), std::string::npos) << e.what();
  }
  const std::string junk = file("junk.txt");
  std::ofstream(junk) << "this is not audio";
  o.audio_path = junk;
  EXPECT_THROW(VideoWriter(out, kW, kH, o), emo::InputError);
  EXPECT_TRUE(outputs().empty());
}

TEST_F(VideoTest, NoPartialFileAfterErrors) {
  const std::string wav = file("sine.wav"), out = file("out.mp4");
  write_sine_wav(wav, 1.0);
  {  // destroyed without finish()
    VideoWriter w(out, kW, kH, options_with_audio(wav));
    for (int t = 0; t < 5; ++t) w.write(pattern(t));
  }
  EXPECT_TRUE(outputs().empty());
  {  // a frame of the wrong size, then the exception unwinds the writer
    try {
      VideoWriter w(out, kW, kH, options_with_audio(wav));
      w.write(pattern(0));
      w.write(pattern(1, 32, 24));
      FAIL() << "expected OutputError";
    } catch (const emo::OutputError& e) {
      EXPECT_NE(std::string(e.what()).find("32x24"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(outputs().empty());
  {  // finish() with no frame
    VideoWriter w(out, kW, kH);
    EXPECT_THROW(w.finish(), emo::OutputError);
  }
  EXPECT_TRUE(outputs().empty());
  {  // wrong pixel type
    VideoWriter w(out, kW, kH);
    EXPECT_THROW(w.write(cv::Mat(kH, kW, CV_8UC1, cv::Scalar(0))), emo::OutputError);
  }
  EXPECT_TRUE(outputs().empty());
}

TEST_F(VideoTest, ProbeErrorsAndTruncation) {
  EXPECT_THROW(probe(file("nothing.mp4")), emo::InputError);
  EXPECT_THROW(VideoReader(file("nothing.mp4")), emo::InputError);
  const std::string junk = file("junk.txt");
  std::ofstream(junk) << "not a video at all";
  EXPECT_THROW(probe(junk), emo::InputError);
  EXPECT_THROW(VideoReader{junk}, emo::InputError);

  // A file cut short (e.g. a crash before the rename in an older tool) must not look complete.
  const std::string out = file("full.mp4");
  {
    VideoWriterOptions o;
    VideoWriter w(out, kW, kH, o);
    for (int t = 0; t < kFrames; ++t) w.write(pattern(t));
    w.finish();
  }
  const auto size = fs::file_size(out);
  fs::copy_file(out, file("cut.mp4"));
  fs::resize_file(file("cut.mp4"), size / 2);
  bool complete = true;
  try {
    const auto r = probe(file("cut.mp4"));
    complete = r.first("video") && r.first("video")->frames == kFrames;
  } catch (const emo::InputError&) {
    complete = false;
  }
  EXPECT_FALSE(complete);
}
